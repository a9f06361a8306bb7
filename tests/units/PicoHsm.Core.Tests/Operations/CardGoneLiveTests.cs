using System.Text;
using Xunit.Abstractions;
using Sim = PicoHsm.CardSimulator;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.ScHsm.Backend;
using PicoHsm.Core.Tests.Support;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Backend;
using PicoHsm.Keys;
using PicoHsm.Operations;
using PicoHsm.PcSc;
using PicoHsm.Session;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>
/// Issue 8's fault "the card goes away in the middle of a backup and of a restore", through the real PC/SC stack:
/// the card simulator is the card of vpcd's second reader ("Virtual PCD 00 01", port 35964) inside pcscd, and the
/// fault drops its vpcd connection right after the N-th WRAP KEY (backup) or UNWRAP KEY (restore); the simulator
/// comes back 0.5 s later, as a card put back into the reader. The module sees what SCardTransmit reports.
/// </summary>
[Collection("pcsc-live")]
public sealed class CardGoneLiveTests(ITestOutputHelper output) : IDisposable
{
    private const string Reader = "Virtual PCD 00 01";
    private const int Port = 35964;
    private const int KeyCount = 6;
    private readonly string _dir = Directory.CreateTempSubdirectory("card-gone-live-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static Sim.ScHsmOptions CardWithVectorDkek() => new() { Initialized = true, DkekShares = 1, ImportedShares = { VectorFiles.Dkek } };

    /// <summary>Plays <paramref name="options"/>' card in <see cref="Reader"/> for the duration of <paramref name="body"/>.</summary>
    private async Task WithCardInReader(Sim.ScHsmOptions options, Func<Sim.ScHsmSimulator, Task> body)
    {
        using (var ctx = PcscContext.Establish())
        {
            var before = PcscFactAttribute.WaitUntilEmpty(ctx, Reader);
            if (before is { CardPresent: true })
                Assert.Fail($"{Reader} got a card (ATR {Convert.ToHexString(before.Atr)}) from another process during the run; not interfering with it.");
        }
        var sim = new Sim.ScHsmSimulator(options);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(240));
        var run = Task.Run(() => new Sim.VpcdClient(sim, "127.0.0.1", Port, s => output.WriteLine(s)).RunAsync(cts.Token));
        try
        {
            await WaitForCard();
            await body(sim);
        }
        finally
        {
            cts.Cancel();
            try { await run; } catch (OperationCanceledException) { }
        }
    }

    /// <summary>Until pcscd shows the card in the reader again (it polls vpcd).</summary>
    private static async Task WaitForCard()
    {
        for (int i = 0; i < 80; i++)
        {
            if (ScHsmCardBackend.FindReaders().Contains(Reader)) return;
            await Task.Delay(250);
        }
        Assert.Fail($"pcscd did not show the simulated card in '{Reader}' within 20 s.");
    }

    /// <summary>
    /// Connects again once the card is back, as an admin would after putting it back: pcscd notices the removal and
    /// the new card by polling, so the first attempts can still meet the old card handle (SCARD_E_NOT_TRANSACTED).
    /// </summary>
    private static async Task<PicoHsmSession> ConnectWhenBack(Sim.ScHsmSimulator sim)
    {
        for (int i = 0; ; i++)
        {
            await Task.Delay(500);
            if (sim.IsRemoved) continue;
            try { return Connect(); }
            catch (PicoHsmException e) when (ErrorTranslation.IsDeviceGone(e) && i < 40) { }
        }
    }

    private static PicoHsmSession Connect()
    {
        using var pin = SecretBytes.CopyOf(Encoding.ASCII.GetBytes(CardHarness.Pin));
        return new PicoHsmSession(ScHsmCardBackend.ConnectCardOnly(Reader, pin));
    }

    private static void PutKeys(IDeviceBackend device)
    {
        for (int i = 1; i <= KeyCount; i++)
            device.Restore(VectorFiles.Backup(i % 2 == 0 ? "rsa2048.wky" : "ec256.wky"), new RestoreRequest(NewId: [(byte)i], NewLabel: $"key-{i}"));
    }

