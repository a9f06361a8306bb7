using PicoHsm.Common;

namespace PicoHsm.Backup;

/// <summary>What is at a backup folder's path, as <see cref="BackupFolder.TargetState"/> sees it.</summary>
public enum BackupFolderState
{
    /// <summary>Nothing there yet.</summary>
    Absent,
    /// <summary>An empty folder.</summary>
    Empty,
    /// <summary>A published backup (manifest.json), or one moved aside by an interrupted -Force run.</summary>
    Complete,
    /// <summary>Key files without a manifest: a run of an older version that was interrupted.</summary>
    Incomplete,
    /// <summary>A file, or a folder holding files that are not a backup.</summary>
    Foreign,
}

/// <summary>
/// Where a whole-device backup is written and how it is published, so that the target folder is
/// never a mix: the keys and then the manifest are written into a staging folder beside the target
/// (same parent, ".name.picohsm-staging"), which is then renamed to the target. A backup that
/// replaces another (-Force) moves the old one aside first (".name.picohsm-old"), renames the new
/// one in and only then deletes the old one; a crash in between is finished or undone by
/// <see cref="RecoverAside"/>. A staging folder that is left is an interrupted run, which the next
/// run resumes.
/// </summary>
public sealed class BackupFolder
{
    public const string StagingSuffix = ".picohsm-staging";
    public const string AsideSuffix = ".picohsm-old";

    public BackupFolder(string target)
    {
        ArgumentException.ThrowIfNullOrEmpty(target);
        Target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
        Name = Path.GetFileName(Target);
        Parent = Path.GetDirectoryName(Target) ?? "";
        if (Name.Length == 0 || Parent.Length == 0)
            throw new ArgumentException($"'{target}' is the root of a drive; a backup needs a folder of its own.", nameof(target));
        Staging = Path.Combine(Parent, "." + Name + StagingSuffix);
        Aside = Path.Combine(Parent, "." + Name + AsideSuffix);
    }

    public string Target { get; }
    public string Name { get; }
    public string Parent { get; }
    public string Staging { get; }
    public string Aside { get; }
    public string ManifestPath => Path.Combine(Target, BackupManifest.FileName);

