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
public static class DeviceBackupService
{
    /// <param name="directory">The backup folder (a full path).</param>
    /// <param name="force">Write into a folder that already holds a backup (its files are replaced).</param>
    /// <returns>The backup set; null when the host declined.</returns>
    public static PicoHsmBackupSet? Backup(IDeviceBackend device, string directory, bool force, IOperationHost host)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(host);
        var token = device.Context.Token;
        string manifestPath = Path.Combine(directory, BackupManifest.FileName);
        if (File.Exists(manifestPath) && !force)
            throw new PicoHsmException(PicoErrorKind.ResourceExists, "BackupExists",
                $"'{directory}' already holds a backup (manifest.json). Choose an empty folder, or use -Force to replace it.", directory);

        var dkek = device.GetDkek().FirstOrDefault(d => d.Present && d.KeyCheckValue is not null)
            ?? throw new PicoHsmException(PicoErrorKind.NotFound, "NoDkek",
                $"'{token.Label}' has no DKEK with a known KCV, so nothing can be backed up. Create one with New-PicoDkek or import it with Import-PicoDkek.", device.Context);
        var keys = device.ListKeys();
        if (!host.ShouldProcess(directory, $"Back up {keys.Count(k => k.Exportable)} of {keys.Count} keys of '{token.Label}' under DKEK {dkek.KeyCheckValue}"))
            return null;
        Directory.CreateDirectory(directory);

        var backups = new List<PicoKeyBackup>();
        var notExported = new List<NotExportedKey>();
        for (int i = 0; i < keys.Count; i++)
        {
            host.Cancellation.ThrowIfCancellationRequested();
            var key = keys[i];
            host.Progress(new OperationProgress($"Key {key.Id} '{key.Label}' ({i + 1} of {keys.Count})", 100 * i / Math.Max(1, keys.Count)));
            if (!key.Exportable)
            {
                notExported.Add(new NotExportedKey(key.Id, key.Label ?? "", key.KeyType, key.ExportBlockedReason ?? "not exportable"));
                host.Warning($"Key {key.Id} '{key.Label}' is not backed up: {key.ExportBlockedReason}.");
                continue;
            }
            string path = Path.Combine(directory, BackupFiles.DefaultFileName(key, device.BackupExtension));
            try
            {
                backups.Add(device.Export(key, path, overwrite: force));
            }
            catch (Exception ex) when (ex is not OperationCanceledException && ErrorTranslation.Translate(ex) is { } p)
            {
                notExported.Add(new NotExportedKey(key.Id, key.Label ?? "", key.KeyType, p.Message));
                host.ItemFailed(p, key);
            }
        }
        host.Progress(new OperationProgress("Done", 100, Completed: true));

        var manifest = new BackupManifest
        {
            Created = DateTimeOffset.UtcNow,
            ToolVersion = ProductInfo.ToolVersion,
            SourceToken = new TokenInfo(token.Manufacturer ?? "", token.Model ?? "", token.SerialNumber ?? "", token.FirmwareVersion ?? ""),
            DkekKcv = KeyCheckValue.FromHex(dkek.KeyCheckValue!),
            Entries = backups.Select(b => new BackupManifestEntry(Path.GetFileName(b.Path), b.Id ?? "", b.Label ?? "", b.KeyType, b.Size,
                b.Curve, b.Kcv, b.Sha256)).ToList(),
            NotExported = notExported,
        };
        DkekImportService.WithTarget(() => { AtomicFile.WriteAllBytes(manifestPath, manifest.ToBytes(), overwrite: true); return 0; }, manifestPath);
        return new PicoHsmBackupSet
        {
            Directory = directory, ManifestPath = manifestPath, Created = manifest.Created, Kcv = dkek.KeyCheckValue!,
            SourceToken = token.Label, SourceSerial = token.SerialNumber, Backups = backups.ToArray(),
            NotExported = notExported.Select(n => $"{n.IdHex} '{n.Label}': {n.Reason}").ToArray(),
        };
    }
}

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
            throw new PicoHsmException(PicoErrorKind.NotFound, "NoManifest",
                $"'{directory}' has no manifest.json: it is not a folder written by Backup-PicoHsm. Restore single files with Import-PicoWrappedKey.", directory);
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
