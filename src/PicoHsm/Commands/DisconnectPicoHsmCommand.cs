using System.Management.Automation;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

[Cmdlet(VerbsCommunications.Disconnect, "PicoHsm")]
[OutputType(typeof(void))]
public sealed class DisconnectPicoHsmCommand : PicoCmdletBase
{
    [Parameter(Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public PicoHsmSession[]? Session { get; set; }

    /// <summary>Close every session of this runspace.</summary>
    [Parameter]
    public SwitchParameter All { get; set; }

    protected override void ProcessRecordCore()
    {
        var registry = SessionRegistry.Current;
        IEnumerable<PicoHsmSession> targets = All ? registry.Sessions
            : Session ?? (registry.Default is { } d ? new[] { d } : Array.Empty<PicoHsmSession>());
        bool any = false;
        foreach (var s in targets.ToList())
        {
            any = true;
            bool wasDefault = ReferenceEquals(registry.Default, s);
            WriteVerbose($"Closing session {s.Id} ('{s.TokenLabel}'); the token's login ends with the last session of this process that shares it.");
            s.Dispose();
            registry.Remove(s);
            if (wasDefault && !All)
                WriteWarning($"Session {s.Id} was the default session. {registry.DescribeDefault("now")}");
        }
        if (!any && !All)
            WriteError(NewError("NoSession", ErrorCategory.ObjectNotFound, "There is no open PicoHsm session to disconnect.", null));
    }
}
