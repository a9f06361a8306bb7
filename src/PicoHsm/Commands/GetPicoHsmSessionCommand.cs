using System.Management.Automation;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

[Cmdlet(VerbsCommon.Get, "PicoHsmSession")]
[OutputType(typeof(PicoHsmSession))]
public sealed class GetPicoHsmSessionCommand : PicoCmdletBase
{
    /// <summary>Only the default session (the one cmdlets use without -Session).</summary>
    [Parameter]
    public SwitchParameter Default { get; set; }

    protected override void EndProcessingCore()
    {
        // Each session is asked once whether its device is still there (a card: one SCardStatus, no APDU, no login),
        // so a card removed or restarted outside the module shows IsOpen False.
        var registry = SessionRegistry.Current;
        if (Default)
        {
            if (registry.Default is { IsOpen: true } d && d.CheckConnection()) WriteObject(d);
            return;
        }
        foreach (var s in registry.CheckSessions()) WriteObject(s);
    }
}
