using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Keys;

namespace PicoHsm.Operations;

/// <summary>
/// Restores a whole backup folder made by <see cref="DeviceBackupService"/>. The manifest and every
/// file's SHA-256 are checked first, and the device's DKEK must be the backup's; then every key is
/// planned (<see cref="IDeviceBackend.PlanRestore"/>) before ShouldProcess: refusals are reported
/// as failed items (in -WhatIf too), a key already on the device is left as it is (so a rerun after
/// a crash completes), and the others are restored key by key (a key that fails is reported and the
/// others go on).
/// </summary>
public static class DeviceRestoreService
{
    /// <param name="restored">Called with each key as it is restored, so a caller can stream results.</param>
    /// <returns>How many keys were restored (made or replaced; keys already present are passed to
    /// <paramref name="restored"/> but not counted); -1 when the host declined.</returns>
    public static int Restore(IDeviceBackend device, string directory, bool force, IOperationHost host, Action<PicoKey> restored)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(restored);
        string token = device.Context.TokenLabel ?? "";
        string manifestPath = Path.Combine(directory, BackupManifest.FileName);
        if (!File.Exists(manifestPath))
        {
            BackupFolder.ThrowIfIncomplete(directory);
            throw new PicoHsmException(PicoErrorKind.NotFound, "NoManifest",
                $"'{directory}' has no manifest.json: it is not a folder written by Backup-PicoHsm. Restore single files with Import-PicoWrappedKey.", directory);
        }
        var manifest = DkekImportService.WithTarget(() => BackupManifest.Read(File.ReadAllBytes(manifestPath), manifestPath), manifestPath);
        var problems = DkekImportService.WithTarget(() => manifest.Verify(directory), directory);
        foreach (var w in problems.Where(p => p.Severity == ManifestProblemSeverity.Warning)) host.Warning(w.Message);
        var errors = problems.Where(p => p.Severity == ManifestProblemSeverity.Error).ToList();
        if (errors.Count > 0)
            throw new PicoHsmException(PicoErrorKind.InvalidData, "BackupDamaged",
                $"The backup in '{directory}' does not match its manifest, so nothing was restored: {string.Join(" ", errors.Select(e => e.Message))} Restore the damaged files from another copy of the backup.", directory);

        if (!device.GetDkek().Any(d => d.Present && d.KeyCheckValue == manifest.DkekKcvHex))
            throw new PicoHsmException(PicoErrorKind.InvalidOperation, "DkekMismatch",
                $"The backup is wrapped under DKEK {manifest.DkekKcvHex}, which '{token}' does not hold. Import that DKEK from its shares first (Import-PicoDkek).", device.Context);
        if (manifest.NotExported.Count > 0)
            host.Warning($"The backup does not hold {manifest.NotExported.Count} key(s) that could not be exported: {string.Join("; ", manifest.NotExported.Select(n => $"{n.IdHex} '{n.Label}': {n.Reason}"))}");

        // The one pre-flight, before ShouldProcess: every key is planned, so -WhatIf reports the very
        // refusals the real run gives (as error records) and counts what would be done.
        var batching = device as IRestoreBatching;
        List<(BackupManifestEntry Entry, string Path, PicoKeyBackup Backup, RestorePlan Plan)> plans;
        using (batching?.BeginPlanning()) plans = PreFlight(device, manifest, directory, force, host);
        int create = plans.Count(p => p.Plan.Action == RestoreAction.Create);
        int replace = plans.Count(p => p.Plan.Action == RestoreAction.Replace);
        int present = plans.Count(p => p.Plan.Action == RestoreAction.AlreadyPresent);
        int refused = manifest.Entries.Count - create - replace - present;
        string summary = $"Restore {create + replace} of the {manifest.Entries.Count} keys in {directory}: {create} new, {replace} replacing a key with the same id, " +
            $"{present} already present (left as they are), {refused} refused";
        if (!host.ShouldProcess($"token '{token}'", summary))
            return -1;

