using System.Management.Automation;
using PicoHsm.Backup;
using PicoHsm.Devices;
using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

/// <summary>
/// Restores keys from backup files. Before ShouldProcess, the device's restore plan: the backup's
/// DKEK must be the token's, the token must support the mechanism, key type and size, and the
/// target must be free; each refusal is an error record, in -WhatIf too. The very key already at
/// the target is reported (a warning) and left as it is. -Force replaces another key of the same
/// class, and only after the new key is in place; never the DKEK.
/// </summary>
/// <remarks>
/// Many piped files, on a device that restores in batches (<see cref="IRestoreBatching"/>, a PKCS#11
/// token): when no key is confirmed one by one, the pipeline is one batch, as Restore-PicoHsm is: the
/// plans read one pass over the token's objects, and from the first restore (after ShouldProcess) the
/// token lock is held to the pipeline's end with an index the restores keep current. Otherwise every
/// plan and every restore searches the token, which grows with its objects (SoftHSM2 reads each one).
/// With -Confirm, each key is planned and restored on its own, so the lock is never held across a prompt.
/// </remarks>
[Cmdlet(VerbsData.Import, "PicoWrappedKey", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = "Path")]
[OutputType(typeof(PicoKey))]
public sealed class ImportPicoWrappedKeyCommand : PicoSessionCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Path", ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [SupportsWildcards]
    public string[]? Path { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = "InputObject", ValueFromPipeline = true)]
    [ValidateNotNull]
    public PicoKeyBackup[]? InputObject { get; set; }

    /// <summary>Restore under another CKA_ID (hex).</summary>
    [Parameter]
    [ValidatePattern("^([0-9a-fA-F]{2})+$")]
    public string? Id { get; set; }

    /// <summary>Restore under another label.</summary>
    [Parameter]
    public string? Label { get; set; }

    /// <summary>SmartCard-HSM / Pico HSM: the key reference (1-254) to restore to; the first free one by default.</summary>
    [Parameter]
    [ValidateRange(1, 254)]
    public int? KeyReference { get; set; }

    /// <summary>Replace a key that already has the target id (after the new one is in place).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    private int _restoredCount;
    private IRestoreBatching? _batching;
    private IDisposable? _planning;
    private IRestoreBatch? _batch;

    protected override void ProcessRecordWithSession(PicoHsmSession session)
    {
        if (_batching is null && session.Device is IRestoreBatching batching && !ConfirmsEachItem())
        {
            _batching = batching;
            _planning = batching.BeginPlanning();
        }
        var backups = InputObject ?? (Path ?? Array.Empty<string>())
            .SelectMany(p => GetResolvedProviderPathFromPSPath(p, out _))
            .Select(p => { PicoKeyBackup? b = null; TryRun(() => b = BackupFiles.Read(p), p); return b; })
            .Where(b => b is not null).Cast<PicoKeyBackup>().ToArray();
        foreach (var b in backups)
        {
            // Counted across ProcessRecord calls: piped backups arrive one at a time, and with
            // -Force each would otherwise replace the one restored just before it.
            if ((Id is not null || KeyReference is not null) && ++_restoredCount > 1)
                ThrowTerminatingError(NewError("TargetWithSeveralBackups", ErrorCategory.InvalidArgument,
                    "-Id and -KeyReference name one target but several backups were given; restore them one at a time to give each its own target.", Id ?? KeyReference?.ToString()));
            ThrowIfStopping();
            if (b.AuthenticationWarning is { } unauthenticated) WriteWarning(unauthenticated);
            var request = new RestoreRequest(Id is null ? null : Convert.FromHexString(Id), Label, Force, KeyReference);
            // The one pre-flight, before ShouldProcess: -WhatIf reports exactly the refusals of the real run.
            RestorePlan? plan = null;
            if (!TryRun(() => plan = session.Device.PlanRestore(b, request), b) || plan is null) continue;
            if (plan.IsRefused)
            {
                foreach (var refusal in plan.Refusals) WriteError(refusal, b);
                continue;
            }
            if (plan.Action == RestoreAction.AlreadyPresent)
                WriteWarning($"{b.Path}: {plan.Describe()}.");
            if (!ShouldProcess($"token '{session.TokenLabel}'", $"Key {plan.TargetId} '{plan.TargetLabel}' from {b.Path}: {plan.Describe()}"))
                continue;
            TryRun(() =>
            {
                // The batch from the first restore on (see the remarks): taken after ShouldProcess. Null
                // when another runspace over this session has one open: the restore runs in that one.
                if (_batching is not null) _batch ??= _batching.TryBeginRestoring(Cancellation);
                WriteObject(session.Device.Restore(b, request));
            }, b);
        }
    }

    protected override void EndProcessingWithSession(PicoHsmSession session)
    {
        // Objects another program (one that takes no PicoHsm lock) made at a restored id meanwhile.
        if (_batch is not null)
            foreach (var problem in Run(() => _batch.Complete())) WriteError(problem, problem.Target);
        EndBatch();
    }

    private void EndBatch()
    {
        _batch?.Dispose();
        _batch = null;
        _planning?.Dispose();
        _planning = null;
    }

    // PowerShell disposes the cmdlet however the pipeline ends (Ctrl+C, a terminating error): the token lock goes with it.
    protected override void Dispose(bool disposing)
    {
        if (disposing) EndBatch();
        base.Dispose(disposing);
    }
}
