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
/// </summary>
internal abstract unsafe class PcscApi
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

    // ---------------------------------------------------------------------------------------
    // Linux x86-64 / arm64 pcsc-lite: DWORD = unsigned long (nuint), LONG = long (nint).
    // ---------------------------------------------------------------------------------------
    private sealed class LinuxApi : PcscApi
    {
        private readonly delegate* unmanaged<nuint, void*, void*, nint*, nint> _establish;
        private readonly delegate* unmanaged<nint, nint> _release;
        private readonly delegate* unmanaged<nint, nint> _isValid;
        private readonly delegate* unmanaged<nint, byte*, byte*, nuint*, nint> _list;
        private readonly delegate* unmanaged<nint, byte*, nuint, nuint, nint*, nuint*, nint> _connect;
        private readonly delegate* unmanaged<nint, nuint, nuint, nuint, nuint*, nint> _reconnect;
        private readonly delegate* unmanaged<nint, nuint, nint> _disconnect;
        private readonly delegate* unmanaged<nint, nint> _begin;
        private readonly delegate* unmanaged<nint, nuint, nint> _end;
        private readonly delegate* unmanaged<nint, void*, byte*, nuint, void*, byte*, nuint*, nint> _transmit;
        private readonly delegate* unmanaged<nint, byte*, nuint*, nuint*, nuint*, byte*, nuint*, nint> _status;
        private readonly delegate* unmanaged<nint, nuint, void*, nuint, nint> _getStatusChange;
        private readonly delegate* unmanaged<nint, nint> _cancel;

        public LinuxApi(nint lib) : base(lib)
        {
            _establish = (delegate* unmanaged<nuint, void*, void*, nint*, nint>)Export("SCardEstablishContext");
            _release = (delegate* unmanaged<nint, nint>)Export("SCardReleaseContext");
            _isValid = (delegate* unmanaged<nint, nint>)Export("SCardIsValidContext");
            _list = (delegate* unmanaged<nint, byte*, byte*, nuint*, nint>)Export("SCardListReaders");
            _connect = (delegate* unmanaged<nint, byte*, nuint, nuint, nint*, nuint*, nint>)Export("SCardConnect");
            _reconnect = (delegate* unmanaged<nint, nuint, nuint, nuint, nuint*, nint>)Export("SCardReconnect");
            _disconnect = (delegate* unmanaged<nint, nuint, nint>)Export("SCardDisconnect");
            _begin = (delegate* unmanaged<nint, nint>)Export("SCardBeginTransaction");
            _end = (delegate* unmanaged<nint, nuint, nint>)Export("SCardEndTransaction");
            _transmit = (delegate* unmanaged<nint, void*, byte*, nuint, void*, byte*, nuint*, nint>)Export("SCardTransmit");
            _status = (delegate* unmanaged<nint, byte*, nuint*, nuint*, nuint*, byte*, nuint*, nint>)Export("SCardStatus");
            _getStatusChange = (delegate* unmanaged<nint, nuint, void*, nuint, nint>)Export("SCardGetStatusChange");
            _cancel = (delegate* unmanaged<nint, nint>)Export("SCardCancel");
        }

        public override int DwordSize => 8;

        private static uint Rc(nint rc) => unchecked((uint)(long)rc);

        public override uint EstablishContext(uint scope, out nint context)
        {
            nint ctx = 0;
            uint rc = Rc(_establish(scope, null, null, &ctx));
            context = ctx;
            return rc;
        }

        public override uint ReleaseContext(nint context) => Rc(_release(context));
        public override uint IsValidContext(nint context) => Rc(_isValid(context));

        public override uint ListReaders(nint context, out List<string> readers)
        {
            readers = new List<string>();
            nuint len = 0;
            uint rc = Rc(_list(context, null, null, &len));
            if (rc == PcscError.SCARD_E_NO_READERS_AVAILABLE) return rc;
            if (rc != 0) return rc;
            byte[] buf = new byte[(int)len];
            fixed (byte* p = buf)
                rc = Rc(_list(context, null, p, &len));
            if (rc != 0) return rc;
            readers = ParseMultiString(Utf8FromBuffer(buf.AsSpan(0, (int)Math.Min(len, (nuint)buf.Length))));
            return 0;
        }

        public override uint Connect(nint context, string reader, uint shareMode, uint preferredProtocols, out nint card, out uint activeProtocol)
        {
            byte[] name = Utf8Z(reader);
            nint h = 0;
            nuint proto = 0;
            uint rc;
            fixed (byte* n = name)
                rc = Rc(_connect(context, n, shareMode, preferredProtocols, &h, &proto));
            card = h;
            activeProtocol = (uint)proto;
            return rc;
        }

        public override uint Reconnect(nint card, uint shareMode, uint preferredProtocols, uint initialization, out uint activeProtocol)
        {
            nuint proto = 0;
            uint rc = Rc(_reconnect(card, shareMode, preferredProtocols, initialization, &proto));
            activeProtocol = (uint)proto;
            return rc;
        }

        public override uint Disconnect(nint card, uint disposition) => Rc(_disconnect(card, disposition));
        public override uint BeginTransaction(nint card) => Rc(_begin(card));
        public override uint EndTransaction(nint card, uint disposition) => Rc(_end(card, disposition));

        public override uint Transmit(nint card, uint activeProtocol, ReadOnlySpan<byte> send, Span<byte> recv, out int received)
        {
            nuint rlen = (nuint)recv.Length;
            uint rc;
            fixed (byte* s = send)
            fixed (byte* r = recv)
                rc = Rc(_transmit(card, (void*)PciFor(activeProtocol), s, (nuint)send.Length, null, r, &rlen));
            received = rc == 0 ? (int)rlen : 0;
            return rc;
        }

        public override uint Status(nint card, out string readerName, out uint state, out uint protocol, out byte[] atr)
        {
            byte* name = stackalloc byte[1024];
            byte* atrBuf = stackalloc byte[64];
            nuint nameLen = 1024, st = 0, pr = 0, atrLen = 64;
            uint rc = Rc(_status(card, name, &nameLen, &st, &pr, atrBuf, &atrLen));
            readerName = rc == 0 ? Utf8FromBuffer(new ReadOnlySpan<byte>(name, (int)Math.Min(nameLen, 1024))) : "";
            state = (uint)st;
            protocol = (uint)pr;
            atr = rc == 0 ? new ReadOnlySpan<byte>(atrBuf, (int)Math.Min(atrLen, 64)).ToArray() : [];
            return rc;
        }

        // SCARD_READERSTATE on 64-bit pcsc-lite: char* szReader; void* pvUserData; unsigned long dwCurrentState;
        // unsigned long dwEventState; unsigned long cbAtr; unsigned char rgbAtr[33]; (+7 padding) = 80 bytes.
        public override uint GetStatusChange(nint context, uint timeoutMs, string reader, uint currentState, out uint eventState, out byte[] atr)
        {
            byte[] name = Utf8Z(reader);
            byte* rs = stackalloc byte[80];
            new Span<byte>(rs, 80).Clear();
            uint rc;
            fixed (byte* n = name)
            {
                *(byte**)rs = n;
                *(nuint*)(rs + 16) = currentState;
                nuint timeout = timeoutMs == INFINITE ? unchecked((nuint)0xFFFFFFFF) : timeoutMs;
                rc = Rc(_getStatusChange(context, timeout, rs, 1));
            }
            eventState = (uint)*(nuint*)(rs + 24);
            int cb = (int)Math.Min(*(nuint*)(rs + 32), 33);
            atr = new ReadOnlySpan<byte>(rs + 40, cb).ToArray();
            return rc;
        }

        public override uint Cancel(nint context) => Rc(_cancel(context));
    }

    // ---------------------------------------------------------------------------------------
    // macOS PCSC.framework (and 32-bit pcsc-lite): DWORD uint32, LONG int32, handles int32.
    // ---------------------------------------------------------------------------------------
    private sealed class MacApi : PcscApi
    {
        private readonly delegate* unmanaged<uint, void*, void*, int*, int> _establish;
        private readonly delegate* unmanaged<int, int> _release;
        private readonly delegate* unmanaged<int, int> _isValid;
        private readonly delegate* unmanaged<int, byte*, byte*, uint*, int> _list;
        private readonly delegate* unmanaged<int, byte*, uint, uint, int*, uint*, int> _connect;
        private readonly delegate* unmanaged<int, uint, uint, uint, uint*, int> _reconnect;
        private readonly delegate* unmanaged<int, uint, int> _disconnect;
        private readonly delegate* unmanaged<int, int> _begin;
        private readonly delegate* unmanaged<int, uint, int> _end;
        private readonly delegate* unmanaged<int, void*, byte*, uint, void*, byte*, uint*, int> _transmit;
        private readonly delegate* unmanaged<int, byte*, uint*, uint*, uint*, byte*, uint*, int> _status;
        private readonly delegate* unmanaged<int, uint, void*, uint, int> _getStatusChange;
        private readonly delegate* unmanaged<int, int> _cancel;

        public MacApi(nint lib) : base(lib)
        {
            _establish = (delegate* unmanaged<uint, void*, void*, int*, int>)Export("SCardEstablishContext");
            _release = (delegate* unmanaged<int, int>)Export("SCardReleaseContext");
            _isValid = (delegate* unmanaged<int, int>)Export("SCardIsValidContext");
            _list = (delegate* unmanaged<int, byte*, byte*, uint*, int>)Export("SCardListReaders");
            _connect = (delegate* unmanaged<int, byte*, uint, uint, int*, uint*, int>)Export("SCardConnect");
            _reconnect = (delegate* unmanaged<int, uint, uint, uint, uint*, int>)Export("SCardReconnect");
            _disconnect = (delegate* unmanaged<int, uint, int>)Export("SCardDisconnect");
            _begin = (delegate* unmanaged<int, int>)Export("SCardBeginTransaction");
            _end = (delegate* unmanaged<int, uint, int>)Export("SCardEndTransaction");
            _transmit = (delegate* unmanaged<int, void*, byte*, uint, void*, byte*, uint*, int>)Export("SCardTransmit");
            _status = (delegate* unmanaged<int, byte*, uint*, uint*, uint*, byte*, uint*, int>)Export("SCardStatus");
            _getStatusChange = (delegate* unmanaged<int, uint, void*, uint, int>)Export("SCardGetStatusChange");
            _cancel = (delegate* unmanaged<int, int>)Export("SCardCancel");
        }

        public override int DwordSize => 4;

        private static uint Rc(int rc) => unchecked((uint)rc);

        public override uint EstablishContext(uint scope, out nint context)
        {
            int ctx = 0;
            uint rc = Rc(_establish(scope, null, null, &ctx));
            context = ctx;
            return rc;
        }

        public override uint ReleaseContext(nint context) => Rc(_release((int)context));
        public override uint IsValidContext(nint context) => Rc(_isValid((int)context));

        public override uint ListReaders(nint context, out List<string> readers)
        {
            readers = new List<string>();
            uint len = 0;
            uint rc = Rc(_list((int)context, null, null, &len));
            if (rc != 0) return rc;
            byte[] buf = new byte[len];
            fixed (byte* p = buf)
                rc = Rc(_list((int)context, null, p, &len));
            if (rc != 0) return rc;
            readers = ParseMultiString(Utf8FromBuffer(buf.AsSpan(0, (int)Math.Min(len, (uint)buf.Length))));
            return 0;
        }

        public override uint Connect(nint context, string reader, uint shareMode, uint preferredProtocols, out nint card, out uint activeProtocol)
        {
            byte[] name = Utf8Z(reader);
            int h = 0;
            uint proto = 0;
            uint rc;
            fixed (byte* n = name)
                rc = Rc(_connect((int)context, n, shareMode, preferredProtocols, &h, &proto));
            card = h;
            activeProtocol = proto;
            return rc;
        }

        public override uint Reconnect(nint card, uint shareMode, uint preferredProtocols, uint initialization, out uint activeProtocol)
        {
            uint proto = 0;
            uint rc = Rc(_reconnect((int)card, shareMode, preferredProtocols, initialization, &proto));
            activeProtocol = proto;
            return rc;
        }

        public override uint Disconnect(nint card, uint disposition) => Rc(_disconnect((int)card, disposition));
        public override uint BeginTransaction(nint card) => Rc(_begin((int)card));
        public override uint EndTransaction(nint card, uint disposition) => Rc(_end((int)card, disposition));

        public override uint Transmit(nint card, uint activeProtocol, ReadOnlySpan<byte> send, Span<byte> recv, out int received)
        {
            uint rlen = (uint)recv.Length;
            uint rc;
            fixed (byte* s = send)
            fixed (byte* r = recv)
                rc = Rc(_transmit((int)card, (void*)PciFor(activeProtocol), s, (uint)send.Length, null, r, &rlen));
            received = rc == 0 ? (int)rlen : 0;
            return rc;
        }

        public override uint Status(nint card, out string readerName, out uint state, out uint protocol, out byte[] atr)
        {
            byte* name = stackalloc byte[1024];
            byte* atrBuf = stackalloc byte[64];
            uint nameLen = 1024, st = 0, pr = 0, atrLen = 64;
            uint rc = Rc(_status((int)card, name, &nameLen, &st, &pr, atrBuf, &atrLen));
            readerName = rc == 0 ? Utf8FromBuffer(new ReadOnlySpan<byte>(name, (int)Math.Min(nameLen, 1024u))) : "";
            state = st;
            protocol = pr;
            atr = rc == 0 ? new ReadOnlySpan<byte>(atrBuf, (int)Math.Min(atrLen, 64u)).ToArray() : [];
            return rc;
        }

        // Apple's SCARD_READERSTATE is declared under #pragma pack(1): char* szReader; void* pvUserData;
        // uint32 dwCurrentState; uint32 dwEventState; uint32 cbAtr; uint8 rgbAtr[33] = 8+8+4+4+4+33 = 61 bytes
        // (on 64-bit). Not verified on a Mac; GetStatusChange is optional.
        public override uint GetStatusChange(nint context, uint timeoutMs, string reader, uint currentState, out uint eventState, out byte[] atr)
        {
            byte[] name = Utf8Z(reader);
            int size = 2 * nint.Size + 12 + 33;
            byte* rs = stackalloc byte[size + 8];
            new Span<byte>(rs, size + 8).Clear();
            uint rc;
            int o = 2 * nint.Size;
            fixed (byte* n = name)
            {
                *(byte**)rs = n;
                *(uint*)(rs + o) = currentState;
                rc = Rc(_getStatusChange((int)context, timeoutMs, rs, 1));
            }
            eventState = *(uint*)(rs + o + 4);
            int cb = (int)Math.Min(*(uint*)(rs + o + 8), 33u);
            atr = new ReadOnlySpan<byte>(rs + o + 12, cb).ToArray();
            return rc;
        }

        public override uint Cancel(nint context) => Rc(_cancel((int)context));
    }

    // ---------------------------------------------------------------------------------------
    // Windows winscard.dll: DWORD/LONG 4 bytes, handles ULONG_PTR, W (UTF-16) entry points.
    // ---------------------------------------------------------------------------------------
    private sealed class WindowsApi : PcscApi
    {
        private readonly delegate* unmanaged<uint, void*, void*, nint*, int> _establish;
        private readonly delegate* unmanaged<nint, int> _release;
        private readonly delegate* unmanaged<nint, int> _isValid;
        private readonly delegate* unmanaged<nint, char*, char*, uint*, int> _list;
        private readonly delegate* unmanaged<nint, char*, uint, uint, nint*, uint*, int> _connect;
        private readonly delegate* unmanaged<nint, uint, uint, uint, uint*, int> _reconnect;
        private readonly delegate* unmanaged<nint, uint, int> _disconnect;
        private readonly delegate* unmanaged<nint, int> _begin;
        private readonly delegate* unmanaged<nint, uint, int> _end;
        private readonly delegate* unmanaged<nint, void*, byte*, uint, void*, byte*, uint*, int> _transmit;
        private readonly delegate* unmanaged<nint, char*, uint*, uint*, uint*, byte*, uint*, int> _status;
        private readonly delegate* unmanaged<nint, uint, void*, uint, int> _getStatusChange;
        private readonly delegate* unmanaged<nint, int> _cancel;

        public WindowsApi(nint lib) : base(lib)
        {
            _establish = (delegate* unmanaged<uint, void*, void*, nint*, int>)Export("SCardEstablishContext");
            _release = (delegate* unmanaged<nint, int>)Export("SCardReleaseContext");
            _isValid = (delegate* unmanaged<nint, int>)Export("SCardIsValidContext");
            _list = (delegate* unmanaged<nint, char*, char*, uint*, int>)Export("SCardListReadersW");
            _connect = (delegate* unmanaged<nint, char*, uint, uint, nint*, uint*, int>)Export("SCardConnectW");
            _reconnect = (delegate* unmanaged<nint, uint, uint, uint, uint*, int>)Export("SCardReconnect");
            _disconnect = (delegate* unmanaged<nint, uint, int>)Export("SCardDisconnect");
            _begin = (delegate* unmanaged<nint, int>)Export("SCardBeginTransaction");
            _end = (delegate* unmanaged<nint, uint, int>)Export("SCardEndTransaction");
            _transmit = (delegate* unmanaged<nint, void*, byte*, uint, void*, byte*, uint*, int>)Export("SCardTransmit");
            _status = (delegate* unmanaged<nint, char*, uint*, uint*, uint*, byte*, uint*, int>)Export("SCardStatusW");
            _getStatusChange = (delegate* unmanaged<nint, uint, void*, uint, int>)Export("SCardGetStatusChangeW");
            _cancel = (delegate* unmanaged<nint, int>)Export("SCardCancel");
        }

        public override int DwordSize => 4;

        private static uint Rc(int rc) => unchecked((uint)rc);

        public override uint EstablishContext(uint scope, out nint context)
        {
            nint ctx = 0;
            uint rc = Rc(_establish(scope, null, null, &ctx));
            context = ctx;
            return rc;
        }

        public override uint ReleaseContext(nint context) => Rc(_release(context));
        public override uint IsValidContext(nint context) => Rc(_isValid(context));

        public override uint ListReaders(nint context, out List<string> readers)
        {
            readers = new List<string>();
            uint len = 0;
            uint rc = Rc(_list(context, null, null, &len));
            if (rc != 0) return rc;
            char[] buf = new char[len];
            fixed (char* p = buf)
                rc = Rc(_list(context, null, p, &len));
            if (rc != 0) return rc;
            readers = ParseMultiString(new string(buf, 0, (int)Math.Min(len, (uint)buf.Length)));
            return 0;
        }

        public override uint Connect(nint context, string reader, uint shareMode, uint preferredProtocols, out nint card, out uint activeProtocol)
        {
            nint h = 0;
            uint proto = 0;
            uint rc;
            fixed (char* n = reader + "\0")
                rc = Rc(_connect(context, n, shareMode, preferredProtocols, &h, &proto));
            card = h;
            activeProtocol = proto;
            return rc;
        }

        public override uint Reconnect(nint card, uint shareMode, uint preferredProtocols, uint initialization, out uint activeProtocol)
        {
            uint proto = 0;
            uint rc = Rc(_reconnect(card, shareMode, preferredProtocols, initialization, &proto));
            activeProtocol = proto;
            return rc;
        }

        public override uint Disconnect(nint card, uint disposition) => Rc(_disconnect(card, disposition));
        public override uint BeginTransaction(nint card) => Rc(_begin(card));
        public override uint EndTransaction(nint card, uint disposition) => Rc(_end(card, disposition));

        public override uint Transmit(nint card, uint activeProtocol, ReadOnlySpan<byte> send, Span<byte> recv, out int received)
        {
            uint rlen = (uint)recv.Length;
            uint rc;
            fixed (byte* s = send)
            fixed (byte* r = recv)
                rc = Rc(_transmit(card, (void*)PciFor(activeProtocol), s, (uint)send.Length, null, r, &rlen));
            received = rc == 0 ? (int)rlen : 0;
            return rc;
        }

        public override uint Status(nint card, out string readerName, out uint state, out uint protocol, out byte[] atr)
        {
            char* name = stackalloc char[512];
            byte* atrBuf = stackalloc byte[64];
            uint nameLen = 512, st = 0, pr = 0, atrLen = 64;
            uint rc = Rc(_status(card, name, &nameLen, &st, &pr, atrBuf, &atrLen));
            readerName = rc == 0 ? new string(name, 0, (int)Math.Min(nameLen, 512u)).TrimEnd('\0') : "";
            state = st;
            protocol = pr;
            atr = rc == 0 ? new ReadOnlySpan<byte>(atrBuf, (int)Math.Min(atrLen, 64u)).ToArray() : [];
            return rc;
        }

        // SCARD_READERSTATEW: LPCWSTR szReader; LPVOID pvUserData; DWORD dwCurrentState; DWORD dwEventState;
        // DWORD cbAtr; BYTE rgbAtr[36].
        public override uint GetStatusChange(nint context, uint timeoutMs, string reader, uint currentState, out uint eventState, out byte[] atr)
        {
            int o = 2 * nint.Size;
            int size = o + 12 + 36 + 8;
            byte* rs = stackalloc byte[size];
            new Span<byte>(rs, size).Clear();
            uint rc;
            fixed (char* n = reader + "\0")
            {
                *(char**)rs = n;
                *(uint*)(rs + o) = currentState;
                rc = Rc(_getStatusChange(context, timeoutMs, rs, 1));
            }
            eventState = *(uint*)(rs + o + 4);
            int cb = (int)Math.Min(*(uint*)(rs + o + 8), 36u);
            atr = new ReadOnlySpan<byte>(rs + o + 12, cb).ToArray();
            return rc;
        }

        public override uint Cancel(nint context) => Rc(_cancel(context));
    }
}
