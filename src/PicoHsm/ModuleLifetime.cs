using System.Management.Automation;
using PicoHsm.Devices.Pkcs11;

namespace PicoHsm.Module;

/// <summary>Runs when the module is imported and removed.</summary>
public sealed class ModuleLifetime : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    public void OnImport() => NativeLibraryResolver.EnsureInstalled();

    /// <summary>Remove-Module closes this runspace's sessions, so no login outlives the module.</summary>
    public void OnRemove(PSModuleInfo psModuleInfo) => SessionRegistry.Current.CloseAll();
}
