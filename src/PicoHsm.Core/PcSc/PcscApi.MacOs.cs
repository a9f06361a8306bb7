// PC/SC ABI of Apple's PCSC.framework on macOS (also used for 32-bit pcsc-lite): DWORD/LONG
// are 4 bytes (uint32_t/int32_t), SCARDCONTEXT/SCARDHANDLE are int32_t, strings are UTF-8, and
// SCARD_READERSTATE is packed (#pragma pack(1)).
//
// The same thirteen declarations are repeated in each ABI's file on purpose: the function
// pointer types differ in the width of every DWORD, LONG and handle (and Windows also in the
// string type), and one shared declaration would have to pick a width that is wrong for two
// of the three. PcscApi.cs holds the common part (constants, loading, helpers) and picks the
// class for the running OS.

namespace PicoHsm.PcSc;

internal abstract unsafe partial class PcscApi
{
    private sealed class MacApi : PcscApi
    {
        private readonly delegate* unmanaged[Cdecl]<uint, void*, void*, int*, int> _establish;
        private readonly delegate* unmanaged[Cdecl]<int, int> _release;
        private readonly delegate* unmanaged[Cdecl]<int, int> _isValid;
        private readonly delegate* unmanaged[Cdecl]<int, byte*, byte*, uint*, int> _list;
        private readonly delegate* unmanaged[Cdecl]<int, byte*, uint, uint, int*, uint*, int> _connect;
        private readonly delegate* unmanaged[Cdecl]<int, uint, uint, uint, uint*, int> _reconnect;
        private readonly delegate* unmanaged[Cdecl]<int, uint, int> _disconnect;
        private readonly delegate* unmanaged[Cdecl]<int, int> _begin;
        private readonly delegate* unmanaged[Cdecl]<int, uint, int> _end;
        private readonly delegate* unmanaged[Cdecl]<int, void*, byte*, uint, void*, byte*, uint*, int> _transmit;
        private readonly delegate* unmanaged[Cdecl]<int, byte*, uint*, uint*, uint*, byte*, uint*, int> _status;
        private readonly delegate* unmanaged[Cdecl]<int, uint, void*, uint, int> _getStatusChange;
        private readonly delegate* unmanaged[Cdecl]<int, int> _cancel;

        public MacApi(nint lib) : base(lib)
        {
            _establish = (delegate* unmanaged[Cdecl]<uint, void*, void*, int*, int>)Export("SCardEstablishContext");
            _release = (delegate* unmanaged[Cdecl]<int, int>)Export("SCardReleaseContext");
            _isValid = (delegate* unmanaged[Cdecl]<int, int>)Export("SCardIsValidContext");
            _list = (delegate* unmanaged[Cdecl]<int, byte*, byte*, uint*, int>)Export("SCardListReaders");
            _connect = (delegate* unmanaged[Cdecl]<int, byte*, uint, uint, int*, uint*, int>)Export("SCardConnect");
            _reconnect = (delegate* unmanaged[Cdecl]<int, uint, uint, uint, uint*, int>)Export("SCardReconnect");
            _disconnect = (delegate* unmanaged[Cdecl]<int, uint, int>)Export("SCardDisconnect");
            _begin = (delegate* unmanaged[Cdecl]<int, int>)Export("SCardBeginTransaction");
            _end = (delegate* unmanaged[Cdecl]<int, uint, int>)Export("SCardEndTransaction");
            _transmit = (delegate* unmanaged[Cdecl]<int, void*, byte*, uint, void*, byte*, uint*, int>)Export("SCardTransmit");
            _status = (delegate* unmanaged[Cdecl]<int, byte*, uint*, uint*, uint*, byte*, uint*, int>)Export("SCardStatus");
            _getStatusChange = (delegate* unmanaged[Cdecl]<int, uint, void*, uint, int>)Export("SCardGetStatusChange");
            _cancel = (delegate* unmanaged[Cdecl]<int, int>)Export("SCardCancel");
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
}
