using System.Diagnostics;
using System.Runtime.InteropServices;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.Pkcs11;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Operations;
using PicoHsm.Session;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>A host that records everything and can act (cancel, pull the token) when key n is reached.</summary>
internal sealed class BackupHost : IOperationHost
{
    public CancellationTokenSource Cancel { get; } = new();
    public CancellationToken Cancellation => Cancel.Token;
    /// <summary>Called with the number of key progress reports so far (1 for the first key).</summary>
    public Action<int>? AtKey { get; set; }
    public int Keys { get; private set; }
    public List<string> Warnings { get; } = new();
    public List<string> Verbose_ { get; } = new();
    public List<(PicoHsmException Error, object? Target)> Failed { get; } = new();
    public bool ShouldProcess(string target, string action) => true;
    public IReadOnlyList<char[]>? GivenPasswords() => null; // a backup asks for no password
    public string PasswordParameter => "-SharePassword";
    public char[]? ReadSecret(string prompt) => throw new InvalidOperationException("no passwords here");
    public void Progress(OperationProgress progress)
    {
        if (progress.Completed) return;
        Keys++;
        AtKey?.Invoke(Keys);
    }
    public void Warning(string message) => Warnings.Add(message);
    public void Verbose(string message) => Verbose_.Add(message);
    public void ItemFailed(PicoHsmException error, object? target) => Failed.Add((error, target));
}

