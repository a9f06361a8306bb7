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
        var registry = SessionRegistry.Current;
        if (Default)
        {
            if (registry.Default is { IsOpen: true } d) WriteObject(d);
            return;
        }
        foreach (var s in registry.Sessions) WriteObject(s);
    }
}
