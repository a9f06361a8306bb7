#if NETSTANDARD2_0
// Windows PowerShell 5.1 applies no binding redirects to a module's assemblies: the packages of
// the Desktop build reference each other at versions that differ from the files shipped beside
// them (System.Memory 4.0.1.x asks for System.Runtime.CompilerServices.Unsafe 4.0.4.1, the file
// is 6.x, and so on), and .NET Framework then fails the load. This resolver answers such a
// request with the file of that name in the module's own folder, whatever its version. It runs
// when this assembly is loaded (module initializer) and only on .NET Framework; .NET Core
// (PowerShell 7 loading this build) unifies versions itself.
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace PicoHsm.Compat;

internal static class DesktopAssemblyResolver
{
    private static string? _folder;

    [ModuleInitializer]
    internal static void Install()
    {
        if (!RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.Ordinal)) return;
        _folder = Path.GetDirectoryName(typeof(DesktopAssemblyResolver).Assembly.Location);
        AppDomain.CurrentDomain.AssemblyResolve += Resolve;
    }

    private static Assembly? Resolve(object? sender, ResolveEventArgs args)
    {
        if (_folder is null) return null;
        string name = new AssemblyName(args.Name).Name ?? "";
        foreach (var loaded in AppDomain.CurrentDomain.GetAssemblies())
            if (string.Equals(loaded.GetName().Name, name, StringComparison.OrdinalIgnoreCase)) return loaded;
        string file = Path.Combine(_folder, name + ".dll");
        return File.Exists(file) ? Assembly.LoadFrom(file) : null;
    }
}
#endif
