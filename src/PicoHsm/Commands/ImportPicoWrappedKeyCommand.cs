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

    protected override void ProcessRecordWithSession(PicoHsmSession session)
    {
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
            TryRun(() => WriteObject(session.Device.Restore(b, request)), b);
        }
    }

    protected override void EndProcessingWithSession(PicoHsmSession session)
    {
    }
}
