using System.Runtime.InteropServices;
using System.Text;

namespace PicoHsm.PcSc;

/// <summary>
/// The PC/SC entry points, resolved at run time with <see cref="NativeLibrary"/> (no package).
/// Three ABIs:
/// <list type="bullet">
/// <item>Linux / other Unix (pcsc-lite): DWORD and LONG are <c>unsigned long</c>/<c>long</c>: 8 bytes on 64-bit
/// (<c>nuint</c>/<c>nint</c>); SCARDCONTEXT/SCARDHANDLE are LONG; strings are UTF-8.</item>
/// <item>Windows (winscard.dll): DWORD/LONG are 4 bytes, SCARDCONTEXT/SCARDHANDLE are ULONG_PTR;
/// the W (UTF-16) entry points are used.</item>
/// <item>macOS (PCSC.framework): DWORD/LONG are 4 bytes (uint32_t/int32_t) and SCARDCONTEXT/SCARDHANDLE are
/// int32_t; strings are UTF-8.</item>
/// </list>
/// Handles are carried as <c>nint</c> in managed code and narrowed where the ABI wants 32 bits.
/// Every method returns the PC/SC code as a 32-bit value.
/// This file holds the common part (constants, loading, helpers); each ABI's entry points are
/// in its own file: PcscApi.PcscLite.cs, PcscApi.Winscard.cs, PcscApi.MacOs.cs.
/// </summary>
internal abstract unsafe partial class PcscApi
{
    public const uint SCARD_SCOPE_USER = 0;
    public const uint SCARD_SCOPE_SYSTEM = 2;
    public const uint SCARD_SHARE_EXCLUSIVE = 1;
    public const uint SCARD_SHARE_SHARED = 2;
    public const uint SCARD_SHARE_DIRECT = 3;
    public const uint SCARD_PROTOCOL_T0 = 1;
    public const uint SCARD_PROTOCOL_T1 = 2;
    public const uint SCARD_LEAVE_CARD = 0;
    public const uint SCARD_RESET_CARD = 1;
    public const uint SCARD_UNPOWER_CARD = 2;
    public const uint SCARD_EJECT_CARD = 3;
    public const uint INFINITE = 0xFFFFFFFF;

    public const string LinuxLibrary = "libpcsclite.so.1";
    public const string WindowsLibrary = "winscard.dll";
    public const string MacLibrary = "/System/Library/Frameworks/PCSC.framework/PCSC";

    private static readonly object Gate = new();
    private static PcscApi? _instance;
    private static string? _loadError;

    protected readonly nint Lib;
    private readonly nint _pciT0;
    private readonly nint _pciT1;

    /// <summary>The loaded API for this OS, or a <see cref="PcscException"/> saying what to install.</summary>
    public static PcscApi Instance
    {
        get
        {
            lock (Gate)
            {
                if (_instance is not null) return _instance;
                if (_loadError is not null) throw new PcscException(_loadError);
                try
                {
                    _instance = Load();
                    return _instance;
                }
                catch (PcscException ex)
                {
                    _loadError = ex.Message;
                    throw;
                }
            }
        }
    }

    /// <summary>True when the PC/SC library could be loaded; <paramref name="error"/> says why not.</summary>
    public static bool TryGetInstance(out PcscApi? api, out string? error)
    {
        try
        {
            api = Instance;
            error = null;
            return true;
        }
        catch (PcscException ex)
        {
            api = null;
            error = ex.Message;
            return false;
        }
    }

    private static PcscApi Load()
    {
        if (OperatingSystem.IsWindows())
        {
            if (!NativeLibrary.TryLoad(WindowsLibrary, out nint h))
                throw new PcscException("winscard.dll could not be loaded: the Windows smart card subsystem is missing.");
            return new WindowsApi(h);
        }
        if (OperatingSystem.IsMacOS())
        {
            if (!NativeLibrary.TryLoad(MacLibrary, out nint h))
                throw new PcscException($"The PC/SC framework could not be loaded ({MacLibrary}).");
            return new MacApi(h);
        }
        return LoadUnix(LinuxLibrary, "libpcsclite.so");
    }

