using PicoHsm.Keys;
using PicoHsm.Core.Tests.Devices.ScHsm.Backend;

namespace PicoHsm.Core.Tests.Backup;

public sealed class BackupFilesTests
{
    [Fact]
    public void DescribeScHsm_ReadsPublicKeyAndSizeFromTheFile()
    {
        var rsa = VectorFiles.Backup("rsa2048.wky");
        Assert.Equal(2048, rsa.Size);
        Assert.True(rsa.HasPublicKey);
        Assert.False(rsa.HasCertificate);
        Assert.Equal(PublicKeyInfo.Fingerprint(VectorFiles.Read("rsa2048.pub.der")), rsa.PublicKeyFingerprint);
        var ec = VectorFiles.Backup("ec256.wky");
        Assert.Equal("P-256", ec.Curve);
        Assert.Equal(PublicKeyInfo.Fingerprint(VectorFiles.Read("ec256.pub.der")), ec.PublicKeyFingerprint);
        var aes = VectorFiles.Backup("aes256.wky");
        Assert.Equal(256, aes.Size);
        Assert.False(aes.HasPublicKey);
        var crt = VectorFiles.Backup("offline-rsa2048-crt.wky");
        Assert.Null(crt.Id);
        Assert.False(crt.HasPublicKey);
    }
}
