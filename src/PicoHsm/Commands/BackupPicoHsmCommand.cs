using System.Management.Automation;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;

namespace PicoHsm.Module.Commands;

/// <summary>
/// Backs up every exportable key of the token into a folder with a manifest.json (inventory with
/// SHA-256 digests). Keys that cannot be exported are listed in the manifest with the reason.
/// </summary>
[Cmdlet(VerbsData.Backup, "PicoHsm", SupportsShouldProcess = true)]
[OutputType(typeof(PicoHsmBackupSet))]
public sealed class BackupPicoHsmCommand : PicoSessionCmdletBase
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Directory { get; set; } = "";

    /// <summary>Write into a folder that already holds a backup (its files are replaced).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void EndProcessing()
    {
        RequireLogin();
        var session = ResolvedSession;
        var backend = session.Device;
        string dir = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Directory);
        string manifestPath = Path.Combine(dir, BackupManifest.FileName);
        if (File.Exists(manifestPath) && !Force)
            ThrowTerminatingError(NewError("BackupExists", ErrorCategory.ResourceExists,
                $"'{dir}' already holds a backup (manifest.json). Choose an empty folder, or use -Force to replace it.", dir));

        var dkek = Run(() => backend.GetDkek()).FirstOrDefault(d => d.Present && d.KeyCheckValue is not null);
        if (dkek is null)
            ThrowTerminatingError(NewError("NoDkek", ErrorCategory.ObjectNotFound,
                $"'{session.TokenLabel}' has no DKEK with a known KCV, so nothing can be backed up. Create one with New-PicoDkek or import it with Import-PicoDkek.", session));
        var keys = Run(() => backend.ListKeys());
        if (!ShouldProcess(dir, $"Back up {keys.Count(k => k.Exportable)} of {keys.Count} keys of '{session.TokenLabel}' under DKEK {dkek!.KeyCheckValue}"))
            return;
        System.IO.Directory.CreateDirectory(dir);

        var backups = new List<PicoKeyBackup>();
        var notExported = new List<NotExportedKey>();
        var progress = new ProgressRecord(1, "Backup-PicoHsm", $"Backing up {keys.Count} keys of '{session.TokenLabel}'");
        for (int i = 0; i < keys.Count; i++)
        {
            ThrowIfStopping();
            var key = keys[i];
            progress.StatusDescription = $"Key {key.Id} '{key.Label}' ({i + 1} of {keys.Count})";
            progress.PercentComplete = 100 * i / Math.Max(1, keys.Count);
            WriteProgress(progress);
            if (!key.Exportable)
            {
                notExported.Add(new NotExportedKey(key.Id, key.Label ?? "", key.KeyType, key.ExportBlockedReason ?? "not exportable"));
                WriteWarning($"Key {key.Id} '{key.Label}' is not backed up: {key.ExportBlockedReason}.");
                continue;
            }
            string path = Path.Combine(dir, BackupFiles.DefaultFileName(key, backend.BackupExtension));
            try
            {
                backups.Add(backend.Export(key, path, overwrite: Force));
            }
            catch (Exception ex) when (ErrorTranslation.Translate(ex) is { } p)
            {
                notExported.Add(new NotExportedKey(key.Id, key.Label ?? "", key.KeyType, p.Message));
                WriteError(ToErrorRecord(p, key));
            }
        }
        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);

        var t = session.Token;
        var manifest = new BackupManifest
        {
            Created = DateTimeOffset.UtcNow,
            ToolVersion = ProductInfo.ToolVersion,
            SourceToken = new TokenInfo(t.Manufacturer ?? "", t.Model ?? "", t.SerialNumber ?? "", t.FirmwareVersion ?? ""),
            DkekKcv = KeyCheckValue.FromHex(dkek.KeyCheckValue!),
            Entries = backups.Select(b => new BackupManifestEntry(Path.GetFileName(b.Path), b.Id ?? "", b.Label ?? "", b.KeyType, b.Size,
                b.Curve, b.Kcv, b.Sha256)).ToList(),
            NotExported = notExported,
        };
        Run(() => { AtomicFile.WriteAllBytes(manifestPath, manifest.ToBytes(), overwrite: true); return 0; }, manifestPath);
        WriteObject(new PicoHsmBackupSet
        {
            Directory = dir, ManifestPath = manifestPath, Created = manifest.Created, Kcv = dkek.KeyCheckValue!,
            SourceToken = t.Label, SourceSerial = t.SerialNumber, Backups = backups.ToArray(),
            NotExported = notExported.Select(n => $"{n.IdHex} '{n.Label}': {n.Reason}").ToArray(),
        });
    }
}
