using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Common;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// One loaded PKCS#11 library per module path per process. Disposing an IPkcs11Library calls
/// C_Finalize, which ends every session any other user of the same module has, so libraries
/// are loaded once and kept while any session uses them. OpenSC reads a card's PKCS#15 view once,
/// at C_Initialize, and never again while the card stays in its reader: after the card was changed
/// behind its back (Initialize-PicoHsm wipes it over the card channel) the module is marked stale
/// (<see cref="MarkStale"/>) and finalised once no <see cref="Pkcs11Connection"/> uses it, so the
/// next load reads the card afresh.
/// </summary>
public static class Pkcs11Modules
{
    public const string ModuleEnvironmentVariable = "PICOHSM_PKCS11_MODULE";

    private static readonly object Gate = new();
    private static readonly Dictionary<string, IPkcs11Library> Loaded = new(StringComparer.Ordinal);
    private static readonly Dictionary<string, int> InUse = new(StringComparer.Ordinal);
    private static readonly HashSet<string> Stale = new(StringComparer.Ordinal);

    /// <summary>How many open connections use the module at <paramref name="fullPath"/> (for tests and -Verbose).</summary>
    public static int UseCount(string fullPath)
    {
        lock (Gate) return InUse.GetValueOrDefault(fullPath);
    }

    /// <summary>Whether any connection or lease uses any module (then none is finalised).</summary>
    public static bool AnyInUse
    {
        get { lock (Gate) return InUse.Count > 0; }
    }

    /// <summary>Whether the module at <paramref name="fullPath"/> is loaded (its C_Initialize done, no C_Finalize since).</summary>
    public static bool IsLoaded(string fullPath)
    {
        lock (Gate) return Loaded.ContainsKey(fullPath);
    }

    /// <summary>
    /// The module's view of its tokens is out of date (a card was initialised or changed through
    /// another channel): finalise it now when no connection uses it, else when the last one closes
    /// (the next <see cref="Load"/> does it as well). Null marks every loaded module.
    /// </summary>
    /// <returns>Whether every module marked was finalised at once (none is still in use).</returns>
    public static bool MarkStale(string? fullPath = null)
    {
        lock (Gate)
        {
            var paths = fullPath is null ? Loaded.Keys.ToList() : Loaded.ContainsKey(fullPath) ? new List<string> { fullPath } : new List<string>();
            bool all = true;
            foreach (var p in paths)
            {
                Stale.Add(p);
                if (!FinaliseIfUnused(p)) all = false;
            }
            return all;
        }
    }

    /// <summary>
    /// Finalise the module when it is loaded and no connection uses it, so the next load reads its
    /// tokens afresh (a card initialised, inserted or restarted since). Called before a connect and a
    /// token listing; a module in use is left as it is (finalising would end its sessions).
    /// </summary>
    /// <returns>Whether the module is now unloaded (refreshed, or never loaded).</returns>
    public static bool RefreshIfUnused(string fullPath)
    {
        lock (Gate) return FinaliseIfUnused(fullPath);
    }

    /// <summary>
    /// Holds the module in use for a piece of work that has no connection yet (a connect, a token
    /// listing), so no refresh finalises it half-way; with <paramref name="refresh"/>, first finalises it
    /// when nothing uses it (in the same lock), so the work reads the tokens afresh.
    /// </summary>
    public static IDisposable Use(string fullPath, bool refresh)
    {
        lock (Gate)
        {
            if (refresh) FinaliseIfUnused(fullPath);
            InUse[fullPath] = InUse.GetValueOrDefault(fullPath) + 1;
        }
        return new Lease(fullPath);
    }

    /// <summary>
    /// Finalises the module although the caller's one <see cref="Use"/> lease holds it, when that lease is
    /// the only use of any module in the process, so the next <see cref="Load"/> reads the tokens afresh.
    /// For a connect whose token the module's C_Initialize left out (see <see cref="Pkcs11TornReads"/>):
    /// the connect has no session yet, so nothing of its own is ended.
    /// </summary>
    /// <returns>Whether the module was finalised (false: something else uses a module, so it was left alone).</returns>
    internal static bool ReloadForSoleLease(string fullPath)
    {
        lock (Gate)
        {
            if (InUse.Count != 1 || InUse.GetValueOrDefault(fullPath) != 1) return false;
            InUse.Remove(fullPath);
            try { return FinaliseIfUnused(fullPath); }
            finally { InUse[fullPath] = 1; }
        }
    }

