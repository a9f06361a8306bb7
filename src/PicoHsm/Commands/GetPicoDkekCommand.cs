using System.Management.Automation;
using PicoHsm.Common;
using PicoHsm.Devices;

namespace PicoHsm.Module.Commands;

/// <summary>Whether the token has a DKEK, its key check value, label and id.</summary>
[Cmdlet(VerbsCommon.Get, "PicoDkek")]
[OutputType(typeof(PicoDkek))]
public sealed class GetPicoDkekCommand : PicoSessionCmdletBase
{
    protected override void EndProcessing()
    {
        RequireLogin();
        try
        {
            foreach (var d in ResolvedSession.Device.GetDkek()) WriteObject(d);
        }
        catch (PicoHsmException ex)
        {
            Throw(ex);
        }
    }
}
