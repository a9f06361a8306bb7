using System.Management.Automation;
using PicoHsm.Backup;
using PicoHsm.Operations;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

/// <summary>
/// Backs up every exportable key of the token into a folder with a manifest.json (inventory with
/// SHA-256 digests). Keys that cannot be exported are listed in the manifest with the reason.
/// The backup is staged beside the folder and published by rename; a rerun finishes an interrupted one.
/// </summary>
[Cmdlet(VerbsData.Backup, "PicoHsm", SupportsShouldProcess = true)]
[OutputType(typeof(PicoHsmBackupSet))]
public sealed class BackupPicoHsmCommand : PicoSessionCmdletBase
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Directory { get; set; } = "";

    /// <summary>Replace a backup already in the folder; the old one stays whole until the new one is published.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void EndProcessingWithSession(PicoHsmSession session)
    {
        string dir = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Directory);
        using var host = OperationHost();
        if (DeviceBackupService.Backup(session.Device, dir, Force, host) is { } set)
            WriteObject(set);
    }
}
