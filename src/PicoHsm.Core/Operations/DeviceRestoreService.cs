using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Keys;

namespace PicoHsm.Operations;

/// <summary>
/// Restores a whole backup folder made by <see cref="DeviceBackupService"/>. The manifest and every
/// file's SHA-256 are checked first, and the device's DKEK must be the backup's; only then is
/// anything restored, key by key (a key that fails is reported and the others go on).
/// </summary>
public static class DeviceRestoreService
{
    /// <param name="restored">Called with each key as it is restored, so a caller can stream results.</param>
    /// <returns>How many keys were restored; -1 when the host declined.</returns>
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
        if (!host.ShouldProcess($"token '{token}'", $"Restore {manifest.Entries.Count} keys from {directory}{(force ? ", replacing keys with the same ids" : "")}"))
            return -1;

        int count = 0;
        for (int i = 0; i < manifest.Entries.Count; i++)
        {
            host.Cancellation.ThrowIfCancellationRequested();
            var e = manifest.Entries[i];
            host.Progress(new OperationProgress($"Key {e.IdHex} '{e.Label}' ({i + 1} of {manifest.Entries.Count})", 100 * i / manifest.Entries.Count));
            string path = Path.Combine(directory, e.FileName);
            try
            {
                restored(device.Restore(BackupFiles.Read(path), new RestoreRequest(Force: force)));
                count++;
            }
            catch (Exception ex) when (ex is not OperationCanceledException && ErrorTranslation.Translate(ex) is { } p)
            {
                host.ItemFailed(p, path);
            }
        }
        host.Progress(new OperationProgress("Done", 100, Completed: true));
        return count;
    }
}
