using System.Management.Automation;
using PicoHsm.Backends;

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
            foreach (var d in KeyServices.Backend(ResolvedSession).GetDkek()) WriteObject(d);
        }
        catch (PicoHsmException ex)
        {
            Throw(ex);
        }
    }
}
