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
