using System.Management.Automation;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

/// <summary>Whether the token has a DKEK, its key check value, label and id.</summary>
[Cmdlet(VerbsCommon.Get, "PicoDkek")]
[OutputType(typeof(PicoDkek))]
public sealed class GetPicoDkekCommand : PicoSessionCmdletBase
{
    protected override void EndProcessingWithSession(PicoHsmSession session)
    {
        foreach (var d in session.Device.GetDkek()) WriteObject(d);
    }
}