    /// <summary>Loads pcsc-lite from the first name that loads; a clear <see cref="PcscException"/> when none does.</summary>
    internal static PcscApi LoadUnix(params string[] names)
    {
        foreach (string name in names)
        {
            if (!NativeLibrary.TryLoad(name, out nint lib)) continue;
            // 32-bit pcsc-lite: long is 4 bytes and handles are 32-bit, the same ABI as Apple's framework
            return nint.Size == 8 ? new LinuxApi(lib) : new MacApi(lib);
        }
        throw new PcscException(
            $"{names[0]} could not be loaded: install the PC/SC daemon and library " +
            "(Debian/Ubuntu: sudo apt install pcscd libpcsclite1; Fedora: sudo dnf install pcsc-lite pcsc-lite-libs).");
    }

    protected PcscApi(nint lib)
    {
        Lib = lib;
        NativeLibrary.TryGetExport(lib, "g_rgSCardT0Pci", out _pciT0);
        NativeLibrary.TryGetExport(lib, "g_rgSCardT1Pci", out _pciT1);
        if (_pciT0 == 0) _pciT0 = AllocPci(SCARD_PROTOCOL_T0);
        if (_pciT1 == 0) _pciT1 = AllocPci(SCARD_PROTOCOL_T1);
    }

    /// <summary>Fallback SCARD_IO_REQUEST {dwProtocol, cbPciLength} when the library exports none.</summary>
    private nint AllocPci(uint protocol)
    {
        int dw = DwordSize;
        nint p = Marshal.AllocHGlobal(2 * dw); // lives as long as the process, like the exported ones
        if (dw == 8)
        {
            Marshal.WriteInt64(p, 0, protocol);
            Marshal.WriteInt64(p, 8, 16);
        }
        else
        {
            Marshal.WriteInt32(p, 0, (int)protocol);
            Marshal.WriteInt32(p, 4, 8);
        }
        return p;
    }

    protected nint Export(string name)
    {
        if (!NativeLibrary.TryGetExport(Lib, name, out nint f))
            throw new PcscException($"The PC/SC library does not export {name}.");
        return f;
    }

    /// <summary>sizeof(DWORD) for this ABI.</summary>
    public abstract int DwordSize { get; }

    /// <summary>The send PCI for the active protocol (pointer to the exported g_rgSCardT0Pci / T1Pci).</summary>
    public nint PciFor(uint activeProtocol) => activeProtocol == SCARD_PROTOCOL_T0 ? _pciT0 : _pciT1;

    public abstract uint EstablishContext(uint scope, out nint context);
    public abstract uint ReleaseContext(nint context);
    public abstract uint IsValidContext(nint context);

    /// <summary>Reader names. Returns the code; the list is empty on SCARD_E_NO_READERS_AVAILABLE.</summary>
    public abstract uint ListReaders(nint context, out List<string> readers);

    public abstract uint Connect(nint context, string reader, uint shareMode, uint preferredProtocols, out nint card, out uint activeProtocol);
    public abstract uint Reconnect(nint card, uint shareMode, uint preferredProtocols, uint initialization, out uint activeProtocol);
    public abstract uint Disconnect(nint card, uint disposition);
    public abstract uint BeginTransaction(nint card);
    public abstract uint EndTransaction(nint card, uint disposition);

    /// <summary>Sends <paramref name="send"/>; on success <paramref name="received"/> is the number of bytes written to <paramref name="recv"/>.</summary>
    public abstract uint Transmit(nint card, uint activeProtocol, ReadOnlySpan<byte> send, Span<byte> recv, out int received);

    public abstract uint Status(nint card, out string readerName, out uint state, out uint protocol, out byte[] atr);

    /// <summary>SCardGetStatusChange for one reader: waits until its state differs from <paramref name="currentState"/>.</summary>
    public abstract uint GetStatusChange(nint context, uint timeoutMs, string reader, uint currentState, out uint eventState, out byte[] atr);

    public abstract uint Cancel(nint context);

    protected static List<string> ParseMultiString(string s)
    {
        var list = new List<string>();
        foreach (string part in s.Split('\0'))
            if (part.Length > 0) list.Add(part);
        return list;
    }

    protected static byte[] Utf8Z(string s)
    {
        byte[] b = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, b);
        return b;
    }

    protected static string Utf8FromBuffer(ReadOnlySpan<byte> b)
    {
        // keep the embedded NULs of a multi-string; drop only the trailing ones
        int end = b.Length;
        while (end > 0 && b[end - 1] == 0) end--;
        return Encoding.UTF8.GetString(b[..end]);
    }
}
