// PC/SC ABI of Windows (winscard.dll): DWORD/LONG are 4 bytes, SCARDCONTEXT/SCARDHANDLE are
// ULONG_PTR (pointer-sized), and the W (UTF-16) entry points are used.
//
// The same thirteen declarations are repeated in each ABI's file on purpose: the function
// pointer types differ in the width of every DWORD, LONG and handle (and Windows also in the
// string type), and one shared declaration would have to pick a width that is wrong for two
// of the three. PcscApi.cs holds the common part (constants, loading, helpers) and picks the
// class for the running OS.

namespace PicoHsm.PcSc;

internal abstract unsafe partial class PcscApi
{
    private sealed class WindowsApi : PcscApi
    {
        private readonly delegate* unmanaged[Stdcall]<uint, void*, void*, nint*, int> _establish;
        private readonly delegate* unmanaged[Stdcall]<nint, int> _release;
        private readonly delegate* unmanaged[Stdcall]<nint, int> _isValid;
        private readonly delegate* unmanaged[Stdcall]<nint, char*, char*, uint*, int> _list;
        private readonly delegate* unmanaged[Stdcall]<nint, char*, uint, uint, nint*, uint*, int> _connect;
        private readonly delegate* unmanaged[Stdcall]<nint, uint, uint, uint, uint*, int> _reconnect;
        private readonly delegate* unmanaged[Stdcall]<nint, uint, int> _disconnect;
        private readonly delegate* unmanaged[Stdcall]<nint, int> _begin;
        private readonly delegate* unmanaged[Stdcall]<nint, uint, int> _end;
        private readonly delegate* unmanaged[Stdcall]<nint, void*, byte*, uint, void*, byte*, uint*, int> _transmit;
        private readonly delegate* unmanaged[Stdcall]<nint, char*, uint*, uint*, uint*, byte*, uint*, int> _status;
        private readonly delegate* unmanaged[Stdcall]<nint, uint, void*, uint, int> _getStatusChange;
        private readonly delegate* unmanaged[Stdcall]<nint, int> _cancel;

        public WindowsApi(nint lib) : base(lib)
        {
            _establish = (delegate* unmanaged[Stdcall]<uint, void*, void*, nint*, int>)Export("SCardEstablishContext");
            _release = (delegate* unmanaged[Stdcall]<nint, int>)Export("SCardReleaseContext");
            _isValid = (delegate* unmanaged[Stdcall]<nint, int>)Export("SCardIsValidContext");
            _list = (delegate* unmanaged[Stdcall]<nint, char*, char*, uint*, int>)Export("SCardListReadersW");
            _connect = (delegate* unmanaged[Stdcall]<nint, char*, uint, uint, nint*, uint*, int>)Export("SCardConnectW");
            _reconnect = (delegate* unmanaged[Stdcall]<nint, uint, uint, uint, uint*, int>)Export("SCardReconnect");
            _disconnect = (delegate* unmanaged[Stdcall]<nint, uint, int>)Export("SCardDisconnect");
            _begin = (delegate* unmanaged[Stdcall]<nint, int>)Export("SCardBeginTransaction");
            _end = (delegate* unmanaged[Stdcall]<nint, uint, int>)Export("SCardEndTransaction");
            _transmit = (delegate* unmanaged[Stdcall]<nint, void*, byte*, uint, void*, byte*, uint*, int>)Export("SCardTransmit");
            _status = (delegate* unmanaged[Stdcall]<nint, char*, uint*, uint*, uint*, byte*, uint*, int>)Export("SCardStatusW");
            _getStatusChange = (delegate* unmanaged[Stdcall]<nint, uint, void*, uint, int>)Export("SCardGetStatusChangeW");
            _cancel = (delegate* unmanaged[Stdcall]<nint, int>)Export("SCardCancel");
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
