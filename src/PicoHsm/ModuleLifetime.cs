using System.Management.Automation;
using PicoHsm.Session;

namespace PicoHsm.Module;

/// <summary>Runs when the module is imported and removed.</summary>
public sealed class ModuleLifetime : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    public void OnImport() => TokenDirectory.PrepareNativeLoading();

    /// <summary>Remove-Module closes this runspace's sessions, so no login outlives the module.</summary>
    public void OnRemove(PSModuleInfo psModuleInfo) => SessionRegistry.Current.CloseAll();
}
