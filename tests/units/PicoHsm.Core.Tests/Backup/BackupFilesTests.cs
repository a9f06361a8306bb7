using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Keys;
using PicoHsm.Core.Tests.Devices.ScHsm.Backend;

namespace PicoHsm.Core.Tests.Backup;

public sealed class BackupFilesTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "picohsm-backupfiles-" + Guid.NewGuid().ToString("n"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

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

    [Fact]
    public void Write_RefusesAnExistingFileBeforeTheDeviceIsAsked()
    {
        string path = Path.Combine(_dir, "k.pkb");
        File.WriteAllBytes(path, new byte[] { 7 });
        bool asked = false;
        var ex = Assert.Throws<PicoHsmException>(() => BackupFiles.Write(path, overwrite: false, () => { asked = true; return Bytes(1); }));
        Assert.Equal("FileExists", ex.Reason);
        Assert.False(asked);
        Assert.Equal(new byte[] { 7 }, File.ReadAllBytes(path));
    }

    [Fact]
    public void Write_AFileThatAppearsWhileTheKeyIsWrapped_IsKeptAndTheErrorSaysItExists()
    {
        // The generic backend used to let the no-replace rename's IOException through here.
        string path = Path.Combine(_dir, "k.pkb");
        var ex = Assert.Throws<PicoHsmException>(() => BackupFiles.Write(path, overwrite: false, () =>
        {
            File.WriteAllBytes(path, new byte[] { 7 }); // another process, while the device wraps
            return Bytes(1);
        }));
        Assert.Equal("FileExists", ex.Reason);
        Assert.Equal(new byte[] { 7 }, File.ReadAllBytes(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(_dir)); // no temporary file left
    }

    [Fact]
    public void Write_WithOverwrite_ReplacesTheFileAndDescribesIt()
    {
        string path = Path.Combine(_dir, "k.pkb");
        File.WriteAllBytes(path, new byte[] { 7 });
        string? described = null;
        var wrapped = new WrappedKeyBytes(new byte[] { 1, 2, 3 }, p => { described = p; return null!; });
        BackupFiles.Write(path, overwrite: true, () => wrapped);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(path));
        Assert.Equal(path, described);
    }

    private static WrappedKeyBytes Bytes(byte b) => new(new[] { b }, _ => throw new InvalidOperationException("not written, not described"));
}
