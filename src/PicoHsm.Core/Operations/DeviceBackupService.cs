using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Keys;

namespace PicoHsm.Operations;

/// <summary>
/// Backs up every exportable key of a device into a folder with a manifest.json (inventory with
/// SHA-256 digests). Keys that cannot be exported are listed in the manifest with the reason; a
/// key whose export fails is reported to the host and the others go on.
/// </summary>
/// <remarks>
/// Crash safety (see <see cref="BackupFolder"/>): every file is written durably into a staging
/// folder beside the target, the manifest last, and the folder is then renamed to the target, so
/// the target is absent, the previous backup, or the whole new one. A run that is interrupted
/// (Ctrl+C, kill, power loss, the device or the disk going away) leaves the staging folder; the
/// next run resumes it, keeping each staged file that still reads back intact (its digest checks)
/// and describes the same key under the same DKEK. When the device goes away or a file cannot be
/// written, the run stops with one error that says what was backed up and what was not: no key is
/// wrapped after that, and of the files already handed to the writers only those being written
/// finish, whole (the staging folder never holds a partial file).
/// </remarks>
public static class DeviceBackupService
{
    /// <param name="directory">The backup folder (a full path).</param>
    /// <param name="force">Replace a backup already in that folder (the old one stays whole until the new one is published).</param>
    /// <returns>The backup set; null when the host declined.</returns>
    public static PicoHsmBackupSet? Backup(IDeviceBackend device, string directory, bool force, IOperationHost host)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(host);
        var token = device.Context.Token;
        var folder = new BackupFolder(directory);
        var state = folder.TargetState();
        if (state == BackupFolderState.Foreign)
            throw new PicoHsmException(PicoErrorKind.ResourceExists, "FolderNotEmpty",
                $"'{folder.Target}' is a file or a folder that holds files other than a backup. Backup-PicoHsm publishes a finished backup by renaming it into place, so choose a new or empty folder.", folder.Target);
        if (state == BackupFolderState.Complete && !force)
            throw new PicoHsmException(PicoErrorKind.ResourceExists, "BackupExists",
                $"'{folder.Target}' already holds a backup (manifest.json). Choose an empty folder, or use -Force to replace it (the old backup stays whole until the new one is complete).", folder.Target);

        // One slot per key, emptied once the key is done: the run holds the keys not reached yet (what
        // a stopped run names), not the whole listing. Listed before the DKEK is described: on a PKCS#11
        // token the listing's pass over the objects finds the DKEK too, so describing it needs no search.
        PicoKey?[] keys = device.ListKeys().ToArray();
        var dkek = device.GetDkek().FirstOrDefault(d => d.Present && d.KeyCheckValue is not null)
            ?? throw new PicoHsmException(PicoErrorKind.NotFound, "NoDkek",
                $"'{token.Label}' has no DKEK with a known KCV, so nothing can be backed up. Create one with New-PicoDkek or import it with Import-PicoDkek.", device.Context);
        string kcv = dkek.KeyCheckValue!;
        int exportable = 0;
        foreach (var k in keys) if (k!.Exportable) exportable++;
        bool resume = Directory.Exists(folder.Staging) || state == BackupFolderState.Incomplete;
        if (!host.ShouldProcess(folder.Target, $"{(resume ? "Finish the interrupted backup of" : "Back up")} {exportable} of {keys.Length} keys of '{token.Label}' under DKEK {kcv}"))
            return null;

        OnDisk(folder, "prepare the staging folder", null, () =>
        {
            if (folder.RecoverAside() is { } w) host.Warning(w);
            folder.AdoptIncompleteTarget();
            folder.CreateStaging();
        });
        if (resume) host.Verbose($"Resuming the interrupted backup staged in '{folder.Staging}'.");
        // The files an interrupted run staged, read once: a key whose file is not among them is
        // exported without a look at the disk first (no File.Exists per key).
        var stagedNames = new HashSet<string>(StringComparer.OrdinalIgnoreCase); // a false match only costs the check below
        OnDisk(folder, "read the staging folder", null, () =>
        {
            foreach (var f in Directory.EnumerateFiles(folder.Staging)) stagedNames.Add(Path.GetFileName(f));
        });

