using System.Management.Automation;
using System.Security;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Operations;

namespace PicoHsm.Module.Commands;

/// <summary>
/// Moves key backups (.pkb and sc-hsm-tool .wky) from an old DKEK to a new one, offline: any n shares of
/// each rebuild both DKEKs in memory, every key is unwrapped and wrapped again, and each new file passes the
/// offline check before it is written. The keys are in clear in this process while it runs, so it belongs
/// on an air-gapped host (see about_PicoHsm_DKEK); every buffer is zeroed and nothing but the converted
/// backups is written. A share file (old or new) that others can read gives a warning, as with
/// Import-PicoDkek and Test-PicoKeyBackup -SharePath.
/// </summary>
[Cmdlet(VerbsData.Convert, "PicoKeyBackup", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(PicoBackupTestResult))]
public sealed class ConvertPicoKeyBackupCommand : PicoCmdletBase
{
    /// <summary>The backups made under the old DKEK.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string[] Path { get; set; } = Array.Empty<string>();

    /// <summary>Share files of the old DKEK: any n of a PicoHsm split, or all sc-hsm-tool files.</summary>
    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string[] SharePath { get; set; } = Array.Empty<string>();

    /// <summary>Passwords of the -SharePath files, in order; asked per custodian when not given.</summary>
    [Parameter]
    public SecureString[]? SharePassword { get; set; }

    /// <summary>Share files of the new DKEK (made with New-PicoDkek -NoImport by the new custodians).</summary>
    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string[] NewSharePath { get; set; } = Array.Empty<string>();

    /// <summary>Passwords of the -NewSharePath files, in order; asked per custodian when not given.</summary>
    [Parameter]
    public SecureString[]? NewSharePassword { get; set; }

    /// <summary>Where the converted backups go (same file names); not the directory of the old ones.</summary>
    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string OutputDirectory { get; set; } = "";

    /// <summary>Overwrite converted backups already in -OutputDirectory.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    private readonly List<string> _paths = new();

    protected override void ProcessRecordCore()
    {
        foreach (string p in Path)
            _paths.AddRange(GetResolvedProviderPathFromPSPath(p, out _));
    }

    protected override void EndProcessingCore()
    {
        string dir = SessionState.Path.GetUnresolvedProviderPathFromPSPath(OutputDirectory);
        var targets = _paths.Select(p => System.IO.Path.Combine(dir, System.IO.Path.GetFileName(p))).ToList();
        if (targets.Distinct(StringComparer.Ordinal).Count() != targets.Count)
            ThrowTerminatingError(NewError("DuplicateFileName", ErrorCategory.InvalidArgument,
                "Two backups have the same file name and would be converted to the same file. Convert them in separate calls with different -OutputDirectory.", null));
        if (!Force && targets.FirstOrDefault(File.Exists) is { } clash)
            ThrowTerminatingError(NewError("BackupFileExists", ErrorCategory.ResourceExists,
                $"'{clash}' already exists. Choose an empty -OutputDirectory, or use -Force.", clash));
        var oldShares = SharePath.SelectMany(p => GetResolvedProviderPathFromPSPath(p, out _)).ToList();
        var newShares = NewSharePath.SelectMany(p => GetResolvedProviderPathFromPSPath(p, out _)).ToList();

        WriteWarning("Convert-PicoKeyBackup unwraps every key into this process's memory, in clear, and wraps it again under the new DKEK. " +
                     "Run it only on an air-gapped host with no network and no swap to disk, then shut that host down. See Get-Help about_PicoHsm_DKEK.");
        if (!ShouldProcess(dir, $"Unwrap {_paths.Count} key backup(s) in clear in this process and write them wrapped under the new DKEK"))
            return;

        SecretBytes? oldDkek = null, newDkek = null;
        try
        {
            var oldNames = oldShares.Select(p => $"old DKEK share '{System.IO.Path.GetFileName(p)}'").ToList();
            using (var pw = Run(() => SharePasswords.Get(this, SharePassword, oldNames, confirm: false, "-SharePassword")))
                oldDkek = Run(() => OfflineBackupCheck.RebuildDkek(oldShares, pw.Values, Cancellation, WriteWarning), oldShares[0]);
            var newNames = newShares.Select(p => $"new DKEK share '{System.IO.Path.GetFileName(p)}'").ToList();
            using (var pw = Run(() => SharePasswords.Get(this, NewSharePassword, newNames, confirm: false, "-NewSharePassword")))
                newDkek = Run(() => OfflineBackupCheck.RebuildDkek(newShares, pw.Values, Cancellation, WriteWarning), newShares[0]);

            Directory.CreateDirectory(dir);
            var progress = new ProgressRecord(1, "Convert-PicoKeyBackup", "Wrapping backups under the new DKEK");
            for (int i = 0; i < _paths.Count; i++)
            {
                ThrowIfStopping();
                progress.StatusDescription = System.IO.Path.GetFileName(_paths[i]);
                progress.PercentComplete = 100 * i / _paths.Count;
                WriteProgress(progress);
                int index = i;
                var o = oldDkek;
                var n = newDkek;
                PicoBackupTestResult? result = null;
                if (TryRun(() => result = BackupConversion.Convert(_paths[index], o, n, targets[index], Force), _paths[index]))
                    WriteObject(result);
            }
            progress.RecordType = ProgressRecordType.Completed;
            WriteProgress(progress);
        }
        finally
        {
            oldDkek?.Dispose();
            newDkek?.Dispose();
        }
    }
}
