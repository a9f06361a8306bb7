using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Common;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// One open PKCS#11 session on one slot, and its login. Owned by the backend that uses it (the
/// generic token backend, or a SmartCard-HSM backend reached through OpenSC's module as well);
/// disposing closes the session and gives back its share of the token's login
/// (<see cref="Pkcs11LoginRegistry"/>): the token is logged out only when the last PicoHsm session
/// sharing that login ends, since C_Logout ends the login of every session of the process.
/// </summary>
public sealed class Pkcs11Connection : IDisposable
{
    private ISession? _session;
    private readonly DeviceContext _context;
    private readonly Pkcs11Login? _login;

    public Pkcs11Connection(string modulePath, ISlot slot, ISession session, DeviceContext context)
        : this(modulePath, slot, session, context, null)
    {
    }

    /// <param name="login">This session's share of the token's login, or null when it did not log in.</param>
    public Pkcs11Connection(string modulePath, ISlot slot, ISession session, DeviceContext context, Pkcs11Login? login)
    {
        ModulePath = modulePath;
        Slot = slot;
        // Templates kept alive through each native call (see Pkcs11KeepAliveSession).
        _session = session is Pkcs11KeepAliveSession ? session : new Pkcs11KeepAliveSession(session);
        _context = context;
        _login = login;
        Pkcs11Modules.Acquire(modulePath);
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
            if (_login is not null) _login.Release(() => Logout(s));
            else if (_context.IsLoggedIn) Logout(s); // a connection made without the registry owns its login alone
            try { s.CloseSession(); } catch (Pkcs11Exception) { }
            _context.SetLoggedIn(false);
            Pkcs11Modules.Release(ModulePath);
        }
    }

    private static void Logout(ISession s)
    {
        try { s.Logout(); } catch (Pkcs11Exception) { /* token gone, or already logged out: nothing to log out of */ }
    }
}
