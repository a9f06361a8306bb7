using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Formats;

/// <summary>The flows the module builds on: a backup file moved from one DKEK to another, end to end.</summary>
public class ScHsmRewrapTests
{
    [Theory]
    [InlineData("rsa2048.wky", "rsa2048.pub.der")]
    [InlineData("ec256.wky", "ec256.pub.der")]
    [InlineData("offline-rsa2048-crt.wky", "offline-rsa2048-crt.pub.der")]
    [InlineData("aes256.wky", null)]
    public void WrappedKeyFile_RewrappedUnderNewDkek_KeepsKeyAndDescription(string file, string? pub)
    {
        using var oldDkek = SecretBytes.CopyOf(Vectors.Hex(Vectors.DkekHex));
        using var newDkek = SecretBytes.CopyOf(RandomNumberGenerator.GetBytes(32));
        var original = ScHsmWrappedKeyFile.Read(Vectors.PathOf(file));
        var blob = original.ParseKeyBlob();

        using var material = blob.Decrypt(oldDkek.Span);
        var rewrapped = ScHsmKeyBlob.Build(newDkek.Span, material, blob.AllowedAlgorithms);
        var copy = new ScHsmWrappedKeyFile(rewrapped.ToArray(), original.PrivateKeyDescription, original.Certificate);

        var reread = ScHsmWrappedKeyFile.Read(copy.ToArray());
        Assert.Equal(original.PrivateKeyDescription, reread.PrivateKeyDescription);
        Assert.Equal(original.Certificate, reread.Certificate);
        var newBlob = reread.ParseKeyBlob();
        Assert.Equal(KeyCheckValue.ToHex(KeyCheckValue.Compute(newDkek.Span)), newBlob.KcvHex);
        Assert.Equal(blob.KeyType, newBlob.KeyType);
        Assert.Throws<ScHsmWrongDkekException>(() => newBlob.Decrypt(oldDkek.Span).Dispose());

        using var back = newBlob.Decrypt(newDkek.Span);
        if (pub is not null)
        {
            Assert.True(ScHsmPublicKeyCheck.MatchesPublicKey(back, Vectors.Read(pub)));
        }
        else
        {
            Assert.Equal(((ScHsmAesKeyMaterial)material).Key.Span.ToArray(), ((ScHsmAesKeyMaterial)back).Key.Span.ToArray());
        }
    }

    [Fact]
    public void CrtBlob_ConvertedToPicoForm_StillMatches()
    {
        // The Pico re-wraps a restored CRT key as type 5: do the same offline and check the result.
        var dkek = Vectors.Hex(Vectors.DkekHex);
        using var crt = (ScHsmRsaKeyMaterial)ScHsmWrappedKeyFile.Read(Vectors.PathOf("offline-rsa2048-crt.wky")).ParseKeyBlob().Decrypt(dkek);
        using var rsa = crt.ToRsa();
        using var plain = ScHsmRsaKeyMaterial.FromRsa(rsa, crtForm: false);
        var blob = ScHsmKeyBlob.Build(dkek, plain);
        Assert.Equal(ScHsmKeyType.Rsa, blob.KeyType);
        using var back = blob.Decrypt(dkek);
        Assert.True(ScHsmPublicKeyCheck.MatchesPublicKey(back, Vectors.Read("offline-rsa2048-crt.pub.der")));
    }
}
