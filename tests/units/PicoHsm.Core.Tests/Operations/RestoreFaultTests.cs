using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.Pkcs11;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Operations;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>
/// Issue 8's fault "the token goes away in the middle of a restore", on real SoftHSM2 tokens: the
/// restore stops at the first key it cannot reach with one error naming what was restored and what
/// not, leaves no half-made key, and a rerun after reconnecting completes (the keys restored before
/// are already present).
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class RestoreFaultTests : IDisposable
{
    private static readonly byte[] DkekId = { 0xD1, 0xEB };
    private readonly string _root = Path.Combine(Path.GetTempPath(), "picohsm-rf-" + Guid.NewGuid().ToString("n")[..8]);

    public RestoreFaultTests(SoftHsmTokens hsm) => _ = hsm;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    [SoftHsmFact]
    public void TokenGoneMidRestore_StopsWithOneError_LeavesNoHalfKey_AndARerunCompletes()
    {
        string dir = Path.Combine(_root, "backup");
        using (var src = BackupCrashSafetyTests.Prepared("core-backup"))
            Assert.NotNull(DeviceBackupService.Backup(src.Device, dir, false, new BackupHost()));
        int total = BackupManifest.Read(File.ReadAllBytes(Path.Combine(dir, BackupManifest.FileName)), "manifest.json").Entries.Count;

        var restored = new List<PicoKey>();
        using (var dst = SoftHsmTokens.Connect("core-restore-gone"))
        {
            var backend = Assert.IsType<Pkcs11DkekBackend>(dst.Device);
            using (var dkek = SoftHsmTokens.Dkek(11)) backend.ImportDkek(dkek, "DKEK", DkekId);
            var host = new BackupHost();
            // Progress: one report per key checked, then one per key restored; the session goes at the 4th restore.
            host.AtKey = n => { if (n == total + 4) backend.Connection.Session.CloseSession(); };
            var e = Assert.Throws<PicoHsmException>(() => DeviceRestoreService.Restore(dst.Device, dir, false, host, restored.Add));
            Assert.Equal("SessionClosed", e.Reason);
            Assert.Empty(host.Failed); // one error, not one per remaining key
            Assert.Equal(3, restored.Count);
            Assert.Contains("3 restored", e.Message);
            Assert.Contains("not reached", e.Message);
            Assert.Contains("run Restore-PicoHsm again", e.Message);
        }

        using var again = SoftHsmTokens.Connect("core-restore-gone");
        // No half-made key: exactly the three restored keys, each once.
        var keys = again.Device.ListKeys();
        Assert.Equal(restored.Select(k => k.Id).OrderBy(x => x), keys.Select(k => k.Id).OrderBy(x => x));
        // The rerun completes: the three are already present, the rest restored.
        var rerunHost = new BackupHost();
        var all = new List<PicoKey>();
        int count = DeviceRestoreService.Restore(again.Device, dir, false, rerunHost, all.Add);
        Assert.Equal(total - 3, count);
        Assert.Empty(rerunHost.Failed);
        Assert.Equal(total, again.Device.ListKeys().Count);
        Assert.Contains(rerunHost.Warnings, w => w.Contains("already on"));
    }
}
