using System.Reflection;
using System.Runtime.InteropServices;
using Net.Pkcs11Interop.HighLevelAPI;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// Pkcs11Interop P/Invokes "libdl" to dlopen a module; on current Linux distributions only
/// libdl.so.2 exists, so without this mapping every load fails with DllNotFoundException.
/// A resolver can be set once per assembly per process, hence the guard.
/// </summary>
public static class NativeLibraryResolver
{
    private static int _installed;

    public static void EnsureInstalled()
    {
        if (Interlocked.Exchange(ref _installed, 1) == 1) return;
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(Pkcs11InteropFactories).Assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // Another copy of this assembly in the process already set it; that one works too.
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name == "libdl" && OperatingSystem.IsLinux())
        {
            if (NativeLibrary.TryLoad("libdl.so.2", out IntPtr h)) return h;
            if (NativeLibrary.TryLoad("libc.so.6", out h)) return h; // glibc 2.34+ has dlopen in libc
        }
        return IntPtr.Zero;
    }
}
