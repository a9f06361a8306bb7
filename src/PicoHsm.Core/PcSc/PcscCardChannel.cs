namespace PicoHsm.PcSc;

/// <summary>
/// A PC/SC connection to the card in one reader (SCardConnect, shared by default so a PKCS#11
/// module can use the same card). When the card was reset by someone else (SCARD_W_RESET_CARD)
/// the channel reconnects and retries the command once; the card's PIN state is lost by such a
/// reset, which <see cref="ResetCount"/> lets callers notice.
/// </summary>
public sealed class PcscCardChannel : ICardChannel
{
    /// <summary>Largest response an extended APDU can carry (65536 data bytes + SW).</summary>
    public const int MaxResponseLength = 65536 + 2;

    private readonly PcscContext _context;
    private readonly bool _ownsContext;
    private readonly PcscShareMode _shareMode;
    private readonly PcscProtocol _protocols;
    private readonly byte[] _recv = new byte[MaxResponseLength];
    private nint _card;
    private uint _activeProtocol;
    private byte[] _atr = [];
    private int _transactionDepth;
    private bool _disposed;

    private PcscCardChannel(PcscContext context, bool ownsContext, string reader, PcscShareMode shareMode, PcscProtocol protocols)
    {
        _context = context;
        _ownsContext = ownsContext;
        ReaderName = reader;
        _shareMode = shareMode;
        _protocols = protocols;
    }

    /// <summary>Opens its own context and connects to <paramref name="reader"/>; disposing the channel releases both.</summary>
    public static PcscCardChannel Connect(string reader, PcscShareMode shareMode = PcscShareMode.Shared,
        PcscProtocol protocols = PcscProtocol.Any)
    {
        var ctx = PcscContext.Establish();
        try
        {
            return Open(ctx, ownsContext: true, reader, shareMode, protocols);
        }
        catch
        {
            ctx.Dispose();
            throw;
        }
    }

    internal static PcscCardChannel Open(PcscContext ctx, bool ownsContext, string reader, PcscShareMode shareMode, PcscProtocol protocols)
    {
        ArgumentException.ThrowIfNullOrEmpty(reader);
        var ch = new PcscCardChannel(ctx, ownsContext, reader, shareMode, protocols);
        uint rc = ctx.Api.Connect(ctx.Handle, reader, (uint)shareMode, (uint)protocols, out ch._card, out ch._activeProtocol);
        if (rc != 0) throw new PcscException(rc, "SCardConnect", reader);
        ch.RefreshAtr();
        return ch;
    }

    public string ReaderName { get; }

    public byte[] Atr => (byte[])_atr.Clone();

    /// <summary>The protocol negotiated at connect (T0 or T1).</summary>
    public PcscProtocol ActiveProtocol => (PcscProtocol)_activeProtocol;

    /// <summary>How often this channel reconnected because the card had been reset (PIN state lost each time).</summary>
    public int ResetCount { get; private set; }

    private PcscApi Api => _context.Api;

    private nint Card
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _card;
        }
    }

    public byte[] Transmit(ReadOnlySpan<byte> apdu)
    {
        if (apdu.Length < 4) throw new ArgumentException("A command APDU has at least 4 bytes.", nameof(apdu));
        uint rc = Api.Transmit(Card, _activeProtocol, apdu, _recv, out int n);
        if (rc == PcscError.SCARD_W_RESET_CARD)
        {
            ReconnectAfterReset();
            if (_transactionDepth > 0)
            {
                // the reconnect dropped our lock: take it again before retrying
                uint trc = Api.BeginTransaction(Card);
                if (trc != 0) throw new PcscException(trc, "SCardBeginTransaction", ReaderName);
            }
            rc = Api.Transmit(Card, _activeProtocol, apdu, _recv, out n);
        }
        if (rc != 0) throw new PcscException(rc, "SCardTransmit", ReaderName);
        if (n < 2) throw new PcscException(PcscError.SCARD_F_COMM_ERROR, "SCardTransmit", $"response of {n} bytes has no status word");
        byte[] response = _recv.AsSpan(0, n).ToArray();
        _recv.AsSpan(0, n).Clear(); // responses can carry key blobs; do not leave them in the shared buffer
        return response;
    }

    /// <summary>
    /// SCardBeginTransaction. Nested calls on this channel are counted: only the outermost one
    /// takes and releases the PC/SC lock.
    /// </summary>
    public IDisposable BeginTransaction()
    {
        if (_transactionDepth > 0)
        {
            _transactionDepth++;
            return new Transaction(this);
        }
        uint rc = Api.BeginTransaction(Card);
        if (rc == PcscError.SCARD_W_RESET_CARD)
        {
            ReconnectAfterReset();
            rc = Api.BeginTransaction(Card);
        }
        if (rc != 0) throw new PcscException(rc, "SCardBeginTransaction", ReaderName);
        _transactionDepth = 1;
        return new Transaction(this);
    }

    private void EndTransaction(PcscDisposition disposition)
    {
        if (_disposed || _transactionDepth == 0) return;
        if (--_transactionDepth > 0) return;
        uint rc = Api.EndTransaction(_card, (uint)disposition);
        // the card going away during the transaction is reported by the command that failed, not here
        if (rc != 0 && rc != PcscError.SCARD_W_RESET_CARD && rc != PcscError.SCARD_W_REMOVED_CARD
            && rc != PcscError.SCARD_E_NO_SMARTCARD && rc != PcscError.SCARD_E_NOT_TRANSACTED)
            throw new PcscException(rc, "SCardEndTransaction", ReaderName);
    }

    public void Reconnect(bool reset)
    {
        uint rc = Api.Reconnect(Card, (uint)_shareMode, (uint)_protocols,
            reset ? PcscApi.SCARD_RESET_CARD : PcscApi.SCARD_LEAVE_CARD, out uint proto);
        if (rc != 0) throw new PcscException(rc, "SCardReconnect", ReaderName);
        _activeProtocol = proto;
        RefreshAtr();
    }

    /// <summary>
    /// SCardStatus of this connection, without a command to the card: 0 while the card it connected to is
    /// there; SCARD_W_REMOVED_CARD once that card left the reader (even when a card is back: the handle stays
    /// on the old one), SCARD_W_RESET_CARD after a reset, SCARD_E_NO_SERVICE / INVALID_HANDLE when pcscd went away.
    /// </summary>
    public uint CheckStatus()
    {
        if (_disposed) return PcscError.SCARD_E_INVALID_HANDLE;
        return Api.Status(_card, out _, out _, out _, out _);
    }

    private void ReconnectAfterReset()
    {
        Reconnect(reset: false);
        ResetCount++;
    }

    private void RefreshAtr()
    {
        uint rc = Api.Status(_card, out _, out _, out uint proto, out byte[] atr);
        if (rc == 0)
        {
            _atr = atr;
            if (proto != 0) _activeProtocol = proto;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Api.Disconnect(_card, PcscApi.SCARD_LEAVE_CARD);
        _card = 0;
        if (_ownsContext) _context.Dispose();
    }

    private sealed class Transaction(PcscCardChannel owner) : IDisposable
    {
        private bool _ended;

        public void Dispose()
        {
            if (_ended) return;
            _ended = true;
            owner.EndTransaction(PcscDisposition.LeaveCard);
        }
    }
}
