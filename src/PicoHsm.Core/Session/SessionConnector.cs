using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Pkcs11;

namespace PicoHsm.Session;

public sealed class ConnectOptions
{
    public string? ModulePath { get; init; }
    public string? TokenLabel { get; init; }
    public string? SerialNumber { get; init; }
    public ulong? SlotId { get; init; }
    /// <summary>Allow a login on the PIN's final try.</summary>
    public bool Force { get; init; }
    /// <summary>
    /// Called once the token is chosen and known to need a login. Returns the PIN as UTF-8 bytes
    /// (the connector zeroes them), or null to connect without logging in.
    /// </summary>
    public Func<PicoHsmToken, byte[]?>? PinSource { get; init; }
}

/// <summary>Opens a <see cref="PicoHsmSession"/>: module, token choice, PIN checks, login.</summary>
public static class SessionConnector
{
    public static PicoHsmSession Connect(ConnectOptions o)
    {
        string path = Pkcs11Modules.ResolvePath(o.ModulePath);
        var (slot, token) = TokenDiscovery.Select(path, o.TokenLabel, o.SerialNumber, o.SlotId);

        // Refuse before sending a PIN: a locked PIN cannot succeed, and a wrong PIN on the final
        // try locks it, which for an HSM means an SO-PIN ceremony.
        if (token.UserPinLocked)
            throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinLocked",
                $"The user PIN of '{token.Label}' is locked. Unblock it with the SO-PIN first (sc-hsm-tool --unlock-pin, or pkcs11-tool --init-pin --login-type so).", token);

        byte[]? pin = o.PinSource?.Invoke(token);
        if (pin is not null && token.UserPinFinalTry && !o.Force)
        {
            Array.Clear(pin);
            throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinFinalTry",
                $"The user PIN of '{token.Label}' has one try left; a wrong PIN now locks it. Check the PIN, then repeat with -Force.", token);
        }

        ISession session;
        try
        {
            session = slot.OpenSession(SessionType.ReadWrite);
        }
        catch (Pkcs11Exception ex)
        {
            if (pin is not null) Array.Clear(pin);
            throw Pkcs11Errors.Translate(ex, $"open a session to '{token.Label}'", token);
        }

        bool loggedIn = false;
        if (pin is not null)
        {
            try
            {
                session.Login(CKU.CKU_USER, pin);
                loggedIn = true;
            }
            catch (Pkcs11Exception ex) when (ex.RV == CKR.CKR_USER_ALREADY_LOGGED_IN)
            {
                loggedIn = true; // another session of this process logged in; login state is per token
            }
            catch (Pkcs11Exception ex)
            {
                try { session.CloseSession(); } catch (Pkcs11Exception) { }
                throw Pkcs11Errors.Translate(ex, $"log in to '{token.Label}'", token);
            }
            finally
            {
                Array.Clear(pin);
            }
        }
        return new PicoHsmSession(path, slot, token, session, loggedIn);
    }
}