    /// <summary>The backup a path belongs to: the path itself, or the target of a staging or aside folder.</summary>
    public static BackupFolder Of(string path)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        string name = Path.GetFileName(full);
        foreach (string suffix in new[] { StagingSuffix, AsideSuffix })
            if (name.Length > suffix.Length + 1 && name[0] == '.' && name.EndsWith(suffix, StringComparison.Ordinal))
                return new BackupFolder(Path.Combine(Path.GetDirectoryName(full)!, name[1..^suffix.Length]));
        return new BackupFolder(full);
    }

    /// <summary>A file a backup run writes: a key file, or a temporary file of <see cref="AtomicFile"/>.</summary>
    public static bool IsBackupFile(string name) =>
        name.EndsWith(WrappedKeyFile.Extension, StringComparison.OrdinalIgnoreCase)
        || name.EndsWith(".wky", StringComparison.OrdinalIgnoreCase)
        || (name.StartsWith('.') && name.EndsWith(".tmp", StringComparison.Ordinal));

    public BackupFolderState TargetState()
    {
        if (File.Exists(Target)) return BackupFolderState.Foreign;
        if (!Directory.Exists(Target)) return Directory.Exists(Aside) ? BackupFolderState.Complete : BackupFolderState.Absent;
        if (File.Exists(ManifestPath)) return BackupFolderState.Complete;
        var entries = Directory.EnumerateFileSystemEntries(Target).ToList();
        if (entries.Count == 0) return BackupFolderState.Empty;
        return entries.All(e => File.Exists(e) && IsBackupFile(Path.GetFileName(e))) ? BackupFolderState.Incomplete : BackupFolderState.Foreign;
    }

    /// <summary>Why <paramref name="path"/> (a folder without manifest.json) is an unfinished backup; null when it is not one.</summary>
    public static string? WhyIncomplete(string path)
    {
        var f = Of(path);
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        if (full == f.Staging && Directory.Exists(f.Staging))
            return $"it is the staging folder of a Backup-PicoHsm run into '{f.Target}' that did not finish ({StagedCount(f.Staging)} key file(s) written so far)";
        if (full == f.Aside && Directory.Exists(f.Aside))
            return $"it is the previous backup of '{f.Target}', moved aside by a Backup-PicoHsm -Force run that did not finish";
        if (File.Exists(f.ManifestPath)) return null;
        if (Directory.Exists(f.Aside))
            return $"a Backup-PicoHsm -Force run was interrupted while replacing it; the previous backup is whole in '{f.Aside}'";
        if (Directory.Exists(f.Staging))
            return $"a Backup-PicoHsm run was interrupted before it finished; {StagedCount(f.Staging)} key file(s) are staged in '{f.Staging}'";
        if (f.TargetState() == BackupFolderState.Incomplete)
            return "it holds key files but no manifest.json (a run was interrupted before it wrote its manifest)";
        return null;
    }

    /// <summary>Throws BackupIncomplete when <paramref name="path"/> is an unfinished backup (see <see cref="WhyIncomplete"/>).</summary>
    public static void ThrowIfIncomplete(string path)
    {
        if (WhyIncomplete(path) is not { } why) return;
        var f = Of(path);
        string rerun = Directory.Exists(f.Aside) && !File.Exists(f.ManifestPath)
            ? $"Rerun Backup-PicoHsm -Directory '{f.Target}' -Force to finish replacing it"
            : $"Rerun Backup-PicoHsm -Directory '{f.Target}' (without -Force) to finish it";
        throw new PicoHsmException(PicoErrorKind.InvalidOperation, "BackupIncomplete",
            $"'{path}' is an incomplete backup: {why}. Nothing was read from it. {rerun}.", path);
    }

    /// <summary>
    /// The key backups of a folder written by Backup-PicoHsm, in manifest order. An unfinished
    /// backup is BackupIncomplete; another folder is NotABackupFolder.
    /// </summary>
    public static IReadOnlyList<PicoKeyBackup> ReadFolder(string directory)
    {
        string manifestPath = Path.Combine(directory, BackupManifest.FileName);
        if (!File.Exists(manifestPath))
        {
            ThrowIfIncomplete(directory);
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "NotABackupFolder",
                $"'{directory}' is a folder without manifest.json, not one written by Backup-PicoHsm. Give the backup files themselves (e.g. '{Path.Combine(directory, "*" + WrappedKeyFile.Extension)}').", directory);
        }
        BackupManifest manifest;
        try { manifest = BackupManifest.Read(File.ReadAllBytes(manifestPath), manifestPath); }
        catch (BackupFileException ex)
        {
            throw new PicoHsmException(PicoErrorKind.InvalidData, "Backup" + ex.Reason, ex.Message, manifestPath, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PicoHsmException(PicoErrorKind.NotFound, "FileUnreadable", $"Cannot read '{manifestPath}': {ex.Message}", manifestPath, ex);
        }
        return manifest.Entries.Select(e => BackupFiles.Read(Path.Combine(directory, e.FileName))).ToList();
    }

    private static int StagedCount(string dir) =>
        Directory.EnumerateFiles(dir).Count(f => IsBackupFile(Path.GetFileName(f)) && !Path.GetFileName(f).StartsWith('.'));

    /// <summary>
    /// Finishes or undoes a publish that a crash interrupted: with the new backup in place the old
    /// one is deleted; without it the old one is moved back. Nothing to do without an aside folder.
    /// </summary>
    /// <returns>A warning when a finished publish left an old backup that cannot be deleted; null otherwise.</returns>
    public string? RecoverAside()
    {
        if (!Directory.Exists(Aside)) return null;
        if (File.Exists(ManifestPath))
            return DeleteAside();
        if (Directory.Exists(Target))
        {
            if (Directory.EnumerateFileSystemEntries(Target).Any())
                throw new PicoHsmException(PicoErrorKind.ResourceExists, "BackupFolderConflict",
                    $"'{Target}' holds files and no manifest, and the previous backup is in '{Aside}'. Move '{Target}' away, rename '{Aside}' to '{Name}', then run Backup-PicoHsm again.", Target);
            Directory.Delete(Target);
        }
        Directory.Move(Aside, Target);
        AtomicFile.FsyncDirectory(Parent);
        return null;
    }

    /// <summary>Makes the key files of an older version's interrupted run (no manifest, no staging) the staging folder, to be resumed.</summary>
    public void AdoptIncompleteTarget()
    {
        if (Directory.Exists(Staging) || TargetState() != BackupFolderState.Incomplete) return;
        Directory.Move(Target, Staging);
        AtomicFile.FsyncDirectory(Parent);
    }

    /// <summary>Creates the staging folder (owner-only where the platform allows) if it is not there.</summary>
    public void CreateStaging()
    {
        if (Directory.Exists(Staging)) return;
        Directory.CreateDirectory(Parent);
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(Staging);
        else Directory.CreateDirectory(Staging, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        AtomicFile.FsyncDirectory(Parent);
    }

    /// <summary>Deletes the files in the staging folder that are not <paramref name="keep"/> (stale temp files, keys no longer on the device).</summary>
#if NET
    public void RemoveUnlisted(IReadOnlySet<string> keep)
#else
    public void RemoveUnlisted(ISet<string> keep)
#endif
    {
        foreach (string file in Directory.EnumerateFiles(Staging))
            if (!keep.Contains(Path.GetFileName(file)))
                File.Delete(file);
    }

    /// <summary>
    /// Renames the finished staging folder (its manifest written) to the target. An empty target
    /// folder is removed first; a previous backup is moved aside, and deleted once the new one is in
    /// place. Returns a warning when the old one could not be deleted (it is then left aside).
    /// </summary>
    public string? Publish()
    {
        if (Directory.Exists(Target))
        {
            if (Directory.EnumerateFileSystemEntries(Target).Any())
            {
                Directory.Move(Target, Aside);
                AtomicFile.FsyncDirectory(Parent);
            }
            else Directory.Delete(Target);
        }
        Directory.Move(Staging, Target);
        AtomicFile.FsyncDirectory(Parent);
        return Directory.Exists(Aside) ? DeleteAside() : null;
    }

    private string? DeleteAside()
    {
        try
        {
            Directory.Delete(Aside, recursive: true);
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"The new backup is in '{Target}', but the previous one could not be deleted from '{Aside}': {ex.Message} Delete that folder yourself.";
        }
    }
}
