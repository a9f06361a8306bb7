using PicoHsm.Core.Tests.Devices.Pkcs11;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Operations;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>
/// Issue 8, Seen 5 and 7 at the service: every key is planned before ShouldProcess, so a declined
/// run (-WhatIf) reports the same refusals as the real one, and a rerun finds the keys already there.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class DeviceRestoreServicePlanTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "picohsm-restore-plan-" + Guid.NewGuid().ToString("n")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [SoftHsmFact]
    public void Refusals_AreReportedBeforeShouldProcess_TheSameDeclinedOrNot_AndARerunFindsTheKeysPresent()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        using (var dkek = SoftHsmTokens.Dkek(1)) b.ImportDkek(dkek, "DKEK", new byte[] { 0xD1, 0xE0 });
        // A token of its own would be cleaner; core-keys is shared, so the backup holds every key on it.
        b.GenerateKey(KeyKind.Ec, 256, "P-256", Guid.NewGuid().ToByteArray()[..6], "service", extractable: true);
        var set = DeviceBackupService.Backup(b, _dir, force: false, new ListHost());
        Assert.NotNull(set);
        int n = set!.KeyCount;
        Assert.True(n > 0);

        // Onto the token the keys came from: every key is already there. Declined: nothing is asked twice.
        var declined = new ListHost { Answer = false };
        Assert.Equal(-1, DeviceRestoreService.Restore(b, _dir, force: false, declined, _ => { }));
        Assert.Empty(declined.Failed);
        var asked = Assert.Single(declined.Asked);
        Assert.Contains($"0 new, 0 replacing a key with the same id, {n} already present", asked);

        var real = new ListHost();
        var output = new List<PicoKey>();
        Assert.Equal(0, DeviceRestoreService.Restore(b, _dir, force: false, real, output.Add));
        Assert.Empty(real.Failed);
        Assert.Equal(n, output.Count);
        Assert.Contains(real.Warnings, w => w.Contains($"{n} of the {n} keys were already on"));

        // Another token holding the same DKEK id with another DKEK: refused for every key, the same declined or not.
        using var other = SoftHsmTokens.Connect("core-other-dkek");
        var ob = Assert.IsType<Pkcs11DkekBackend>(other.Device);
        using (var dkek2 = SoftHsmTokens.Dkek(2)) ob.ImportDkek(dkek2, "DKEK", new byte[] { 0xD1, 0xE0 });
        Assert.Throws<PicoHsm.Common.PicoHsmException>(() => DeviceRestoreService.Restore(ob, _dir, false, new ListHost { Answer = false }, _ => { }));
    }
}
