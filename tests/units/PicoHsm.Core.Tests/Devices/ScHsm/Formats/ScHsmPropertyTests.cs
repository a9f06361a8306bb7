using System.Security.Cryptography;
using CsCheck;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Macs;
using Org.BouncyCastle.Crypto.Parameters;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Devices.ScHsm.Shares;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Formats;

/// <summary>Properties over generated inputs (CsCheck), and known answers for the building blocks.</summary>
public class ScHsmPropertyTests
{
    private static readonly byte[] Dkek = Vectors.Hex(Vectors.DkekHex);

    [Theory]
    // RFC 4493 section 4 (AES-128).
    [InlineData("", "bb1d6929e95937287fa37d129b756746")]
    [InlineData("6bc1bee22e409f96e93d7e117393172a", "070a16b46b4d4144f79bdd9dd04a287c")]
    [InlineData("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411", "dfa66747de9ae63030ca32611497c827")]
    [InlineData("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710", "51f0bebf7e3b9d92fc49741779363cfe")]
    public void AesCmac_Rfc4493(string message, string expected)
    {
        var mac = new byte[16];
        AesCmac.Compute(Vectors.Hex("2b7e151628aed2a6abf7158809cf4f3c"), Vectors.Hex(message), mac);
        Assert.Equal(expected, Convert.ToHexString(mac).ToLowerInvariant());
    }

    [Fact]
    public void AesCmac_MatchesBouncyCastle_ForAnyMessage()
    {
        Gen.Select(Gen.Byte.Array[32], Gen.Byte.Array[0, 300]).Sample((key, message) =>
        {
            var mac = new byte[16];
            AesCmac.Compute(key, message, mac);
            var bc = new CMac(new AesEngine());
            bc.Init(new KeyParameter(key));
            bc.BlockUpdate(message, 0, message.Length);
            var expected = new byte[16];
            bc.DoFinal(expected, 0);
            Assert.Equal(expected, mac);
        }, iter: 300);
    }

    [Fact]
    public void PasswordShares_SplitThenAnyThresholdSubsetCombines()
    {
        Gen.Select(Gen.Byte.Array[8], Gen.Int[2, 5], Gen.Int[0, 3]).Sample((password, threshold, extra) =>
        {
            password[0] &= 0x7F;
            int total = Math.Max(3, threshold + extra);
            var split = ScHsmPasswordShares.Split(password, threshold, total);
            var subset = split.Shares.OrderBy(_ => RandomNumberGenerator.GetInt32(1000)).Take(threshold).ToList();
            Assert.Equal(password, ScHsmPasswordShares.Combine(split.Prime, subset));
        }, iter: 100);
    }

    [Fact]
    public void AesBlob_BuildThenDecrypt_ForAnyKeyAndRandom()
    {
        Gen.Select(Gen.Int[0, 3], Gen.Byte.Array[64], Gen.Byte.Array[8], Gen.Byte.Array[0, 4]).Sample((sizeIndex, keyBytes, random, allowed) =>
        {
            int size = new[] { 16, 24, 32, 64 }[sizeIndex];
            using var material = ScHsmAesKeyMaterial.FromKey(keyBytes.AsSpan(0, size));
            var blob = ScHsmKeyBlob.Build(Dkek, material, allowed, random);
            Assert.Equal(allowed, blob.AllowedAlgorithms);
            var parsedAgain = ScHsmKeyBlob.Parse(blob.ToArray());
            var prefix = new byte[8];
            using var back = (ScHsmAesKeyMaterial)parsedAgain.Decrypt(Dkek, prefix);
            Assert.Equal(random, prefix);
            Assert.Equal(keyBytes[..size], back.Key.Span.ToArray());
        }, iter: 100);
    }

    [Fact]
    public void WrappedKeyFile_ReadOfToArray_IsIdentity()
    {
        var label = Gen.String[Gen.Char.AlphaNumeric, 0, 150];
        Gen.Select(Gen.Byte.Array[1, 1200], label, Gen.Byte.Array[0, 40], Gen.Int[1, 255], Gen.Bool).Sample((blob, text, id, reference, withCert) =>
        {
            var prkd = ScHsmKeyDescription.BuildEc(text, id, reference, 384).Encoded;
            byte[]? cert = withCert ? [0x67, 0x03, 0x01, 0x02, 0x03] : null;
            var file = new ScHsmWrappedKeyFile(blob, prkd, cert);
            var bytes = file.ToArray();
            var back = ScHsmWrappedKeyFile.Read(bytes);
            Assert.Equal(blob, back.KeyBlob);
            Assert.Equal(prkd, back.PrivateKeyDescription);
            Assert.Equal(cert, back.Certificate);
            Assert.Equal(bytes, back.ToArray());
            var description = back.ParseDescription()!;
            Assert.Equal(text, description.Label);
            Assert.Equal(id, description.Id);
            Assert.Equal(reference, description.KeyReference);
        }, iter: 200);
    }

    [Fact]
    public void Parsers_OnRandomBytes_OnlyThrowFormatErrors()
    {
        Gen.Byte.Array[0, 400].Sample(bytes =>
        {
            Try(() => ScHsmKeyBlob.Parse(bytes));
            Try(() => ScHsmWrappedKeyFile.Read(bytes));
            Try(() => ScHsmKeyDescription.Parse(bytes));
            Try(() => ScHsmShareFile.Read(bytes));
        }, iter: 2000);

        static void Try(Action parse)
        {
            try { parse(); }
            catch (ScHsmFormatException) { }
        }
    }

    [Fact]
    public void Parsers_OnMutatedVectors_OnlyThrowFormatOrDkekErrors()
    {
        var files = new[] { "rsa2048.wky", "ec256.wky", "aes256.wky", "offline-rsa2048-crt.wky" }.Select(Vectors.Read).ToArray();
        Gen.Select(Gen.Int[0, files.Length - 1], Gen.Int[0, 2000], Gen.Byte).Sample((which, position, value) =>
        {
            var bytes = (byte[])files[which].Clone();
            bytes[position % bytes.Length] = value;
            try
            {
                var file = ScHsmWrappedKeyFile.Read(bytes);
                file.ParseDescription();
                file.ParseKeyBlob().Decrypt(Dkek).Dispose();
            }
            catch (ScHsmFormatException) { }
            catch (ScHsmWrongDkekException) { }
        }, iter: 300);
    }
}