    [PcscFact(emptyReader: Reader)]
    public async Task CardGoneMidBackup_StopsWithOneErrorNamingTheKeysNotReached_PublishesNothing_AndARerunCompletes()
    {
        var options = CardWithVectorDkek();
        string target = Path.Combine(_dir, "backup");
        var folder = new BackupFolder(target);
        await WithCardInReader(options, async sim =>
        {
            Dictionary<string, byte[]> staged;
            using (var session = Connect())
            {
                PutKeys(session.Device);
                // The card leaves the reader at the first command after the 3rd WRAP KEY: key 3 is wrapped but its file never written.
                var fault = new Sim.SimulatedFault { AfterIns = 0x72, AfterCount = 3, CommandNumber = 1, Mode = Sim.FaultMode.Remove };
                options.Fault = fault;
                var host = new BackupHost();
                var e = Assert.Throws<PicoHsmException>(() => DeviceBackupService.Backup(session.Device, target, false, host));
                Assert.True(fault.Fired);
                output.WriteLine(e.Reason + ": " + e.Message);
                Assert.Equal(PicoErrorKind.ResourceUnavailable, e.Kind);
                Assert.True(ErrorTranslation.IsDeviceGone(e), e.Reason);
                Assert.Empty(host.Failed); // one error, not one per remaining key
                Assert.Contains("stopped at key 3 of 6", e.Message);
                Assert.Contains("2 key file(s) are staged", e.Message);
                Assert.Contains("not reached: 03, 04, 05, 06", e.Message);
                Assert.Contains("Rerun Backup-PicoHsm", e.Message);
                // Nothing published, no partial or temporary file: the two whole key files only.
                Assert.False(Directory.Exists(target));
                var files = Directory.GetFiles(folder.Staging).Select(Path.GetFileName).Order().ToArray();
                Assert.Equal(2, files.Length);
                Assert.All(files, f => Assert.EndsWith(".wky", f));
                Assert.All(files, f => Assert.NotNull(BackupFiles.Read(Path.Combine(folder.Staging, f!))));
                staged = files.ToDictionary(f => f!, f => File.ReadAllBytes(Path.Combine(folder.Staging, f!)));
                // and what the restore cmdlets say about the folder
                var inc = Assert.Throws<PicoHsmException>(() => DeviceRestoreService.Restore(session.Device, target, false, new BackupHost(), _ => { }));
                Assert.Equal("BackupIncomplete", inc.Reason);
            }

            using var again = await ConnectWhenBack(sim); // the card is back in the reader
            var rerun = new BackupHost();
            var set = DeviceBackupService.Backup(again.Device, target, false, rerun);
            Assert.NotNull(set);
            Assert.Empty(rerun.Failed);
            Assert.Equal(KeyCount, set!.Backups.Length);
            Assert.False(Directory.Exists(folder.Staging));
            foreach (var (name, bytes) in staged) // the staged files were kept (a WRAP makes fresh bytes every time)
                Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(target, name)));
            Assert.Equal(Enumerable.Range(1, KeyCount).Select(i => $"{i:x2}"), set.Backups.Select(b => b.Id).Order());
        });
    }

    [PcscFact(emptyReader: Reader)]
    public async Task CardGoneMidRestore_StopsWithOneError_LeavesAnOrphanAtMost_AndARerunCompletesIt()
    {
        // The backup: six keys from a card of the simulator (no PC/SC needed for that).
        string dir = Path.Combine(_dir, "backup");
        using (var src = CardHarness.WithVectorDkek())
        {
            PutKeys(src.Backend);
            Assert.NotNull(DeviceBackupService.Backup(src.Backend, dir, false, new BackupHost()));
        }
        var options = CardWithVectorDkek();
        // The card leaves the reader at the first command after the 3rd UNWRAP KEY (the certificate write of key 3).
        var fault = new Sim.SimulatedFault { AfterIns = 0x74, AfterCount = 3, CommandNumber = 1, Mode = Sim.FaultMode.Remove };
        options.Fault = fault;
        await WithCardInReader(options, async sim =>
        {
            var restored = new List<PicoKey>();
            using (var session = Connect())
            {
                var host = new BackupHost();
                var e = Assert.Throws<PicoHsmException>(() => DeviceRestoreService.Restore(session.Device, dir, false, host, restored.Add));
                Assert.True(fault.Fired);
                output.WriteLine(e.Reason + ": " + e.Message);
                Assert.Equal("CardUnavailable", e.Reason);
                Assert.Empty(host.Failed); // one error, not one per remaining key
                Assert.Equal(2, restored.Count);
                Assert.Contains("stopped at key 3 of 6: 2 restored; not reached: 03, 04, 05, 06", e.Message);
                Assert.Contains("orphan", e.Message); // key 3 was unwrapped and could not be removed again
            }

            using var again = await ConnectWhenBack(sim);
            // No half key unnoticed: key 3 is listed as an orphan, the two restored keys are complete.
            var keys = again.Device.ListKeys();
            Assert.Equal(3, keys.Count);
            var orphan = Assert.Single(keys, k => k.IsOrphan);
            Assert.Equal(PicoKeyStatus.Orphan, orphan.Status);
            Assert.Equal(new[] { "01", "02" }, keys.Where(k => !k.IsOrphan).Select(k => k.Id).Order());

            // The rerun: 01 and 02 already present, the orphan completed where it is, 04-06 restored.
            var rerun = new BackupHost();
            var second = new List<PicoKey>();
            Assert.Equal(4, DeviceRestoreService.Restore(again.Device, dir, false, rerun, second.Add));
            Assert.Empty(rerun.Failed);
            var after = again.Device.ListKeys();
            Assert.Equal(KeyCount, after.Count);
            Assert.DoesNotContain(after, k => k.IsOrphan);
            Assert.Equal(Enumerable.Range(1, KeyCount).Select(i => $"{i:x2}"), after.Select(k => k.Id).Order());
            Assert.Equal(orphan.KeyReference, after.Single(k => k.Id == "03").KeyReference);
            Assert.Equal(KeyCount, sim.KeyReferences.Count(k => k != 0));
            Assert.Contains(rerun.Warnings, w => w.Contains("2 of the 6 keys were already on"));
        });
    }
}