        // Per key backed up, only its description without the file (PicoKeyBackup.WithoutContent, at
        // the path it has once published): what the manifest lists and the set returns. The parsed file
        // and its bytes are garbage as soon as the file is written; nothing is read back at the end.
        var backups = new List<PicoKeyBackup>(exportable);
        var notExported = new List<NotExportedKey>();
        int reused = 0;
        // The device wraps the next key while writers put the files before it on disk (each file still
        // temporary, fsync, rename). The key files' folder entries are made durable once, by the writer's
        // fsync of the staging folder when the loop ends (and again by the manifest's write), not once per
        // key. A key's slot is emptied once its file is written, so a stopped run names what is not staged.
        using (var writer = new DurableFileWriter(stopAtFirstFailure: true))
        {
            int Staged() => reused + writer.Written;
            for (int i = 0; i < keys.Length; i++)
            {
                var key = keys[i]!;
                if (host.Cancellation.IsCancellationRequested)
                {
                    writer.Dispose(); // what is in flight lands; the summary counts it
                    host.Warning(Summary(folder, keys, Staged(), force) + $" Rerun Backup-PicoHsm -Directory '{folder.Target}' to finish it; the staged keys are kept.");
                    host.Cancellation.ThrowIfCancellationRequested();
                }
                host.Progress(new OperationProgress($"Key {key.Id} '{key.Label}' ({i + 1} of {keys.Length})", 100 * i / Math.Max(1, keys.Length)));
                if (!key.Exportable)
                {
                    notExported.Add(new NotExportedKey(key.Id, key.Label ?? "", key.KeyType, key.ExportBlockedReason ?? "not exportable"));
                    host.Warning($"Key {key.Id} '{key.Label}' is not backed up: {key.ExportBlockedReason}.");
                    keys[i] = null;
                    continue;
                }
                string name = BackupFiles.DefaultFileName(key, device.BackupExtension);
                string path = Path.Combine(folder.Staging, name);
                string published = Path.Combine(folder.Target, name);
                bool queued = false;
                try
                {
                    // A file an earlier key failed to write stops the run here, before the next wrap.
                    if (writer.FirstFailure is { } failed) throw new WriteFailed(failed);
                    if (stagedNames.Contains(name) && Reusable(path, key, kcv, token.SerialNumber) is { } staged)
                    {
                        backups.Add(staged.WithoutContent(published));
                        reused++;
                    }
                    else
                    {
                        var wrapped = device.WrapForExport(key);
                        int slot = i;
                        writer.Write(path, wrapped.Bytes, overwrite: true, written: () => keys[slot] = null);
                        queued = true;
                        backups.Add(wrapped.DescribeAt(path).WithoutContent(published));
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException && ErrorTranslation.Translate(ex is WriteFailed w ? w.InnerException! : ex) is { } p)
                {
                    if (ex is WriteFailed || StopsTheRun(p, ex))
                    {
                        writer.Dispose();
                        throw Stopped(p, folder, keys, Staged(), force);
                    }
                    notExported.Add(new NotExportedKey(key.Id, key.Label ?? "", key.KeyType, p.Message));
                    host.ItemFailed(p, key);
                }
                if (!queued) keys[i] = null;
            }
            writer.Flush();
            if (writer.FirstFailure is { } lastFailed)
            {
                if (ErrorTranslation.Translate(lastFailed) is { } failure) throw Stopped(failure, folder, keys, Staged(), force);
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(lastFailed).Throw();
            }
        }
        if (reused > 0) host.Verbose($"{reused} key file(s) staged by the interrupted run were intact and kept.");

        var manifest = new BackupManifest
        {
            Created = DateTimeOffset.UtcNow,
            ToolVersion = ProductInfo.ToolVersion,
            SourceToken = new TokenInfo(token.Manufacturer ?? "", token.Model ?? "", token.SerialNumber ?? "", token.FirmwareVersion ?? ""),
            DkekKcv = KeyCheckValue.FromHex(kcv),
            Entries = backups.Select(b => new BackupManifestEntry(Path.GetFileName(b.Path), b.Id ?? "", b.Label ?? "", b.KeyType, b.Size,
                b.Curve, b.Kcv, b.Sha256)).ToList(),
            NotExported = notExported,
        };
        string stagedSummary = $"all {backups.Count} key file(s) are staged in '{folder.Staging}'";
        OnDisk(folder, "write the manifest", stagedSummary, () =>
        {
            var names = new HashSet<string>(manifest.Entries.Select(e => e.FileName), StringComparer.Ordinal);
            folder.RemoveUnlisted(names);
            AtomicFile.WriteAllBytes(Path.Combine(folder.Staging, BackupManifest.FileName), manifest.ToBytes(), overwrite: true);
        });
        OnDisk(folder, "publish the backup", stagedSummary + " with their manifest", () =>
        {
            if (folder.Publish() is { } w) host.Warning(w);
        });
        host.Progress(new OperationProgress("Done", 100, Completed: true));
        return new PicoHsmBackupSet
        {
            Directory = folder.Target, ManifestPath = folder.ManifestPath, Created = manifest.Created, Kcv = kcv,
            SourceToken = token.Label, SourceSerial = token.SerialNumber,
            Backups = backups.ToArray(),
            NotExported = notExported.Select(n => $"{n.IdHex} '{n.Label}': {n.Reason}").ToArray(),
        };
    }

