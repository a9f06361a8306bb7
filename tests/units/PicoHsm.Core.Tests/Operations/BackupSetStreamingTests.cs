using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.Pkcs11;
using PicoHsm.Devices;
using PicoHsm.Operations;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>
/// Issue 9, memory: the set Backup-PicoHsm returns describes each key without holding its file (the
/// run kept every parsed file, then read every file back), and what it describes is still what a
/// restore or a test uses: the file is read when asked, and refused once it is no longer that file.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class BackupSetStreamingTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "picohsm-bs-" + Guid.NewGuid().ToString("n")[..8]);

    public BackupSetStreamingTests() => Directory.CreateDirectory(_root);

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    [SoftHsmFact]
    public void TheSet_HoldsNoFile_ReadsItWhenARestoreAsks_AndRefusesAChangedOne()
    {
        using var s = BackupCrashSafetyTests.Prepared("core-backup");
        string target = Path.Combine(_root, "set");
        var set = DeviceBackupService.Backup(s.Device, target, force: false, new BackupHost())!;
        Assert.Equal(BackupCrashSafetyTests.KeyCount, set.Backups.Length);

        var manifest = BackupManifest.Read(File.ReadAllBytes(set.ManifestPath), set.ManifestPath);
        for (int i = 0; i < set.Backups.Length; i++)
        {
            var b = set.Backups[i];
            Assert.True(b.OnDisk); // was false: every backup of the set held its parsed file
            Assert.Equal(Path.Combine(target, manifest.Entries[i].FileName), b.Path);
            Assert.Equal(manifest.Entries[i].Sha256, b.Sha256);
            Assert.Equal(BackupFiles.Read(b.Path).Sha256, b.Sha256);
        }

        // A restore of a member of the set reads its file: the key is there already.
        var first = set.Backups[0];
        Assert.Equal(first.Id, first.Content!.IdHex);
        Assert.Equal(RestoreAction.AlreadyPresent, s.Device.PlanRestore(first, new RestoreRequest()).Action);

        // Another file in its place (a valid backup, of another key): refused, not restored.
        File.Copy(set.Backups[1].Path, first.Path, overwrite: true);
        var e = Assert.Throws<PicoHsmException>(() => s.Device.PlanRestore(first, new RestoreRequest()));
        Assert.Equal("BackupChanged", e.Reason);
    }
}
