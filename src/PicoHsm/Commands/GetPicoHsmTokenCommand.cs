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
            string path = TokenDirectory.ResolveModulePath(ModulePath);
            WriteVerbose($"Listing tokens of '{path}'.");
            foreach (var t in TokenDirectory.ListTokens(path)) WriteObject(t);
        }
        catch (PicoHsmException ex)
        {
            Throw(ex);
        }
    }
}