    /// <summary>
    /// A file an interrupted run staged, if it can be kept: it reads back intact (a .pkb checks its
    /// own SHA-256; an sc-hsm-tool file parses) and it is this key (id, label, type, public key, key
    /// reference, source token) wrapped under this DKEK. Anything else is exported again.
    /// </summary>
    private static PicoKeyBackup? Reusable(string path, PicoKey key, string kcv, string? serial)
    {
        if (!File.Exists(path)) return null;
        PicoKeyBackup b;
        try { b = BackupFiles.Read(path); }
        catch (PicoHsmException) { return null; }
        bool same = string.Equals(b.Kcv, kcv, StringComparison.OrdinalIgnoreCase)
            && string.Equals(b.Id, key.Id, StringComparison.OrdinalIgnoreCase)
            && (b.Label ?? "") == (key.Label ?? "")
            && b.KeyType == key.KeyType
            && (b.PublicKeyFingerprint is null || key.PublicKeyFingerprint is null || b.PublicKeyFingerprint == key.PublicKeyFingerprint)
            && (b.KeyReference is null || key.KeyReference is null || b.KeyReference == key.KeyReference)
            && (b.SourceSerial is null || serial is null || b.SourceSerial == serial);
        return same ? b : null;
    }

    /// <summary>
    /// Failures after which no other key can be backed up: the device went away (token removed,
    /// session closed, card not answering), or the backup folder cannot be written (disk full,
    /// read-only, no permission, a file that cannot be replaced).
    /// </summary>
    private static bool StopsTheRun(PicoHsmException p, Exception ex) =>
        ErrorTranslation.IsDeviceGone(p) || p.Reason is "FileError" or "FileAccessDenied" or "FileNotFound" || IsFileSystem(ex);

    private static bool IsFileSystem(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
            if (ex is IOException or UnauthorizedAccessException) return true;
        return false;
    }

    /// <summary>A key file a writer could not write: it stops the run, as a failed write of the key in hand would.</summary>
    private sealed class WriteFailed(Exception inner) : Exception(inner.Message, inner);

    // keys: the slots of the keys not staged, in listing order (the others are null). The run stopped
    // at the first of them: the one whose wrap or file failed, or the next to do.
    private static string Summary(BackupFolder folder, PicoKey?[] keys, int staged, bool force)
    {
        int stoppedAt = Array.FindIndex(keys, k => k is not null);
        var notReached = new List<string>();
        foreach (var k in keys) if (k is not null) notReached.Add(k.Id);
        string list = notReached.Count <= 20 ? string.Join(", ", notReached) : string.Join(", ", notReached.Take(20)) + $" and {notReached.Count - 20} more";
        string published = Directory.Exists(folder.Target) && force
            ? $"nothing was published: the previous backup in '{folder.Target}' is untouched"
            : $"nothing was published to '{folder.Target}'";
        string at = stoppedAt < 0 ? $"after the last of {keys.Length} keys" : $"at key {stoppedAt + 1} of {keys.Length}";
        return $"The backup stopped {at}: {staged} key file(s) are staged in '{folder.Staging}' and {published}; not reached: {(notReached.Count == 0 ? "none" : list)}.";
    }

    private static PicoHsmException Stopped(PicoHsmException cause, BackupFolder folder, PicoKey?[] keys, int staged, bool force)
    {
        string rerun = $"Rerun Backup-PicoHsm -Directory '{folder.Target}'{(force ? " -Force" : "")} to finish it; the staged keys are kept.";
        var key = Array.Find(keys, k => k is not null);
        string which = key is null ? "" : $"Key {key.Id} '{key.Label}': ";
        return new PicoHsmException(cause.Kind, cause.Reason,
            $"{which}{cause.Message} {Summary(folder, keys, staged, force)} {rerun}", folder.Target, cause);
    }

    /// <summary>Runs a file-system step of the backup; a failure names the folder, what was done, and how to finish.</summary>
    private static void OnDisk(BackupFolder folder, string step, string? done, Action work)
    {
        try { work(); }
        catch (Exception ex) when (ex is not PicoHsmException && ex is not OperationCanceledException && ErrorTranslation.Translate(ex) is { } p)
        {
            string state = done is null ? "Nothing was written." : $"Done so far: {done}; nothing is published yet.";
            throw new PicoHsmException(p.Kind, p.Reason,
                $"Could not {step} for '{folder.Target}' (staging folder '{folder.Staging}', beside it in '{folder.Parent}'): {p.Message} {state} " +
                $"Free space or fix the permissions of '{folder.Parent}', then run Backup-PicoHsm again; it finishes an interrupted backup.", folder.Target, ex);
        }
    }
}
