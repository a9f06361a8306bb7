using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.Pkcs11;
using PicoHsm.Operations;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>
/// A [Fact] that needs SoftHSM2 and root on Linux, to mount small tmpfs file systems (disk full,
/// read-only) and set the immutable attribute (a file that cannot be replaced). Decided at discovery.
/// </summary>
public sealed class RootFsFactAttribute : FactAttribute
{
    [DllImport("libc")]
    private static extern uint geteuid();

    public RootFsFactAttribute()
    {
        string? why = SoftHsmConditions.WhyNot(false);
        if (why is null && geteuid() != 0) why = "Needs root, to mount a tmpfs and to set chattr +i (CI runs as root).";
        if (why is not null) Skip = why;
    }
}

/// <summary>
/// Faults of issue 8 on a real SoftHSM2 token and real file systems: disk full (a tmpfs of a few
/// pages), a read-only target parent (tmpfs remounted ro), a file that cannot be replaced
/// (chattr +i). Each: one clear error, no partial file under a final name, earlier files
/// untouched, a summary of what was done and what not, and a rerun that finishes once fixed.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class BackupFaultTests : IDisposable
{
    private const int KeyCount = BackupCrashSafetyTests.KeyCount;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "picohsm-bkf-" + Guid.NewGuid().ToString("n")[..8]);
    private readonly List<string> _mounts = new();

    public BackupFaultTests(SoftHsmTokens hsm)
    {
        _ = hsm;
        Directory.CreateDirectory(_root);
    }

    public void Dispose()
    {
        Run("chattr", "-R", "-i", _root);
        foreach (string m in _mounts) Run("umount", m);
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private static int Run(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        return p.ExitCode;
    }

    /// <summary>
    /// Free bytes of the file system at <paramref name="dir"/> (statvfs, through stat -f). Not DriveInfo:
    /// Mono's DriveInfo takes a tmpfs mounted after start-up for the root file system (82 GB free
    /// instead of 256 KiB: new byte[...] overflowed in the Mono run).
    /// </summary>
    private static long FreeBytes(string dir)
    {
        var psi = new ProcessStartInfo("stat") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "-f", "-c", "%a %S", dir }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string[] f = p.StandardOutput.ReadToEnd().Trim().Split(' ');
        p.WaitForExit();
        Assert.True(p.ExitCode == 0 && f.Length == 2, $"stat -f {dir} failed");
        long free = long.Parse(f[0], CultureInfo.InvariantCulture) * long.Parse(f[1], CultureInfo.InvariantCulture);
        Assert.InRange(free, 0, 1L << 20); // a few pages of a small tmpfs, never the disk under it
        return free;
    }

    private string Mount(string name, string options)
    {
        string dir = Path.Combine(_root, name);
        Directory.CreateDirectory(dir);
        Assert.True(Run("mount", "-t", "tmpfs", "-o", options, "tmpfs", dir) == 0, $"mount -t tmpfs -o {options} failed");
        _mounts.Add(dir);
        return dir;
    }

    private static Dictionary<string, string> Digests(string dir) =>
        Directory.EnumerateFiles(dir).ToDictionary(f => Path.GetFileName(f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    /// <summary>Waits (up to 30 s) until <paramref name="dir"/> holds <paramref name="count"/> key files and no temporary one.</summary>
    private static void WaitForStagedFiles(string dir, int count)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var names = Directory.Exists(dir) ? Directory.EnumerateFiles(dir).Select(Path.GetFileName).ToList() : new List<string?>();
            if (names.Count(f => f!.EndsWith(".pkb")) >= count && !names.Any(f => f!.EndsWith(".tmp"))) return;
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the writers did not put {count} key files in '{dir}' within 30 s");
            Thread.Sleep(10);
        }
    }

    private static void NoPartialFiles(string dir)
    {
        if (!Directory.Exists(dir)) return;
        Assert.DoesNotContain(Directory.EnumerateFiles(dir), f => Path.GetFileName(f).EndsWith(".tmp"));
        foreach (string f in Directory.EnumerateFiles(dir).Where(f => f.EndsWith(".pkb"))) BackupFiles.Read(f);
    }

    [RootFsFact]
    public void DiskFull_StopsWithOneError_KeepsTheOldBackup_AndTheRerunFinishesOnceThereIsSpace()
    {
        using var s = BackupCrashSafetyTests.Prepared("core-backup-disk");
        string mnt = Mount("small", "size=256k");
        string target = Path.Combine(mnt, "backup");
        var folder = new BackupFolder(target);
        DeviceBackupService.Backup(s.Device, target, false, new BackupHost());
        var old = Digests(target);

        // Fill the disk to three free pages: three key files fit, the fourth does not.
        string filler = Path.Combine(mnt, "filler");
        long free = FreeBytes(mnt);
        File.WriteAllBytes(filler, new byte[free - 3 * 4096]);

        var host = new BackupHost();
        var e = Assert.Throws<PicoHsmException>(() => DeviceBackupService.Backup(s.Device, target, force: true, host));
        Assert.Empty(host.Failed);
        Assert.Equal("FileError", e.Reason);
        // The system's own words, which the runtime words: .NET "No space left on device", Mono "Disk full".
        Assert.Matches("No space left on device|Disk full", e.Message);
        Assert.Contains("not reached", e.Message);
        int staged = Directory.EnumerateFiles(folder.Staging).Count();
        Assert.InRange(staged, 1, KeyCount - 1);
        Assert.Contains($"{staged} key file(s) are staged", e.Message);
        Assert.Contains("the previous backup in", e.Message);
        NoPartialFiles(folder.Staging);
        Assert.Equal(old, Digests(target)); // the old backup is whole and untouched
        Assert.Empty(BackupManifest.Read(File.ReadAllBytes(folder.ManifestPath), null).Verify(target));

        File.Delete(filler);
        var set = DeviceBackupService.Backup(s.Device, target, force: true, new BackupHost());
        Assert.Equal(KeyCount, set!.KeyCount);
        Assert.False(Directory.Exists(folder.Staging));
        Assert.False(Directory.Exists(folder.Aside));
        Assert.Empty(BackupManifest.Read(File.ReadAllBytes(folder.ManifestPath), null).Verify(target));
    }

    [RootFsFact]
    public void DiskFull_AtTheManifest_SaysAllKeysAreStaged_AndPublishesNothing()
    {
        using var s = BackupCrashSafetyTests.Prepared("core-backup-disk");
        string mnt = Mount("manifest", "size=256k");
        string target = Path.Combine(mnt, "backup");
        var folder = new BackupFolder(target);
        string filler = Path.Combine(mnt, "filler");
        // Every key fits, the manifest does not: fill as the last key is reached, once the writers have put the
        // keys before it on disk (they write while the token wraps the next key: measured before they finish,
        // the free space shrank under the filler, whose own write then failed; seen once on Mono in CI).
        var host = new BackupHost
        {
            AtKey = n =>
            {
                if (n != KeyCount) return;
                WaitForStagedFiles(folder.Staging, KeyCount - 1);
                File.WriteAllBytes(filler, new byte[FreeBytes(mnt) - 4096]);
            },
        };
        var e = Assert.Throws<PicoHsmException>(() => DeviceBackupService.Backup(s.Device, target, false, host));
        Assert.Equal("FileError", e.Reason);
        Assert.Contains("write the manifest", e.Message);
        Assert.Contains($"all {KeyCount} key file(s) are staged", e.Message);
        Assert.False(Directory.Exists(target));
        Assert.False(File.Exists(Path.Combine(folder.Staging, BackupManifest.FileName)));
        NoPartialFiles(folder.Staging);
        Assert.Equal(KeyCount, Directory.EnumerateFiles(folder.Staging).Count());

        File.Delete(filler);
        Assert.Equal(KeyCount, DeviceBackupService.Backup(s.Device, target, false, new BackupHost())!.KeyCount);
    }

    [RootFsFact]
    public void ReadOnlyTargetParent_IsRefusedBeforeAnyKey_AndTheOldBackupIsUntouched()
    {
        using var s = BackupCrashSafetyTests.Prepared("core-backup-disk");
        string mnt = Mount("ro", "size=256k");
        string target = Path.Combine(mnt, "backup");
        DeviceBackupService.Backup(s.Device, target, false, new BackupHost());
        var old = Digests(target);
        Assert.Equal(0, Run("mount", "-o", "remount,ro", mnt));

        foreach (var (dir, force) in new[] { (target, true), (Path.Combine(mnt, "fresh"), false) })
        {
            var host = new BackupHost();
            var e = Assert.Throws<PicoHsmException>(() => DeviceBackupService.Backup(s.Device, dir, force, host));
            Assert.Contains(e.Reason, new[] { "FileError", "FileAccessDenied" });
            Assert.Contains("prepare the staging folder", e.Message);
            Assert.Contains(mnt, e.Message);
            Assert.Contains("Nothing was written", e.Message);
            Assert.Equal(0, host.Keys); // refused before the first key
        }
        Assert.Equal(old, Digests(target));
        Assert.False(Directory.Exists(Path.Combine(mnt, "fresh")));
    }

    [RootFsFact]
    public void AStagedFileThatCannotBeReplaced_StopsWithOneError_AndTheRerunFinishesOnceUnlocked()
    {
        using var s = BackupCrashSafetyTests.Prepared("core-backup-disk");
        string target = Path.Combine(_root, "locked");
        var folder = new BackupFolder(target);
        var first = new BackupHost();
        first.AtKey = n => { if (n == 4) first.Cancel.Cancel(); };
        Assert.ThrowsAny<OperationCanceledException>(() => DeviceBackupService.Backup(s.Device, target, false, first));
        // A staged file that no longer checks (damaged) and cannot be replaced (immutable).
        string victim = Directory.EnumerateFiles(folder.Staging).Order().Last();
        var bytes = File.ReadAllBytes(victim);
        bytes[100] ^= 1;
        File.WriteAllBytes(victim, bytes);
        Assert.Equal(0, Run("chattr", "+i", victim));
        var before = Digests(folder.Staging);

        var host = new BackupHost();
        var e = Assert.Throws<PicoHsmException>(() => DeviceBackupService.Backup(s.Device, target, false, host));
        Assert.Empty(host.Failed);
        Assert.Contains(e.Reason, new[] { "FileAccessDenied", "FileError" });
        Assert.Contains("not reached", e.Message);
        Assert.Contains("Rerun Backup-PicoHsm", e.Message);
        Assert.False(Directory.Exists(target));
        // Earlier files untouched (the locked one too). Files the writers had in hand when the locked one
        // failed may have landed, each whole: never a partial or temporary file.
        var after = Digests(folder.Staging);
        foreach (var (name, digest) in before) Assert.Equal(digest, after[name]);
        Assert.DoesNotContain(after.Keys, n => n.EndsWith(".tmp"));
        Assert.All(after.Keys.Except(before.Keys), n => BackupFiles.Read(Path.Combine(folder.Staging, n)));

        Assert.Equal(0, Run("chattr", "-i", victim));
        Assert.Equal(KeyCount, DeviceBackupService.Backup(s.Device, target, false, new BackupHost())!.KeyCount);
        Assert.Empty(BackupManifest.Read(File.ReadAllBytes(folder.ManifestPath), null).Verify(target));
    }

    [RootFsFact]
    public void Force_WhenAFileOfTheOldBackupCannotBeDeleted_PublishesTheNewOne_AndSaysWhereTheOldOneIs()
    {
        using var s = BackupCrashSafetyTests.Prepared("core-backup-disk");
        string target = Path.Combine(_root, "old-locked");
        var folder = new BackupFolder(target);
        DeviceBackupService.Backup(s.Device, target, false, new BackupHost());
        Assert.Equal(0, Run("chattr", "+i", folder.ManifestPath));

        var host = new BackupHost();
        var set = DeviceBackupService.Backup(s.Device, target, force: true, host);
        Assert.Equal(KeyCount, set!.KeyCount);
        Assert.Contains(host.Warnings, w => w.Contains(folder.Aside) && w.Contains("Delete that folder"));
        Assert.Empty(BackupManifest.Read(File.ReadAllBytes(folder.ManifestPath), null).Verify(target));
        Assert.Equal(KeyCount, BackupFolder.ReadFolder(target).Count); // a leftover aside folder does not make it incomplete

        Assert.Equal(0, Run("chattr", "-i", Path.Combine(folder.Aside, BackupManifest.FileName)));
        DeviceBackupService.Backup(s.Device, target, force: true, new BackupHost());
        Assert.False(Directory.Exists(folder.Aside));
    }
}
