using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Common;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// One open PKCS#11 session on one slot, and its login. Owned by the backend that uses it (the
/// generic token backend, or a SmartCard-HSM backend reached through OpenSC's module as well);
/// disposing logs out and closes the session.
/// </summary>
public sealed class Pkcs11Connection : IDisposable
{
    private ISession? _session;
    private readonly DeviceContext _context;

    public Pkcs11Connection(string modulePath, ISlot slot, ISession session, DeviceContext context)
    {
        ModulePath = modulePath;
        Slot = slot;
        _session = session;
        _context = context;
    }

    public string ModulePath { get; }
    public ISlot Slot { get; }
    public bool IsOpen => _session is not null;

    internal static Pkcs11InteropFactories Factories => Pkcs11Modules.Factories;

    /// <summary>The live session handle; a closed connection is a clear error, not a null reference.</summary>
    public ISession Session => _session ?? throw new PicoHsmException(PicoErrorKind.InvalidOperation, "SessionClosed",
        $"Session {_context.SessionId} to '{_context.TokenLabel}' is closed. Connect again with Connect-PicoHsm.", _context);

    public void Dispose()
    {
        lock (_context.Gate)
        {
            var s = Interlocked.Exchange(ref _session, null);
            if (s is null) return;
            try { if (_context.IsLoggedIn) s.Logout(); } catch (Pkcs11Exception) { /* token gone: nothing to log out of */ }
            try { s.CloseSession(); } catch (Pkcs11Exception) { }
            _context.SetLoggedIn(false);
        }
    }
}
