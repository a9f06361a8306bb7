using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Pkcs11;

namespace PicoHsm.Session;

/// <summary>
/// One connection to one token: the PKCS#11 module, the slot, the session and the login.
/// Every cmdlet works through one of these (its -Session, or the runspace's default).
/// A PKCS#11 session handle is not safe for concurrent use, so callers take <see cref="Gate"/>.
/// </summary>
public sealed class PicoHsmSession : IDisposable
{
    private static int _nextId;
    private ISession? _session;

    /// <summary>
    /// <paramref name="slot"/> and <paramref name="session"/> are null for a session to a card
    /// reached through PC/SC only (a host with pcscd but no PKCS#11 module).
    /// </summary>
    public PicoHsmSession(string? modulePath, ISlot? slot, PicoHsmToken token, ISession? session, bool loggedIn)
    {
        Id = Interlocked.Increment(ref _nextId);
        ModulePath = modulePath;
        Slot = slot;
        Token = token;
        _session = session;
        _cardOnly = session is null;
        IsLoggedIn = loggedIn;
        ConnectedAt = DateTimeOffset.Now;
    }

    public int Id { get; }
    public string? ModulePath { get; }
    public ulong SlotId => Token.SlotId;
    public string? TokenLabel => Token.Label;
    public string? SerialNumber => Token.SerialNumber;
    public string? Model => Token.Model;
    public string? Manufacturer => Token.Manufacturer;
    public string? FirmwareVersion => Token.FirmwareVersion;
    public string ReaderName => Token.SlotDescription;
    public bool IsLoggedIn { get; private set; }
    public bool IsOpen => _session is not null || (_cardOnly && !_closed);

    private readonly bool _cardOnly;
    private bool _closed;

    /// <summary>Whether PKCS#11 is part of this session (false for a card reached through PC/SC only).</summary>
    public bool HasPkcs11 => Slot is not null;
    public DateTimeOffset ConnectedAt { get; }

    /// <summary>Which path does DKEK work: "Pkcs11" (C_WrapKey under an AES DKEK object) or "ScHsmCard" (the card's own commands).</summary>
    public string Backend { get; internal set; } = "Pkcs11";

    internal PicoHsmToken Token { get; }
    internal ISlot? Slot { get; }
    internal ISlot Pkcs11Slot => Slot ?? throw NoPkcs11();
    internal object Gate { get; } = new();

    /// <summary>The live PKCS#11 session; a closed session is a clear error, not a null reference.</summary>
    internal ISession Pkcs11Session => _session ?? (_cardOnly ? throw NoPkcs11() : throw new PicoHsmException(PicoErrorKind.InvalidOperation, "SessionClosed",
        $"Session {Id} to '{TokenLabel}' is closed. Connect again with Connect-PicoHsm.", this));

    private PicoHsmException NoPkcs11() => new(PicoErrorKind.NotSupported, "NoPkcs11",
        $"Session {Id} reaches the card through PC/SC only; this needs a PKCS#11 module. Connect with -ModulePath (OpenSC's opensc-pkcs11) as well.", this);

    /// <summary>Marks the session logged in (a card-only session after its channel verified the PIN).</summary>
    public void SetLoggedIn(bool value) => IsLoggedIn = value;

    internal static Pkcs11InteropFactories Factories => Pkcs11Modules.Factories;

    /// <summary>Extra state other backends hang on the session (the card channel of a Pico HSM).</summary>
    public IDisposable? Attachment { get; set; }

    public void Dispose()
    {
        var s = Interlocked.Exchange(ref _session, null);
        if (s is null)
        {
            if (_cardOnly && !_closed)
            {
                _closed = true;
                if (IsLoggedIn && Attachment is Backends.ScHsmCardBackend card) card.Logout();
                IsLoggedIn = false;
                Attachment?.Dispose();
                Attachment = null;
            }
            return;
        }
        lock (Gate)
        {
            try { if (IsLoggedIn) s.Logout(); } catch (Pkcs11Exception) { /* token gone: nothing to log out of */ }
            try { s.CloseSession(); } catch (Pkcs11Exception) { }
            IsLoggedIn = false;
            Attachment?.Dispose();
            Attachment = null;
        }
    }

    public override string ToString() => $"Session {Id}: {TokenLabel} ({SerialNumber})";
}
