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

    internal PicoHsmSession(string modulePath, ISlot slot, PicoHsmToken token, ISession session, bool loggedIn)
    {
        Id = Interlocked.Increment(ref _nextId);
        ModulePath = modulePath;
        Slot = slot;
        Token = token;
        _session = session;
        IsLoggedIn = loggedIn;
        ConnectedAt = DateTimeOffset.Now;
    }

    public int Id { get; }
    public string ModulePath { get; }
    public ulong SlotId => Token.SlotId;
    public string? TokenLabel => Token.Label;
    public string? SerialNumber => Token.SerialNumber;
    public string? Model => Token.Model;
    public string? Manufacturer => Token.Manufacturer;
    public string? FirmwareVersion => Token.FirmwareVersion;
    public string ReaderName => Token.SlotDescription;
    public bool IsLoggedIn { get; private set; }
    public bool IsOpen => _session is not null;
    public DateTimeOffset ConnectedAt { get; }

    /// <summary>Which path does DKEK work: "Pkcs11" (C_WrapKey under an AES DKEK object) or "ScHsmCard" (the card's own commands).</summary>
    public string Backend { get; internal set; } = "Pkcs11";

    internal PicoHsmToken Token { get; }
    internal ISlot Slot { get; }
    internal object Gate { get; } = new();

    /// <summary>The live PKCS#11 session; a closed session is a clear error, not a null reference.</summary>
    internal ISession Pkcs11Session => _session ?? throw new PicoHsmException(PicoErrorKind.InvalidOperation, "SessionClosed",
        $"Session {Id} to '{TokenLabel}' is closed. Connect again with Connect-PicoHsm.", this);

    internal static Pkcs11InteropFactories Factories => Pkcs11Modules.Factories;

    /// <summary>Extra state other backends hang on the session (the card channel of a Pico HSM).</summary>
    internal IDisposable? Attachment { get; set; }

    public void Dispose()
    {
        var s = Interlocked.Exchange(ref _session, null);
        if (s is null) return;
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
