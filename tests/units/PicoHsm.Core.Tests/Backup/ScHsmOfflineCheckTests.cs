using System.Text;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Devices.ScHsm.Shares;

using PicoHsm.Core.Tests.Devices.ScHsm.Backend;

namespace PicoHsm.Core.Tests.Backup;

public class ScHsmOfflineCheckTests
{
    [Theory]
    [InlineData("rsa2048.wky")]
    [InlineData("ec256.wky")]
    [InlineData("aes256.wky")]
    [InlineData("offline-rsa2048-crt.wky")]
    public void Check_EachVector_Passes(string name)
    {
        using var dkek = SecretBytes.CopyOf(VectorFiles.Dkek);
        var r = ScHsmOfflineCheck.Check(VectorFiles.Read(name), dkek, name);
        Assert.True(r.Valid);
        Assert.True(r.DkekMatch);
        Assert.True(r.Restorable, string.Join(" | ", r.Problems));
        Assert.Empty(r.Problems);
        Assert.Equal(VectorFiles.KcvHex, r.Kcv);
        if (name is "rsa2048.wky" or "ec256.wky") Assert.Contains("matches the file's public key", r.Detail);
    }

    [Fact]
    public void Check_TamperedCiphertext_FailsOnTheCmac()
    {
        var f = ScHsmWrappedKeyFile.Read(VectorFiles.Read("ec256.wky"));
        byte[] blob = f.KeyBlob.ToArray();
        blob[40] ^= 0x80;
        using var dkek = SecretBytes.CopyOf(VectorFiles.Dkek);
        var r = ScHsmOfflineCheck.Check(new ScHsmWrappedKeyFile(blob, f.PrivateKeyDescription, f.Certificate).ToArray(), dkek);
        Assert.True(r.Valid);
        Assert.True(r.DkekMatch);
        Assert.False(r.Restorable);
        Assert.Contains(r.Problems, p => p.Contains("CMAC"));
        Assert.False(r.Passed);
    }

    [Fact]
    public void Check_SwappedPublicKey_IsAMismatch()
    {
        // the RSA-CRT key's blob with the rsa2048 key's request: CMAC fine, but another key pair
        var crt = ScHsmWrappedKeyFile.Read(VectorFiles.Read("offline-rsa2048-crt.wky"));
        var rsa = ScHsmWrappedKeyFile.Read(VectorFiles.Read("rsa2048.wky"));
        using var dkek = SecretBytes.CopyOf(VectorFiles.Dkek);
        var r = ScHsmOfflineCheck.Check(new ScHsmWrappedKeyFile(crt.KeyBlob, rsa.PrivateKeyDescription, rsa.Certificate).ToArray(), dkek);
        Assert.True(r.DkekMatch);
        Assert.False(r.Restorable);
        Assert.Contains(r.Problems, p => p.Contains("does not match the public key"));
    }

    [Fact]
    public void Check_OtherDkek_NamesBothKcvs()
    {
        using var dkek = SecretBytes.CopyOf(Enumerable.Repeat((byte)7, 32).ToArray());
        var r = ScHsmOfflineCheck.Check(VectorFiles.Read("rsa2048.wky"), dkek);
        Assert.False(r.DkekMatch);
        Assert.False(r.Restorable);
        Assert.Contains(VectorFiles.KcvHex, r.Problems[0]);
        Assert.Contains(KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span)), r.Problems[0]);
    }

    [Fact]
    public void Check_Garbage_IsNotValid()
    {
        using var dkek = SecretBytes.CopyOf(VectorFiles.Dkek);
        var r = ScHsmOfflineCheck.Check(new byte[] { 0x30, 0x03, 0x04, 0x01, 0x00 }, dkek);
        Assert.False(r.Valid);
        Assert.NotEmpty(r.Problems);
    }

    [Fact]
    public void RebuildFromScHsmShares_TheVectorPbeFiles_GiveTheVectorDkek()
    {
        // sc-hsm-tool's 10,000,000 MD5 iterations per file: the slow one of this class
        using var dkek = ScHsmOfflineCheck.RebuildFromScHsmShares(
            new[] { VectorFiles.Read("dkek-share-1.pbe"), VectorFiles.Read("dkek-share-2.pbe") },
            new[] { Encoding.ASCII.GetBytes("share-one-pass"), Encoding.ASCII.GetBytes("share-two-pass") });
        Assert.Equal(VectorFiles.Dkek, dkek.Span.ToArray());
        Assert.Equal(VectorFiles.KcvHex, KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span)));
    }

    [Fact]
    public void RebuildFromScHsmShares_WrongPassword_NamesTheFile()
    {
        // a share file made here with few iterations, so the wrong password is found fast
        byte[] file = ScHsmShareFile.Create(VectorFiles.Share1, "right"u8, iterations: 1000);
        var ex = Assert.Throws<PicoHsmException>(() => ScHsmOfflineCheck.RebuildFromScHsmShares(
            new[] { file }, new[] { Encoding.ASCII.GetBytes("wrong") }, iterations: 1000));
        Assert.Equal("WrongSharePassword", ex.Reason);
        Assert.Contains("Share file 1", ex.Message);
        Assert.DoesNotContain("wrong", ex.Message.Replace("is wrong", ""));
    }
}
