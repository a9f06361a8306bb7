#if NETSTANDARD2_0
// .NET Framework (and Mono) have no System.Runtime.InteropServices.NativeLibrary: this look-alike
// loads a library with LoadLibrary/GetProcAddress on Windows and dlopen/dlsym elsewhere.
// SetDllImportResolver exists only on .NET Core 3+: when this build runs there (the Desktop
// build loaded in PowerShell 7) it calls the runtime's own through reflection; on .NET Framework
// and Mono it does nothing (DllImport names resolve the platform's own way there).
using System.Reflection;
using System.Runtime.InteropServices;

namespace PicoHsm.Compat;

internal delegate IntPtr DllImportResolver(string libraryName, Assembly assembly, DllImportSearchPath? searchPath);

internal static class NativeLibrary
{
    private static readonly bool IsWindows = Environment.OSVersion.Platform == PlatformID.Win32NT;

    public static bool TryLoad(string libraryPath, out IntPtr handle)
    {
        try { handle = IsWindows ? Win.LoadLibraryW(libraryPath) : Dl.Open(libraryPath); }
        catch (DllNotFoundException) { handle = IntPtr.Zero; }
        catch (EntryPointNotFoundException) { handle = IntPtr.Zero; }
        return handle != IntPtr.Zero;
    }

    public static IntPtr Load(string libraryPath) =>
        TryLoad(libraryPath, out IntPtr h) ? h : throw new DllNotFoundException($"Unable to load the native library '{libraryPath}'.");

    public static bool TryGetExport(IntPtr handle, string name, out IntPtr address)
    {
        address = IsWindows ? Win.GetProcAddress(handle, name) : Dl.Sym(handle, name);
        return address != IntPtr.Zero;
    }

    public static IntPtr GetExport(IntPtr handle, string name) =>
        TryGetExport(handle, name, out IntPtr a) ? a : throw new EntryPointNotFoundException($"The native library has no export '{name}'.");

    public static void Free(IntPtr handle)
    {
        if (handle == IntPtr.Zero) return;
        if (IsWindows) Win.FreeLibrary(handle); else Dl.Close(handle);
    }

    public static void SetDllImportResolver(Assembly assembly, DllImportResolver resolver)
    {
        var runtime = typeof(object).Assembly.GetType("System.Runtime.InteropServices.NativeLibrary");
        var delegateType = typeof(object).Assembly.GetType("System.Runtime.InteropServices.DllImportResolver");
        if (runtime is null || delegateType is null) return; // .NET Framework, Mono
        var set = runtime.GetMethod("SetDllImportResolver", [typeof(Assembly), delegateType]);
        if (set is null) return;
        try { set.Invoke(null, [assembly, Delegate.CreateDelegate(delegateType, resolver.Target, resolver.Method)]); }
        catch (TargetInvocationException ex) when (ex.InnerException is InvalidOperationException inner) { throw inner; }
    }

    private static class Win
    {
        [DllImport("kernel32", CharSet = CharSet.Unicode, SetLastError = true)]
        public static extern IntPtr LoadLibraryW(string path);

        [DllImport("kernel32", CharSet = CharSet.Ansi, ExactSpelling = true)]
        public static extern IntPtr GetProcAddress(IntPtr module, string name);

        [DllImport("kernel32")]
        public static extern bool FreeLibrary(IntPtr module);
    }

    /// <summary>dlopen and friends: in libdl.so.2 on older glibc, libc.so.6 on 2.34+, libSystem on macOS.</summary>
    private static class Dl
    {
        private const int RtldNow = 2;
        private static int _which; // 0 unknown, 1 libdl.so.2, 2 libc.so.6, 3 libdl (macOS, others)

        public static IntPtr Open(string path) => Call(() => Dl2.dlopen(path, RtldNow), () => C6.dlopen(path, RtldNow), () => Plain.dlopen(path, RtldNow));
        public static IntPtr Sym(IntPtr h, string name) => Call(() => Dl2.dlsym(h, name), () => C6.dlsym(h, name), () => Plain.dlsym(h, name));
        public static void Close(IntPtr h) => Call(() => (IntPtr)Dl2.dlclose(h), () => (IntPtr)C6.dlclose(h), () => (IntPtr)Plain.dlclose(h));

        private static IntPtr Call(Func<IntPtr> dl2, Func<IntPtr> c6, Func<IntPtr> plain)
        {
            Func<IntPtr>[] all = [dl2, c6, plain];
            if (_which > 0) return all[_which - 1]();
            for (int i = 0; i < all.Length; i++)
            {
                try { IntPtr r = all[i](); _which = i + 1; return r; }
                catch (DllNotFoundException) { }
                catch (EntryPointNotFoundException) { }
            }
            throw new DllNotFoundException("dlopen was found in none of libdl.so.2, libc.so.6 and libdl.");
        }

        private static class Dl2
        {
            [DllImport("libdl.so.2")] public static extern IntPtr dlopen(string path, int flags);
            [DllImport("libdl.so.2")] public static extern IntPtr dlsym(IntPtr h, string name);
            [DllImport("libdl.so.2")] public static extern int dlclose(IntPtr h);
        }

        private static class C6
        {
            [DllImport("libc.so.6")] public static extern IntPtr dlopen(string path, int flags);
            [DllImport("libc.so.6")] public static extern IntPtr dlsym(IntPtr h, string name);
            [DllImport("libc.so.6")] public static extern int dlclose(IntPtr h);
        }

        private static class Plain
        {
            [DllImport("libdl")] public static extern IntPtr dlopen(string path, int flags);
            [DllImport("libdl")] public static extern IntPtr dlsym(IntPtr h, string name);
            [DllImport("libdl")] public static extern int dlclose(IntPtr h);
        }
    }
}
#endif
