using System.Management.Automation;
using PicoHsm.Session;

namespace PicoHsm.Module;

/// <summary>
/// Runs when the module is removed. Nothing runs at import: Pkcs11Interop (and its libdl mapping on
/// Linux, <c>NativeLibraryResolver</c>) is loaded by the first connect or token listing, not by
/// Import-Module, which only a script that never connects would otherwise pay for.
/// </summary>
public sealed class ModuleLifetime : IModuleAssemblyCleanup
{
    /// <summary>Remove-Module closes this runspace's sessions, so no login outlives the module.</summary>
    public void OnRemove(PSModuleInfo psModuleInfo) => SessionRegistry.Current.CloseAll();
}
