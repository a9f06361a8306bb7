using System.Management.Automation;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Keys;

namespace PicoHsm.Module.Commands;

/// <summary>
/// Restores a whole backup folder made by Backup-PicoHsm. The manifest and every file's SHA-256
/// are checked first, and the token's DKEK must be the backup's; only then is anything restored.
/// </summary>
[Cmdlet(VerbsData.Restore, "PicoHsm", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(PicoKey))]
public sealed class RestorePicoHsmCommand : PicoSessionCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string Directory { get; set; } = "";

    /// <summary>Replace keys whose id is already in use (each only after its new key is in place).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void EndProcessing()
    {
        RequireLogin();
        var session = ResolvedSession;
        var backend = session.Device;
        string dir = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Directory);
        string manifestPath = Path.Combine(dir, BackupManifest.FileName);
        if (!File.Exists(manifestPath))
            ThrowTerminatingError(NewError("NoManifest", ErrorCategory.ObjectNotFound,
                $"'{dir}' has no manifest.json: it is not a folder written by Backup-PicoHsm. Restore single files with Import-PicoWrappedKey.", dir));
        var manifest = Run(() => BackupManifest.Read(File.ReadAllBytes(manifestPath), manifestPath), manifestPath);
        var problems = Run(() => manifest.Verify(dir), dir);
        foreach (var w in problems.Where(p => p.Severity == ManifestProblemSeverity.Warning)) WriteWarning(w.Message);
        var errors = problems.Where(p => p.Severity == ManifestProblemSeverity.Error).ToList();
        if (errors.Count > 0)
            ThrowTerminatingError(NewError("BackupDamaged", ErrorCategory.InvalidData,
                $"The backup in '{dir}' does not match its manifest, so nothing was restored: {string.Join(" ", errors.Select(e => e.Message))} Restore the damaged files from another copy of the backup.", dir));

        var dkek = Run(() => backend.GetDkek()).FirstOrDefault(d => d.Present && d.KeyCheckValue == manifest.DkekKcvHex);
        if (dkek is null)
            ThrowTerminatingError(NewError("DkekMismatch", ErrorCategory.InvalidOperation,
                $"The backup is wrapped under DKEK {manifest.DkekKcvHex}, which '{session.TokenLabel}' does not hold. Import that DKEK from its shares first (Import-PicoDkek).", session));
        if (manifest.NotExported.Count > 0)
            WriteWarning($"The backup does not hold {manifest.NotExported.Count} key(s) that could not be exported: {string.Join("; ", manifest.NotExported.Select(n => $"{n.IdHex} '{n.Label}': {n.Reason}"))}");
        if (!ShouldProcess($"token '{session.TokenLabel}'", $"Restore {manifest.Entries.Count} keys from {dir}{(Force ? ", replacing keys with the same ids" : "")}"))
            return;

        var progress = new ProgressRecord(1, "Restore-PicoHsm", $"Restoring {manifest.Entries.Count} keys to '{session.TokenLabel}'");
        for (int i = 0; i < manifest.Entries.Count; i++)
        {
            ThrowIfStopping();
            var e = manifest.Entries[i];
            progress.StatusDescription = $"Key {e.IdHex} '{e.Label}' ({i + 1} of {manifest.Entries.Count})";
            progress.PercentComplete = 100 * i / manifest.Entries.Count;
            WriteProgress(progress);
            string path = Path.Combine(dir, e.FileName);
            TryRun(() =>
            {
                var backup = BackupFiles.Read(path);
                WriteObject(backend.Restore(backup, new RestoreRequest(Force: Force)));
            }, path);
        }
        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);
    }
}