/// <summary>
/// Issue 8, Seen 6 and the crash-safety invariants of Backup-PicoHsm, on real SoftHSM2 tokens:
/// a backup is staged beside its target and published by rename; an interrupted run is recognised
/// and finished by a rerun; -Force keeps the old backup whole; a token that goes away stops the run
/// with one error that names the keys not reached.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class BackupCrashSafetyTests : IDisposable
{
    internal const int KeyCount = 12;
    private static readonly byte[] DkekId = { 0xD1, 0xEB };
    private readonly string _root = Path.Combine(Path.GetTempPath(), "picohsm-bk-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly SoftHsmTokens _hsm;

    public BackupCrashSafetyTests(SoftHsmTokens hsm)
    {
        _hsm = hsm;
        Directory.CreateDirectory(_root);
    }

    public void Dispose()
    {
        AtomicFile.BeforeMove.Value = null;
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    /// <summary>A session on <paramref name="label"/> with a DKEK and <see cref="KeyCount"/> extractable AES keys (made once).</summary>
    internal static PicoHsmSession Prepared(string label)
    {
        var s = SoftHsmTokens.Connect(label);
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        using (var dkek = SoftHsmTokens.Dkek(11)) b.ImportDkek(dkek, "DKEK", DkekId);
        for (int i = b.ListKeys().Count; i < KeyCount; i++)
            b.GenerateKey(KeyKind.Aes, 128, null, new byte[] { 0x40, (byte)i }, $"aes{i:d2}", extractable: true);
        return s;
    }

    private static string Sha(string path) => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)));

    private static Dictionary<string, string> Digests(string dir) =>
        Directory.EnumerateFiles(dir).ToDictionary(f => Path.GetFileName(f), Sha);

    [SoftHsmFact]
    public void Seen6_Cancelled_AfterSomeKeys_IsRecognisedAsIncomplete_AndARerunWithoutForceFinishesIt()
    {
        using var s = Prepared("core-backup");
        string target = Path.Combine(_root, "nightly");
        var folder = new BackupFolder(target);
        var host = new BackupHost();
        host.AtKey = n => { if (n == 4) host.Cancel.Cancel(); };
        Assert.ThrowsAny<OperationCanceledException>(() => DeviceBackupService.Backup(s.Device, target, force: false, host));

        // The target never holds a mix: it does not exist; the staging folder beside it holds whole key files only.
        Assert.False(Directory.Exists(target));
        var staged = Digests(folder.Staging);
        Assert.InRange(staged.Count, 1, KeyCount - 1);
        Assert.All(staged.Keys, n => Assert.EndsWith(".pkb", n));
        Assert.All(staged.Keys, n => BackupFiles.Read(Path.Combine(folder.Staging, n)));
        Assert.Contains(host.Warnings, w => w.Contains("not reached") && w.Contains("Rerun Backup-PicoHsm"));

        // Restore and Get-PicoKeyBackup (ReadFolder) on the target or the staging folder: "incomplete backup ... rerun".
        foreach (string dir in new[] { target, folder.Staging })
        {
            var r = Assert.Throws<PicoHsmException>(() => DeviceRestoreService.Restore(s.Device, dir, false, new BackupHost(), _ => { }));
            Assert.Equal("BackupIncomplete", r.Reason);
            Assert.Contains("incomplete backup", r.Message);
            Assert.Contains("Rerun Backup-PicoHsm", r.Message);
            Assert.Equal("BackupIncomplete", Assert.Throws<PicoHsmException>(() => BackupFolder.ReadFolder(dir)).Reason);
        }

        // A rerun without -Force finishes it: no "already exists", a manifest of every key, the staged files kept.
        var rerun = new BackupHost();
        var set = DeviceBackupService.Backup(s.Device, target, force: false, rerun);
        Assert.NotNull(set);
        Assert.Empty(rerun.Failed);
        Assert.Equal(KeyCount, set!.KeyCount);
        Assert.False(Directory.Exists(folder.Staging));
        var manifest = BackupManifest.Read(File.ReadAllBytes(folder.ManifestPath), null);
        Assert.Equal(KeyCount, manifest.Entries.Count);
        Assert.Empty(manifest.Verify(target));
        foreach (var (name, sha) in staged)
            Assert.Equal(sha, Sha(Path.Combine(target, name)));
        Assert.Contains(rerun.Verbose_, v => v.Contains($"{staged.Count} key file(s) staged"));
        Assert.Equal(KeyCount, BackupFolder.ReadFolder(target).Count);
    }

    [SoftHsmFact]
    public void Resume_ReExportsAStagedFileThatIsDamaged_AndDropsStrayFiles()
    {
        using var s = Prepared("core-backup");
        string target = Path.Combine(_root, "damaged");
        var folder = new BackupFolder(target);
        var host = new BackupHost();
        host.AtKey = n => { if (n == 3) host.Cancel.Cancel(); };
        Assert.ThrowsAny<OperationCanceledException>(() => DeviceBackupService.Backup(s.Device, target, false, host));
        string victim = Directory.EnumerateFiles(folder.Staging).First();
        var bytes = File.ReadAllBytes(victim);
        bytes[100] ^= 1;
        File.WriteAllBytes(victim, bytes);
        File.WriteAllText(Path.Combine(folder.Staging, ".stray.pkb.0123456789ab.tmp"), "left by a crash");

        var set = DeviceBackupService.Backup(s.Device, target, false, new BackupHost());
        Assert.Equal(KeyCount, set!.KeyCount);
        Assert.Empty(BackupManifest.Read(File.ReadAllBytes(folder.ManifestPath), null).Verify(target));
        Assert.NotEqual(Convert.ToHexString(bytes), Convert.ToHexString(File.ReadAllBytes(Path.Combine(target, Path.GetFileName(victim)))));
    }

    [SoftHsmFact]
    public void CrashBeforeTheManifest_LeavesNoManifest_AndTheRerunFinishes()
    {
        using var s = Prepared("core-backup");
        string target = Path.Combine(_root, "no-manifest");
        var folder = new BackupFolder(target);
        AtomicFile.BeforeMove.Value = temp => { if (temp.Contains(BackupManifest.FileName)) throw new InvalidOperationException("power lost"); };
        Assert.Throws<InvalidOperationException>(() => DeviceBackupService.Backup(s.Device, target, false, new BackupHost()));
        AtomicFile.BeforeMove.Value = null;
        Assert.False(Directory.Exists(target));
        Assert.Equal(KeyCount, Directory.EnumerateFiles(folder.Staging).Count());
        Assert.False(File.Exists(Path.Combine(folder.Staging, BackupManifest.FileName)));
        Assert.Equal("BackupIncomplete", Assert.Throws<PicoHsmException>(() => DeviceRestoreService.Restore(s.Device, target, false, new BackupHost(), _ => { })).Reason);

        var rerun = new BackupHost();
        Assert.Equal(KeyCount, DeviceBackupService.Backup(s.Device, target, false, rerun)!.KeyCount);
        Assert.Contains(rerun.Verbose_, v => v.Contains($"{KeyCount} key file(s) staged"));
    }

    [SoftHsmFact]
    public void Force_KeepsTheOldBackupWhole_UntilTheNewOneIsPublished()
    {
        using var s = Prepared("core-backup");
        string target = Path.Combine(_root, "forced");
        var folder = new BackupFolder(target);
        DeviceBackupService.Backup(s.Device, target, false, new BackupHost());
        var old = Digests(target);

        var host = new BackupHost();
        host.AtKey = n => { if (n == 5) host.Cancel.Cancel(); };
        Assert.ThrowsAny<OperationCanceledException>(() => DeviceBackupService.Backup(s.Device, target, force: true, host));
        Assert.Equal(old, Digests(target));
        Assert.True(Directory.Exists(folder.Staging));
        // The old backup is complete, so it restores as it is; no mix.
        Assert.Empty(BackupManifest.Read(File.ReadAllBytes(folder.ManifestPath), null).Verify(target));
        // Without -Force the old one is still refused as existing.
        Assert.Equal("BackupExists", Assert.Throws<PicoHsmException>(() => DeviceBackupService.Backup(s.Device, target, false, new BackupHost())).Reason);

        byte[]? staged = null;
        AtomicFile.BeforeMove.Value = temp => { if (temp.Contains(BackupManifest.FileName)) staged = File.ReadAllBytes(temp); };
        var set = DeviceBackupService.Backup(s.Device, target, force: true, new BackupHost());
        AtomicFile.BeforeMove.Value = null;
        Assert.Equal(KeyCount, set!.KeyCount);
        Assert.Equal(staged, File.ReadAllBytes(folder.ManifestPath)); // the new manifest, written in staging, is the one published
        Assert.False(Directory.Exists(folder.Staging));
        Assert.False(Directory.Exists(folder.Aside));
        Assert.Empty(BackupManifest.Read(File.ReadAllBytes(folder.ManifestPath), null).Verify(target));
    }

    [SoftHsmFact]
    public void CrashBetweenTheRenamesOfForce_IsRecognised_AndRecovered()
    {
        using var s = Prepared("core-backup");
        string target = Path.Combine(_root, "renamed");
        var folder = new BackupFolder(target);
        DeviceBackupService.Backup(s.Device, target, false, new BackupHost());
        var old = Digests(target);
        // The state a crash leaves after "old aside" and before "new in": no target, the old one aside.
        Directory.Move(target, folder.Aside);

        var r = Assert.Throws<PicoHsmException>(() => DeviceRestoreService.Restore(s.Device, target, false, new BackupHost(), _ => { }));
        Assert.Equal("BackupIncomplete", r.Reason);
        Assert.Contains("-Force", r.Message);
        Assert.Contains(folder.Aside, r.Message);
        // Without -Force the old backup counts as existing (it is whole, aside).
        Assert.Equal("BackupExists", Assert.Throws<PicoHsmException>(() => DeviceBackupService.Backup(s.Device, target, false, new BackupHost())).Reason);
        Assert.Equal(old, Digests(folder.Aside));

        var set = DeviceBackupService.Backup(s.Device, target, force: true, new BackupHost());
        Assert.Equal(KeyCount, set!.KeyCount);
        Assert.False(Directory.Exists(folder.Aside));
        Assert.Empty(BackupManifest.Read(File.ReadAllBytes(folder.ManifestPath), null).Verify(target));

        // A crash after "new in" and before "delete old": the next run deletes the old one.
        Directory.CreateDirectory(folder.Aside);
        File.WriteAllText(Path.Combine(folder.Aside, "manifest.json"), "old");
        Assert.Equal(KeyCount, BackupFolder.ReadFolder(target).Count);
        DeviceBackupService.Backup(s.Device, target, force: true, new BackupHost());
        Assert.False(Directory.Exists(folder.Aside));
    }

    [SoftHsmFact]
    public void AFolderWithOtherFiles_IsRefusedBeforeAnythingIsWritten()
    {
        using var s = Prepared("core-backup");
        string target = Path.Combine(_root, "photos");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "holiday.jpg"), "x");
        var e = Assert.Throws<PicoHsmException>(() => DeviceBackupService.Backup(s.Device, target, force: true, new BackupHost()));
        Assert.Equal("FolderNotEmpty", e.Reason);
        Assert.False(Directory.Exists(new BackupFolder(target).Staging));
        Assert.Single(Directory.EnumerateFileSystemEntries(target));
    }

    [SoftHsmFact]
    public void AnOlderVersionsInterruptedRun_KeyFilesWithoutManifest_IsFinished()
    {
        using var s = Prepared("core-backup");
        string target = Path.Combine(_root, "legacy");
        // What the previous version left after Ctrl+C: key files in the target, no manifest.
        var keys = s.Device.ListKeys();
        Directory.CreateDirectory(target);
        foreach (var k in keys.Take(5))
            s.Device.Export(k, Path.Combine(target, BackupFiles.DefaultFileName(k, s.Device.BackupExtension)), overwrite: false);
        var before = Digests(target);
        Assert.Equal("BackupIncomplete", Assert.Throws<PicoHsmException>(() => DeviceRestoreService.Restore(s.Device, target, false, new BackupHost(), _ => { })).Reason);

        var set = DeviceBackupService.Backup(s.Device, target, false, new BackupHost());
        Assert.Equal(KeyCount, set!.KeyCount);
        foreach (var (name, sha) in before) Assert.Equal(sha, Sha(Path.Combine(target, name)));
        Assert.Empty(BackupManifest.Read(File.ReadAllBytes(new BackupFolder(target).ManifestPath), null).Verify(target));
    }

    /// <remarks>
    /// SoftHSM2 keeps a token's objects in memory: with its token directory removed mid-backup it
    /// goes on wrapping (tried: the run completed) and only C_GetTokenInfo fails, for every later
    /// token listing of the process. So the token going away is injected as what a module reports
    /// for a token pulled mid-session: the session handle dies under the backup (C_CloseSession
    /// from outside), and every later call returns CKR_SESSION_HANDLE_INVALID.
    /// </remarks>
    [SoftHsmFact]
    public void TokenGoneMidBackup_StopsAtTheFirstError_AndNamesTheKeysNotReached()
    {
        using var s = Prepared("core-backup-gone");
        var keys = s.Device.ListKeys();
        string target = Path.Combine(_root, "gone");
        var folder = new BackupFolder(target);
        var host = new BackupHost();
        var p11 = Assert.IsType<Pkcs11DkekBackend>(s.Device).Connection.Session;
        host.AtKey = n => { if (n == 4) p11.CloseSession(); };

        var e = Assert.Throws<PicoHsmException>(() => DeviceBackupService.Backup(s.Device, target, false, host));
        Assert.Empty(host.Failed); // one error, not one per remaining key
        Assert.Equal("SessionClosed", e.Reason);
        Assert.Equal(PicoErrorKind.ResourceUnavailable, e.Kind);
        string notReached = e.Message.Split("not reached")[1];
        foreach (var k in keys.Skip(3)) Assert.Contains(k.Id, notReached);
        Assert.DoesNotContain(keys[0].Id + ",", notReached);
        Assert.Contains("Rerun Backup-PicoHsm", e.Message);
        Assert.Contains("3 key file(s) are staged", e.Message);
        Assert.False(Directory.Exists(target));
        Assert.Equal(3, Directory.EnumerateFiles(folder.Staging).Count());
        Assert.All(Directory.EnumerateFiles(folder.Staging), f => BackupFiles.Read(f));

        // Reconnected, the rerun finishes and keeps the three.
        using var again = SoftHsmTokens.Connect("core-backup-gone");
        var staged = Digests(folder.Staging);
        Assert.Equal(KeyCount, DeviceBackupService.Backup(again.Device, target, false, new BackupHost())!.KeyCount);
        foreach (var (name, sha) in staged) Assert.Equal(sha, Sha(Path.Combine(target, name)));
    }
}