        int count = 0;
        var todo = plans.Where(p => !p.Plan.IsRefused).ToList();
        // One batch under the device's lock (taken after ShouldProcess: never held across a prompt).
        using var batch = todo.Count > 0 ? batching?.TryBeginRestoring(host.Cancellation) : null; // null: another runspace's batch is open on this session, and the restores run in it
        for (int i = 0; i < todo.Count; i++)
        {
            host.Cancellation.ThrowIfCancellationRequested();
            var (e, path, backup, plan) = todo[i];
            host.Progress(new OperationProgress($"Key {e.IdHex} '{e.Label}' ({i + 1} of {todo.Count})", 50 + 50 * i / todo.Count));
            if (plan.Action == RestoreAction.AlreadyPresent)
                host.Verbose($"Key {e.IdHex} '{e.Label}': {plan.Describe()}.");
            try
            {
                // Restore plans again under the device's lock and acts on that plan.
                var key = device.Restore(backup, new RestoreRequest(Force: force));
                restored(key);
                if (plan.Action != RestoreAction.AlreadyPresent) count++;
            }
            catch (Exception ex) when (ex is not OperationCanceledException && ErrorTranslation.Translate(ex) is { } p)
            {
                // A device that went away fails every key after it: stop with one error that says what
                // was restored and what not, instead of one long error per remaining key.
                if (ErrorTranslation.IsDeviceGone(p))
                {
                    var notReached = todo.Skip(i).Select(t => t.Entry.IdHex).ToList();
                    string list = notReached.Count <= 20 ? string.Join(", ", notReached) : string.Join(", ", notReached.Take(20)) + $" and {notReached.Count - 20} more";
                    throw new PicoHsmException(p.Kind, p.Reason,
                        $"Key {e.IdHex} '{e.Label}': {p.Message} The restore stopped at key {i + 1} of {todo.Count}: {count} restored; not reached: {list}. " +
                        "Reconnect and run Restore-PicoHsm again: the keys already restored are recognised as already present and left as they are.", path, ex);
                }
                host.ItemFailed(p, path);
            }
        }
        if (batch is not null)
            foreach (var p in batch.Complete()) host.ItemFailed(p, p.Target);
        if (present > 0)
            host.Warning($"{present} of the {manifest.Entries.Count} keys were already on '{token}' (the same id and the same key), from an earlier or interrupted restore: left as they are.");
        host.Progress(new OperationProgress("Done", 100, Completed: true));
        return count;
    }

    private static List<(BackupManifestEntry Entry, string Path, PicoKeyBackup Backup, RestorePlan Plan)> PreFlight(
        IDeviceBackend device, BackupManifest manifest, string directory, bool force, IOperationHost host)
    {
        var plans = new List<(BackupManifestEntry Entry, string Path, PicoKeyBackup Backup, RestorePlan Plan)>();
        for (int i = 0; i < manifest.Entries.Count; i++)
        {
            host.Cancellation.ThrowIfCancellationRequested();
            var e = manifest.Entries[i];
            host.Progress(new OperationProgress($"Checking key {e.IdHex} '{e.Label}' ({i + 1} of {manifest.Entries.Count})", 50 * i / manifest.Entries.Count));
            string path = Path.Combine(directory, e.FileName);
            try
            {
                var backup = BackupFiles.Read(path);
                if (backup.AuthenticationWarning is { } unauthenticated) host.Warning(unauthenticated);
                var plan = device.PlanRestore(backup, new RestoreRequest(Force: force));
                foreach (var r in plan.Refusals) host.ItemFailed(r, path);
                plans.Add((e, path, backup, plan));
            }
            catch (Exception ex) when (ex is not OperationCanceledException && ErrorTranslation.Translate(ex) is { } p)
            {
                host.ItemFailed(p, path);
            }
        }
        return plans;
    }
}