    private sealed class Lease(string path) : IDisposable
    {
        private int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) Release(path);
        }
    }

    /// <summary>A connection starts using the module (see <see cref="Pkcs11Connection"/>).</summary>
    internal static void Acquire(string fullPath)
    {
        lock (Gate) InUse[fullPath] = InUse.GetValueOrDefault(fullPath) + 1;
    }

    /// <summary>A connection stopped using the module; the last one finalises a stale module.</summary>
    internal static void Release(string fullPath)
    {
        lock (Gate)
        {
            int n = InUse.GetValueOrDefault(fullPath) - 1;
            if (n > 0) InUse[fullPath] = n;
            else InUse.Remove(fullPath);
            if (InUse.Count == 0)
                foreach (var p in Stale.ToList()) FinaliseIfUnused(p);
        }
    }

    /// <summary>
    /// Only when no module at all is in use: two paths may reach one native library (pkcs11-spy or
    /// p11-kit in front of SoftHSM2 or OpenSC), and a C_Finalize through one ends the other's sessions.
    /// </summary>
    private static bool FinaliseIfUnused(string fullPath)
    {
        if (InUse.Count > 0) return false;
        Stale.Remove(fullPath);
        if (Loaded.Remove(fullPath, out var lib))
        {
            try { lib.Dispose(); } // C_Finalize and unload
            catch (Exception ex) when (ex is Pkcs11Exception or UnmanagedException) { /* already gone: the next load starts afresh */ }
        }
        return true;
    }

    public static Pkcs11InteropFactories Factories { get; } = new();

    /// <summary>OpenSC first (the module a Pico HSM needs), then SoftHSM2.</summary>
    public static IReadOnlyList<string> WellKnownPaths()
    {
        if (OperatingSystem.IsWindows())
        {
            string pf = Environment.GetFolderPath(Environment.SpecialFolder.ProgramFiles);
            string pf86 = Environment.GetFolderPath(Environment.SpecialFolder.ProgramFilesX86);
            return new[]
            {
                Path.Combine(pf, "OpenSC Project", "OpenSC", "pkcs11", "opensc-pkcs11.dll"),
                Path.Combine(Environment.SystemDirectory, "opensc-pkcs11.dll"),
                Path.Combine(pf86, "OpenSC Project", "OpenSC", "pkcs11", "opensc-pkcs11.dll"),
                @"C:\SoftHSM2\lib\softhsm2-x64.dll",
            };
        }
        if (OperatingSystem.IsMacOS())
        {
            return new[]
            {
                "/Library/OpenSC/lib/opensc-pkcs11.so",
                "/opt/homebrew/lib/opensc-pkcs11.so",
                "/usr/local/lib/opensc-pkcs11.so",
                "/opt/homebrew/lib/softhsm/libsofthsm2.so",
                "/usr/local/lib/softhsm/libsofthsm2.so",
            };
        }
        return new[]
        {
            "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
            "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
            "/usr/lib64/opensc-pkcs11.so",
            "/usr/lib/opensc-pkcs11.so",
            "/usr/lib/softhsm/libsofthsm2.so",
            "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
            "/usr/lib64/pkcs11/libsofthsm2.so",
            "/usr/local/lib/softhsm/libsofthsm2.so",
        };
    }

    /// <summary>The parameter, else the environment variable, else the first well-known module present.</summary>
    public static string ResolvePath(string? requested) => Resolve(requested).Path;

    /// <summary>
    /// The module to use and why it was chosen (for -Verbose and for error messages): the
    /// parameter, else the environment variable, else the first well-known module present.
    /// </summary>
    public static ModuleChoice Resolve(string? requested)
    {
        if (!string.IsNullOrWhiteSpace(requested))
        {
            string full = Path.GetFullPath(requested);
            if (!File.Exists(full))
                throw new PicoHsmException(PicoErrorKind.NotFound, "ModuleNotFound",
                    $"The PKCS#11 module '{full}' does not exist. Give the path of the module's shared library " +
                    "(for a Pico HSM, OpenSC's opensc-pkcs11.so / opensc-pkcs11.dll).", full);
            return new ModuleChoice(full, "given with -ModulePath");
        }
        string? fromEnv = Environment.GetEnvironmentVariable(ModuleEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            string full = Path.GetFullPath(fromEnv);
            if (!File.Exists(full))
                throw new PicoHsmException(PicoErrorKind.NotFound, "ModuleNotFound",
                    $"{ModuleEnvironmentVariable} names '{full}', which does not exist. Fix or clear the variable, or pass -ModulePath.", full);
            return new ModuleChoice(full, $"from ${ModuleEnvironmentVariable} (no -ModulePath given)");
        }
        var tried = WellKnownPaths();
        var present = tried.Where(File.Exists).ToList();
        if (present.Count > 0)
        {
            string p = present[0];
            string family = p.Contains("opensc", StringComparison.OrdinalIgnoreCase) ? "the OpenSC default"
                : p.Contains("softhsm", StringComparison.OrdinalIgnoreCase) ? "the SoftHSM2 default" : "a well-known module";
            string others = present.Count > 1 ? "; also installed: " + string.Join(", ", present.Skip(1).Select(o => $"'{o}'")) : "";
            return new ModuleChoice(p,
                $"{family}: no -ModulePath given and ${ModuleEnvironmentVariable} is not set, so the first module installed in the " +
                $"well-known places (OpenSC before SoftHSM2){others}. Pass -ModulePath or set ${ModuleEnvironmentVariable} to use another");
        }
        throw new PicoHsmException(PicoErrorKind.NotFound, "ModuleNotFound",
            "No PKCS#11 module was found. Pass -ModulePath or set " + ModuleEnvironmentVariable +
            ". Places tried: -ModulePath (not given), " + ModuleEnvironmentVariable + " (not set), " +
            string.Join(", ", tried) + ". Install OpenSC for a Pico HSM (apt-get install opensc) or SoftHSM2 (apt-get install softhsm2).");
    }

    public static IPkcs11Library Load(string fullPath)
    {
        NativeLibraryResolver.EnsureInstalled();
        lock (Gate)
        {
            if (Stale.Contains(fullPath)) FinaliseIfUnused(fullPath);
            if (Loaded.TryGetValue(fullPath, out var lib)) return lib;
            try
            {
                lib = Factories.Pkcs11LibraryFactory.LoadPkcs11Library(Factories, fullPath, AppType.MultiThreaded);
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, "load the PKCS#11 module", fullPath);
            }
            catch (Exception ex) when (ex is UnmanagedException or DllNotFoundException or BadImageFormatException or EntryPointNotFoundException)
            {
                throw new PicoHsmException(PicoErrorKind.InvalidArgument, "ModuleLoadFailed",
                    $"'{fullPath}' could not be loaded as a PKCS#11 module ({ex.Message}). Check that it is a PKCS#11 " +
                    "shared library for this platform and architecture.", fullPath, ex);
            }
            Loaded[fullPath] = lib;
            return lib;
        }
    }
}
