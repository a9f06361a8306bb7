using System.Management.Automation;
using PicoHsm.Backup;
using PicoHsm.Devices;
using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

/// <summary>
/// Restores keys from backup files. Before any change: the backup's DKEK must be the token's
/// (by KCV), the token must support the mechanism, key type and size, and the target id must be
/// free. -Force replaces an occupied id, and only after the new key is in place.
/// </summary>
[Cmdlet(VerbsData.Import, "PicoWrappedKey", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = "Path")]
[OutputType(typeof(PicoKey))]
public sealed class ImportPicoWrappedKeyCommand : PicoSessionCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Path", ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
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
            string id = Id?.ToLowerInvariant() ?? b.Id ?? "";
            if (!ShouldProcess($"token '{session.TokenLabel}'", $"Restore key {id} '{Label ?? b.Label}' from {b.Path}{(Force ? " (replacing a key with that id)" : "")}"))
                continue;
            TryRun(() => WriteObject(session.Device.Restore(b, new RestoreRequest(Id is null ? null : Convert.FromHexString(Id), Label, Force, KeyReference))), b);
        }
    }

    protected override void EndProcessingWithSession(PicoHsmSession session)
    {
    }
}
