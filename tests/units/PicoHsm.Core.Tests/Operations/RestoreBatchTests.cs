using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.Pkcs11;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Operations;
using PicoHsm.Session;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>
/// Issue 9's restore growth: Restore-PicoHsm searched the target id of every key twice (the pre-flight
/// and the restore), and SoftHSM2 reads every object for each search, so n keys cost n². A restore is
/// now one batch (<see cref="IRestoreBatching"/>): the searches do not grow with the key count, the
/// token lock is held for the batch, and an object another program makes at a restored id meanwhile
/// is reported. Counted with pkcs11-spy on real SoftHSM2 tokens; never timed.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class RestoreBatchTests : IDisposable
{
    private static readonly byte[] DkekId = { 0xD1, 0xBA };
    private readonly SoftHsmTokens _hsm;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "picohsm-rb-" + Guid.NewGuid().ToString("n")[..8]);

    public RestoreBatchTests(SoftHsmTokens hsm) => _hsm = hsm;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private static Pkcs11DkekBackend WithDkek(PicoHsmSession s)
    {
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        using var dkek = SoftHsmTokens.Dkek(21);
        b.ImportDkek(dkek, "DKEK", DkekId);
        return b;
    }

    /// <summary>A backup folder of the source token once it holds <paramref name="keys"/> keys (EC and AES in turn).</summary>
    private string BackupOf(int keys)
    {
        using var s = SoftHsmTokens.Connect("core-batch-src");
        var b = WithDkek(s);
        for (int i = b.ListKeys().Count; i < keys; i++)
        {
            if (i % 2 == 0) b.GenerateKey(KeyKind.Ec, 256, "P-256", new byte[] { 0x5B, (byte)i }, $"batch{i:d2}", extractable: true);
            else b.GenerateKey(KeyKind.Aes, 256, null, new byte[] { 0x5B, (byte)i }, $"batch{i:d2}", extractable: true);
        }
        string dir = Path.Combine(_root, $"backup-{keys}");
        Assert.NotNull(DeviceBackupService.Backup(s.Device, dir, false, new BackupHost()));
        return dir;
    }

    [SoftHsmFact(needsSpy: true)]
    public void Restore_SearchesTheTokenAsOftenForSixKeysAsForTwo()
    {
        string two = BackupOf(2), six = BackupOf(6);
        int Searches(string dir, string label)
        {
            using var s = SoftHsmTokens.Connect(label, module: SoftHsmTokens.Spy);
            WithDkek(s);
            var host = new BackupHost();
            int restored = 0;
            int finds = _hsm.CountCalls("C_FindObjectsInit", () => restored = DeviceRestoreService.Restore(s.Device, dir, false, host, _ => { }));
            Assert.Empty(host.Failed);
            Assert.Equal(BackupManifest.Read(File.ReadAllBytes(Path.Combine(dir, BackupManifest.FileName)), "m").Entries.Count, restored);
            return finds;
        }
        int forTwo = Searches(two, "core-batch-a");
        int forSix = Searches(six, "core-batch-b");
        Assert.True(forTwo > 0, "the spy logged no C_FindObjectsInit: the count proves nothing");
        // Was 2 per key more (the pre-flight's search and the restore's): 4 keys more, 8 searches more.
        Assert.Equal(forTwo, forSix);
        using var check = SoftHsmTokens.Connect("core-batch-b");
        Assert.Equal(6, check.Device.ListKeys().Count);
    }

    [SoftHsmFact]
    public void ObjectMadeAtARestoredIdByAnotherProgram_DuringTheBatch_IsReported_AndTheLockIsHeldUntilTheEnd()
    {
        string dir = BackupOf(2);
        var file = BackupFiles.Read(Directory.EnumerateFiles(dir, "*.pkb").OrderBy(f => f).First());
        using var s = SoftHsmTokens.Connect("core-batch-c");
        var b = WithDkek(s);

        using (var batch = b.BeginRestoring(CancellationToken.None))
        {
            var key = b.Restore(file, new RestoreRequest());
            Assert.Equal(file.Id, key.Id);
            Assert.Empty(batch.Complete()); // nothing but the batch changed the token

            // Another PicoHsm process waits for the batch (here: the lock, asked for with a short wait).
            var busy = Assert.Throws<PicoHsmException>(() => TokenLock.Acquire(s.Context.Token, CancellationToken.None, TimeSpan.FromMilliseconds(300)).Dispose());
            Assert.Equal("TokenBusy", busy.Reason);

            // pkcs11-tool, which takes no PicoHsm lock, makes a secret key at the restored id.
            Pkcs11Tool($"--keygen --key-type AES:16 --id {file.Id} --label foreign");
            var problems = batch.Complete();
            var p = Assert.Single(problems);
            Assert.Equal("IdTakenDuringRestore", p.Reason);
            Assert.Equal(PicoErrorKind.ResourceExists, p.Kind);
            Assert.Contains(file.Id!, p.Message);
            Assert.Contains("Remove-PicoKey", p.Message);
        }
        // The lock ends with the batch.
        TokenLock.Acquire(s.Context.Token, CancellationToken.None, TimeSpan.FromSeconds(5)).Dispose();
        // Outside a batch the restore searches again: the foreign secret key at the private key's id refuses it.
        var again = b.PlanRestore(file, new RestoreRequest());
        Assert.True(again.IsRefused);
        Assert.Equal("IdInUse", again.Refusals[0].Reason);
    }

    private static void Pkcs11Tool(string args)
    {
        var (exitCode, err) = SoftHsmTokens.Pkcs11Tool("core-batch-c", args);
        Assert.True(exitCode == 0, "pkcs11-tool failed: " + err);
    }
}
