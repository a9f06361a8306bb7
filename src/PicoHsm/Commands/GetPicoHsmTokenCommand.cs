using System.Management.Automation;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

[Cmdlet(VerbsCommon.Get, "PicoHsmToken")]
[OutputType(typeof(PicoHsmToken))]
public sealed class GetPicoHsmTokenCommand : PicoCmdletBase
{
    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ModulePathCompleter))]
    public string? ModulePath { get; set; }

    protected override void EndProcessingCore()
    {
        try
        {
            var module = TokenDirectory.ChooseModule(ModulePath);
            WriteVerbose($"PKCS#11 module: '{module.Path}', {module.Reason}.");
            var tokens = TokenDirectory.ListTokens(module.Path);
            foreach (var t in tokens) WriteObject(t);
            if (!tokens.Any(t => t.Initialized))
            {
                // Nothing to list is an answer, but a silent one hides which module was asked.
                string slots = TokenDirectory.DescribeSlots(module.Path);
                WriteWarning($"The PKCS#11 module '{module.Path}' ({module.Reason}) has " +
                    (tokens.Count == 0 ? "no slot with a token present. " : "no initialised token. ") +
                    (slots.Length == 0 ? "It lists no slot at all." : $"Slots searched: {slots}.") +
                    " Insert the device (check that pcscd runs for a card), initialise a token, or choose another module with -ModulePath.");
            }
        }
        catch (PicoHsmException ex)
        {
            Throw(ex);
        }
    }
}
