using System.Management.Automation;
using PicoHsm.Keys;
using PicoHsm.Operations;
using PicoHsm.Session;

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

    protected override void EndProcessingWithSession(PicoHsmSession session)
    {
        string dir = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Directory);
        using var host = OperationHost();
        DeviceRestoreService.Restore(session.Device, dir, Force, host, WriteObject);
    }
}
