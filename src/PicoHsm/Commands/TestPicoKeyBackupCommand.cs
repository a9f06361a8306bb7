using System.Collections.ObjectModel;
using System.Management.Automation;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Operations;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

/// <summary>
/// Checks backups: structure and digests with no session; with a session also the DKEK match and
/// compatibility; with -RestoreTest it unwraps into a throwaway session object and proves the key
/// works (sign and verify, or encrypt and decrypt), then destroys it.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "PicoKeyBackup", DefaultParameterSetName = "Path")]
[OutputType(typeof(PicoBackupTestResult), typeof(bool))]
public sealed class TestPicoKeyBackupCommand : PicoCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Path", ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [SupportsWildcards]
    public string[]? Path { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = "InputObject", ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Backups")]
    [ValidateNotNull]
    public PicoKeyBackup[]? InputObject { get; set; }

    /// <summary>The session to check against; without it (and without a default session) only the file is checked.</summary>
    [Parameter]
    public Session.PicoHsmSession? Session { get; set; }

    [Parameter]
    public SwitchParameter RestoreTest { get; set; }

    /// <summary>
    /// Check offline, on an air-gapped host: the DKEK is rebuilt in memory from these share files
    /// (sc-hsm-tool .pbe, all of them; or PicoHsm .dkekshare, any n) and each backup is unwrapped
    /// in memory and matched to its public key. No device is used; nothing is written.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? SharePath { get; set; }

    /// <summary>Passwords of the -SharePath files, in order; asked for when not given.</summary>
    [Parameter]
    public System.Security.SecureString[]? SharePassword { get; set; }

    private SecretBytes? _offlineDkek;

    /// <summary>Return one bool per backup (true: every check passed), for Should -BeTrue.</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void BeginProcessingCore()
    {
        if (SharePath is null) return;
        var paths = SharePath.SelectMany(p => GetResolvedProviderPathFromPSPath(p, out _)).ToList();
        var names = paths.Select(p => $"share file '{System.IO.Path.GetFileName(p)}'").ToList();
        using var passwords = Run(() => SharePasswords.Get(this, SharePassword, names, confirm: false, "-SharePassword"));
        // Opening sc-hsm-tool shares costs seconds each (10,000,000 MD5 rounds): say so, and stop on Ctrl+C.
        var progress = new ProgressRecord(1, MyInvocation.MyCommand.Name, $"Rebuilding the DKEK from {paths.Count} share file(s)");
        WriteProgress(progress);
        _offlineDkek = OfflineBackupCheck.RebuildDkek(paths, passwords.Values, Cancellation, WriteWarning);
        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);
        WriteVerbose($"DKEK {KeyCheckValue.ToHex(KeyCheckValue.Compute(_offlineDkek.Span))} rebuilt in memory from {paths.Count} share file(s).");
    }

    // PowerShell disposes the cmdlet however the pipeline ends (Ctrl+C, a terminating error),
    // so the DKEK rebuilt in memory is zeroed then too.
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _offlineDkek?.Dispose();
            EndPlanning();
        }
        base.Dispose(disposing);
    }

    // On a device that plans in batches (a PKCS#11 token), the pipeline's checks read the token's ids
    // from one pass over its objects, taken at the first check, instead of a search per file (each a
    // read of every object on SoftHSM2). This command changes nothing on the token.
    private IDisposable? _planning;

    protected override void EndProcessingCore() => EndPlanning();

    private void EndPlanning()
    {
        _planning?.Dispose();
        _planning = null;
    }

    protected override void ProcessRecordCore()
    {
        if (_offlineDkek is not null)
        {
            var files = InputObject?.Select(b => b.Path) ?? Path!.SelectMany(p => GetResolvedProviderPathFromPSPath(p, out _));
            foreach (string f in files) TryRun(() => Emit(OfflineBackupCheck.Check(f, _offlineDkek)), f);
            return;
        }
        var session = Session ?? SessionRegistry.Current.Default;
        if (session is { IsOpen: false }) session = null;
        if (RestoreTest && session is null)
            ThrowTerminatingError(NewError("NoSession", ErrorCategory.ConnectionError,
                "-RestoreTest unwraps the key on a token: connect first (Connect-PicoHsm) or pass -Session.", null));
        if (_planning is null && session?.Device is IRestoreBatching batching) _planning = batching.BeginPlanning();
        if (InputObject is not null)
        {
            foreach (var b in InputObject) TryRun(() => Emit(BackupCheck.Test(session?.Device, b.Path, b, RestoreTest)), b);
            return;
        }
        foreach (string p in Path!)
        {
            Collection<string> files;
            try { files = GetResolvedProviderPathFromPSPath(p, out _); }
            catch (ItemNotFoundException)
            {
                Emit(new PicoBackupTestResult { Path = p, Valid = false, Problems = new[] { $"'{p}' does not exist." } });
                continue;
            }
            foreach (string f in files) TryRun(() => Emit(BackupCheck.Test(session?.Device, f, null, RestoreTest)), f);
        }
    }

    private void Emit(PicoBackupTestResult r)
    {
        foreach (var problem in r.Problems) WriteVerbose($"{r.Path}: {problem}");
        foreach (var warning in r.Warnings) WriteWarning(warning);
        if (Quiet) WriteObject(r.Passed);
        else WriteObject(r);
    }
}
