using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Xunit.Abstractions;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Devices.ScHsm.Shares;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Shares;

public class ScHsmShareFileTests(ITestOutputHelper output)
{
    [Fact]
    public void Md5Chain_MatchesPlatformMd5()
    {
        var state = Encoding.ASCII.GetBytes("0123456789abcdef");
        var reference = (byte[])state.Clone();
        for (int i = 0; i < 1000; i++) reference = MD5.HashData(reference);
        Md5Iteration.Apply(state, 1000);
        Assert.Equal(reference, state);
    }

    [Fact]
    public void EvpBytesToKey_SmallCount_MatchesDefinition()
    {
        byte[] pass = Encoding.UTF8.GetBytes("pw"), salt = Vectors.Hex("0102030405060708");
        const int count = 7;
        // Reference straight from the definition, with the platform MD5.
        var output = new List<byte>();
        byte[] prev = [];
        while (output.Count < 48)
        {
            byte[] d = MD5.HashData([.. prev, .. pass, .. salt]);
            for (int i = 1; i < count; i++) d = MD5.HashData(d);
            output.AddRange(d);
            prev = d;
        }
        var mine = new byte[48];
        OpenSslKeyDerivation.EvpBytesToKeyMd5(pass, salt, count, mine);
        Assert.Equal(output.ToArray(), mine);
    }

    [Fact]
    public void Share1_DerivedKeyAndIv_MatchManifest_Fast()
    {
        var file = ScHsmShareFile.Read(Vectors.PathOf("dkek-share-1.pbe"));
        Assert.Equal(Vectors.Hex("b91d44c6f0317407"), file.Salt.ToArray());
        Span<byte> key = stackalloc byte[32], iv = stackalloc byte[16];
        var sw = Stopwatch.StartNew();
        ScHsmShareFile.DeriveKeyAndIv("share-one-pass"u8, file.Salt, key, iv);
        sw.Stop();
        output.WriteLine($"EVP_BytesToKey(MD5, 10,000,000): {sw.ElapsedMilliseconds} ms");
        Assert.Equal("6a166ce0b332b2491df0a068fcf3bc4f4464f8f2f12c5c84e34c30b36c1bee6c", Convert.ToHexString(key).ToLowerInvariant());
        Assert.Equal("685a1d0803280712bc7ea9781e366635", Convert.ToHexString(iv).ToLowerInvariant());
        // No time bound here: speed is measured in bench/ (ratios in one run), never by timing a test.
    }

    [Fact]
    public void BothShares_Decrypt_XorToDkek_WithManifestKcv()
    {
        using var s1 = ScHsmShareFile.Read(Vectors.Read("dkek-share-1.pbe")).Decrypt("share-one-pass"u8);
        using var s2 = ScHsmShareFile.Read(Vectors.Read("dkek-share-2.pbe")).Decrypt("share-two-pass"u8);
        Assert.Equal(Vectors.Share1Hex, Convert.ToHexString(s1.Span).ToLowerInvariant());
        Assert.Equal(Vectors.Share2Hex, Convert.ToHexString(s2.Span).ToLowerInvariant());
        using var dkek = new SecretBytes(32);
        for (int i = 0; i < 32; i++) dkek.Span[i] = (byte)(s1.Span[i] ^ s2.Span[i]);
        Assert.Equal(Vectors.DkekHex, Convert.ToHexString(dkek.Span).ToLowerInvariant());
        Assert.Equal(Vectors.KcvHex, KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span)));
    }

    [Fact]
    public void WrongPassword_ThrowsWithoutPasswordInMessage()
    {
        var file = ScHsmShareFile.Read(Vectors.Read("dkek-share-2.pbe"));
        var ex = Assert.Throws<ScHsmWrongPasswordException>(() => file.Decrypt("share-one-pass"u8).Dispose());
        Assert.DoesNotContain("share-one-pass", ex.Message);
    }

    [Fact]
    public void ReadAndToArray_RoundTrip_AndRejectsBadFiles()
    {
        foreach (var name in new[] { "dkek-share-1.pbe", "dkek-share-2.pbe", "dkek-share-threshold.pbe" })
        {
            var bytes = Vectors.Read(name);
            Assert.Equal(bytes, ScHsmShareFile.Read(bytes).ToArray());
        }
        Assert.Throws<ScHsmFormatException>(() => ScHsmShareFile.Read(new byte[63]));
        var noMagic = Vectors.Read("dkek-share-1.pbe");
        noMagic[0] = (byte)'X';
        Assert.Throws<ScHsmFormatException>(() => ScHsmShareFile.Read(noMagic));
    }

    [Fact]
    public void Create_ThenDecrypt_RoundTrips_SmallCount()
    {
        var share = RandomNumberGenerator.GetBytes(32);
        var salt = RandomNumberGenerator.GetBytes(8);
        var bytes = ScHsmShareFile.Create(share, "a password"u8, salt, iterations: 1000);
        Assert.Equal(64, bytes.Length);
        Assert.Equal("Salted__"u8.ToArray(), bytes[..8]);
        Assert.Equal(salt, bytes[8..16]);
        using var back = ScHsmShareFile.Read(bytes).Decrypt("a password"u8, iterations: 1000);
        Assert.Equal(share, back.Span.ToArray());
    }

    [Fact]
    public void Create_WithVectorSalt_ReproducesShareFileBytes()
    {
        // sc-hsm-tool's file is deterministic given salt, password and share: rebuild dkek-share-1.pbe.
        var original = Vectors.Read("dkek-share-1.pbe");
        var rebuilt = ScHsmShareFile.Create(Vectors.Hex(Vectors.Share1Hex), "share-one-pass"u8, original.AsSpan(8, 8));
        Assert.Equal(original, rebuilt);
    }
}
