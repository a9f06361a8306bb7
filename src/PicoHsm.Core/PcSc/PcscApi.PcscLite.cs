// PC/SC ABI of pcsc-lite on 64-bit Linux and other Unix (libpcsclite.so.1): DWORD is
// unsigned long and LONG is long, so both are 8 bytes (nuint/nint), SCARDCONTEXT/SCARDHANDLE
// are LONG, strings are UTF-8, and SCARD_READERSTATE is 80 bytes. (32-bit pcsc-lite has the
// macOS ABI: PcscApi.MacOs.cs.)
//
// The same thirteen declarations are repeated in each ABI's file on purpose: the function
// pointer types differ in the width of every DWORD, LONG and handle (and Windows also in the
// string type), and one shared declaration would have to pick a width that is wrong for two
// of the three. PcscApi.cs holds the common part (constants, loading, helpers) and picks the
// class for the running OS.

namespace PicoHsm.PcSc;

internal abstract unsafe partial class PcscApi
{
    private sealed class LinuxApi : PcscApi
    {
        private readonly delegate* unmanaged[Cdecl]<nuint, void*, void*, nint*, nint> _establish;
        private readonly delegate* unmanaged[Cdecl]<nint, nint> _release;
        private readonly delegate* unmanaged[Cdecl]<nint, nint> _isValid;
        private readonly delegate* unmanaged[Cdecl]<nint, byte*, byte*, nuint*, nint> _list;
        private readonly delegate* unmanaged[Cdecl]<nint, byte*, nuint, nuint, nint*, nuint*, nint> _connect;
        private readonly delegate* unmanaged[Cdecl]<nint, nuint, nuint, nuint, nuint*, nint> _reconnect;
        private readonly delegate* unmanaged[Cdecl]<nint, nuint, nint> _disconnect;
        private readonly delegate* unmanaged[Cdecl]<nint, nint> _begin;
        private readonly delegate* unmanaged[Cdecl]<nint, nuint, nint> _end;
        private readonly delegate* unmanaged[Cdecl]<nint, void*, byte*, nuint, void*, byte*, nuint*, nint> _transmit;
        private readonly delegate* unmanaged[Cdecl]<nint, byte*, nuint*, nuint*, nuint*, byte*, nuint*, nint> _status;
        private readonly delegate* unmanaged[Cdecl]<nint, nuint, void*, nuint, nint> _getStatusChange;
        private readonly delegate* unmanaged[Cdecl]<nint, nint> _cancel;

        public LinuxApi(nint lib) : base(lib)
        {
            _establish = (delegate* unmanaged[Cdecl]<nuint, void*, void*, nint*, nint>)Export("SCardEstablishContext");
            _release = (delegate* unmanaged[Cdecl]<nint, nint>)Export("SCardReleaseContext");
            _isValid = (delegate* unmanaged[Cdecl]<nint, nint>)Export("SCardIsValidContext");
            _list = (delegate* unmanaged[Cdecl]<nint, byte*, byte*, nuint*, nint>)Export("SCardListReaders");
            _connect = (delegate* unmanaged[Cdecl]<nint, byte*, nuint, nuint, nint*, nuint*, nint>)Export("SCardConnect");
            _reconnect = (delegate* unmanaged[Cdecl]<nint, nuint, nuint, nuint, nuint*, nint>)Export("SCardReconnect");
            _disconnect = (delegate* unmanaged[Cdecl]<nint, nuint, nint>)Export("SCardDisconnect");
            _begin = (delegate* unmanaged[Cdecl]<nint, nint>)Export("SCardBeginTransaction");
            _end = (delegate* unmanaged[Cdecl]<nint, nuint, nint>)Export("SCardEndTransaction");
            _transmit = (delegate* unmanaged[Cdecl]<nint, void*, byte*, nuint, void*, byte*, nuint*, nint>)Export("SCardTransmit");
            _status = (delegate* unmanaged[Cdecl]<nint, byte*, nuint*, nuint*, nuint*, byte*, nuint*, nint>)Export("SCardStatus");
            _getStatusChange = (delegate* unmanaged[Cdecl]<nint, nuint, void*, nuint, nint>)Export("SCardGetStatusChange");
            _cancel = (delegate* unmanaged[Cdecl]<nint, nint>)Export("SCardCancel");
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
}
