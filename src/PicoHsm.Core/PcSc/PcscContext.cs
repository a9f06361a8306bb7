namespace PicoHsm.PcSc;

/// <summary>Which PC/SC scope to establish (SCARD_SCOPE_USER / SCARD_SCOPE_SYSTEM).</summary>
public enum PcscScope : uint
{
    User = PcscApi.SCARD_SCOPE_USER,
    System = PcscApi.SCARD_SCOPE_SYSTEM,
}

/// <summary>SCARD_SHARE_*.</summary>
public enum PcscShareMode : uint
{
    Exclusive = PcscApi.SCARD_SHARE_EXCLUSIVE,
    Shared = PcscApi.SCARD_SHARE_SHARED,
    Direct = PcscApi.SCARD_SHARE_DIRECT,
}

/// <summary>SCARD_PROTOCOL_* (flags).</summary>
[Flags]
public enum PcscProtocol : uint
{
    None = 0,
    T0 = PcscApi.SCARD_PROTOCOL_T0,
    T1 = PcscApi.SCARD_PROTOCOL_T1,
    Any = T0 | T1,
}

/// <summary>What to do with the card when a connection or transaction ends (SCARD_*_CARD).</summary>
public enum PcscDisposition : uint
{
    LeaveCard = PcscApi.SCARD_LEAVE_CARD,
    ResetCard = PcscApi.SCARD_RESET_CARD,
    UnpowerCard = PcscApi.SCARD_UNPOWER_CARD,
    EjectCard = PcscApi.SCARD_EJECT_CARD,
}

/// <summary>SCARD_STATE_* bits as reported by SCardGetStatusChange.</summary>
[Flags]
public enum PcscReaderState : uint
{
    Unaware = 0x0000,
    Ignore = 0x0001,
    Changed = 0x0002,
    Unknown = 0x0004,
    Unavailable = 0x0008,
    Empty = 0x0010,
    Present = 0x0020,
    AtrMatch = 0x0040,
    Exclusive = 0x0080,
    InUse = 0x0100,
    Mute = 0x0200,
    Unpowered = 0x0400,
}

/// <summary>The state of one reader (from SCardGetStatusChange).</summary>
public sealed record PcscReaderStatus(string Reader, PcscReaderState State, byte[] Atr)
{
    public bool CardPresent => (State & PcscReaderState.Present) != 0;
}

/// <summary>
/// A PC/SC resource manager context (SCardEstablishContext). Lists readers and opens
/// <see cref="PcscCardChannel"/>s. Not thread-safe: use one context per thread.
/// </summary>
public sealed class PcscContext : IDisposable
{
    private readonly PcscApi _api;
    private nint _handle;
    private bool _disposed;

    private PcscContext(PcscApi api, nint handle)
    {
        _api = api;
        _handle = handle;
    }

    /// <summary>
    /// Opens a context. Throws <see cref="PcscException"/> with a clear message when the PC/SC library
    /// is missing ("install pcscd/libpcsclite1") or the service is not running (SCARD_E_NO_SERVICE).
    /// </summary>
    public static PcscContext Establish(PcscScope scope = PcscScope.System)
    {
        PcscApi api = PcscApi.Instance;
        uint rc = api.EstablishContext((uint)scope, out nint h);
        if (rc != 0) throw new PcscException(rc, "SCardEstablishContext");
        return new PcscContext(api, h);
    }

    /// <summary>True when the native PC/SC library can be loaded on this machine; otherwise <paramref name="error"/> says what to install.</summary>
    public static bool IsLibraryAvailable(out string? error) => PcscApi.TryGetInstance(out _, out error);

    internal PcscApi Api => _api;

    internal nint Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _handle;
        }
    }

    /// <summary>True while the context is still valid (pcscd not restarted).</summary>
    public bool IsValid => !_disposed && _api.IsValidContext(_handle) == 0;

    /// <summary>The reader names; an empty list when no reader is connected (SCARD_E_NO_READERS_AVAILABLE).</summary>
    public IReadOnlyList<string> ListReaders()
    {
        for (int attempt = 0; ; attempt++)
        {
            uint rc = _api.ListReaders(Handle, out List<string> readers);
            if (rc == 0) return readers;
            if (rc == PcscError.SCARD_E_NO_READERS_AVAILABLE) return Array.Empty<string>();
            // a reader appeared between the size query and the read: ask again
            if (rc == PcscError.SCARD_E_INSUFFICIENT_BUFFER && attempt < 3) continue;
            throw new PcscException(rc, "SCardListReaders");
        }
    }

    /// <summary>Connects to the card in <paramref name="reader"/> (shared, T=1 or T=0 by default).</summary>
    public PcscCardChannel Connect(string reader, PcscShareMode shareMode = PcscShareMode.Shared,
        PcscProtocol protocols = PcscProtocol.Any)
        => PcscCardChannel.Open(this, ownsContext: false, reader, shareMode, protocols);

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for the state of <paramref name="reader"/> to differ from
    /// <paramref name="knownState"/> (pass <see cref="PcscReaderState.Unaware"/> to get the current state at once).
    /// Returns null on timeout.
    /// </summary>
    public PcscReaderStatus? GetStatusChange(string reader, TimeSpan timeout, PcscReaderState knownState = PcscReaderState.Unaware)
    {
        uint ms = timeout == Timeout.InfiniteTimeSpan ? PcscApi.INFINITE : (uint)Math.Clamp(timeout.TotalMilliseconds, 0, uint.MaxValue - 1);
        uint rc = _api.GetStatusChange(Handle, ms, reader, (uint)knownState, out uint ev, out byte[] atr);
        if (rc == PcscError.SCARD_E_TIMEOUT) return null;
        if (rc != 0) throw new PcscException(rc, "SCardGetStatusChange", reader);
        return new PcscReaderStatus(reader, (PcscReaderState)(ev & 0xFFFF), atr);
    }

    /// <summary>The current state (and ATR, when a card is present) of every reader, without connecting to any card.</summary>
    public IReadOnlyList<PcscReaderStatus> GetReaderStatuses()
    {
        var list = new List<PcscReaderStatus>();
        foreach (string reader in ListReaders())
        {
            PcscReaderStatus? st = GetStatusChange(reader, TimeSpan.Zero);
            list.Add(st ?? new PcscReaderStatus(reader, PcscReaderState.Unknown, []));
        }
        return list;
    }

    /// <summary>Cancels a blocking <see cref="GetStatusChange"/> running on another thread.</summary>
    public void Cancel()
    {
        if (!_disposed) _api.Cancel(_handle);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _api.ReleaseContext(_handle);
        _handle = 0;
    }
}
