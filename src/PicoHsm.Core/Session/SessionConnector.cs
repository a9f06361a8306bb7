using System.Runtime.ExceptionServices;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Devices.ScHsm.Backend;
using PicoHsm.Devices.ScHsm.Card;

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
    /// <summary>
    /// The PC/SC reader of a SmartCard-HSM / Pico HSM. With a module: the card channel's reader
    /// when it differs from the PKCS#11 slot description. Without one: a card-only session.
    /// </summary>
    public string? Reader { get; init; }
    /// <summary>Connect to the card through PC/SC only, no PKCS#11 module.</summary>
    public bool CardOnly { get; init; }
    /// <summary>Told what the connect decided (which module and why, how the PIN was proven); never a secret.</summary>
    public Action<string>? Verbose { get; init; }
}

/// <summary>Opens a <see cref="PicoHsmSession"/>: module, token choice, PIN checks, login.</summary>
public static class SessionConnector
{
    public static PicoHsmSession Connect(ConnectOptions o)
    {
        if (o.CardOnly) return ConnectCard(o);
        var module = Pkcs11Modules.Resolve(o.ModulePath);
        string path = module.Path;
        o.Verbose?.Invoke($"PKCS#11 module: '{path}', {module.Reason}.");
        // OpenSC reads a card's PKCS#15 view only at C_Initialize: with no session using the module,
        // it is loaded afresh, so a card initialised or changed since the last load is seen as it is.
        bool wasLoaded = Pkcs11Modules.IsLoaded(path);
        using var use = Pkcs11Modules.Use(path, refresh: true);
        if (wasLoaded && !Pkcs11Modules.IsLoaded(path))
            o.Verbose?.Invoke($"No session used '{path}': the module was reinitialised to read its tokens afresh.");

        // The PIN is asked for once, however often the token is looked at again below; every look
        // gets a copy (and zeroes it), the answer itself is zeroed at the end.
        byte[]? given = null;
        bool asked = false;
        byte[]? Pin(PicoHsmToken t)
        {
            if (!asked) { given = o.PinSource?.Invoke(t); asked = true; }
            return given is null ? null : (byte[])given.Clone();
        }
        try
        {
            for (int load = 0; ; load++)
            {
                try
                {
                    return ConnectToToken(o, path, module.Reason, Pin);
                }
                catch (TornTokenRead torn)
                {
                    // SoftHSM2's C_Initialize read the token's files while another process rewrote them
                    // (see Pkcs11TornReads): load the module afresh and look again, when nothing else in
                    // the process uses a module (then nothing of anyone's is ended by it).
                    if (load >= Pkcs11TornReads.Waits.Length) ExceptionDispatchInfo.Capture(torn.Error).Throw();
                    Thread.Sleep(Pkcs11TornReads.Waits[load]);
                    if (!Pkcs11Modules.ReloadForSoleLease(path)) ExceptionDispatchInfo.Capture(torn.Error).Throw();
                    o.Verbose?.Invoke($"The connect failed ({torn.Error.Reason}); the module was loaded afresh to look again: a token whose files " +
                        "another process was rewriting can be read torn, or left out of the slot list.");
                }
            }
        }
        finally
        {
            if (given is not null) Array.Clear(given);
        }
    }

    /// <summary>
    /// A connect that found the token or its login state read torn: <see cref="Error"/> is what it
    /// failed with. Thrown only where nothing is open yet (no session, no login).
    /// </summary>
    private sealed class TornTokenRead(PicoHsmException error) : Exception(error.Message, error)
    {
        public PicoHsmException Error { get; } = error;
    }

    /// <summary>Token choice, PIN checks, session, login and backend, on the module as it is loaded now.</summary>
    private static PicoHsmSession ConnectToToken(ConnectOptions o, string path, string? moduleReason, Func<PicoHsmToken, byte[]?> pinSource)
    {
        ISlot slot;
        PicoHsmToken token;
        try
        {
            (slot, token) = TokenDiscovery.Select(path, o.TokenLabel, o.SerialNumber, o.SlotId, moduleReason);
        }
        catch (PicoHsmException ex) when (ex.Kind == PicoErrorKind.NotFound || ex.InnerException is Pkcs11Exception { RV: CKR.CKR_GENERAL_ERROR })
        {
            // Not found, or the listing failed: a token left out of C_Initialize's slot list, or its
            // token info read torn several times. A token that is really absent is reported as
            // before, after the looks again (a third of a second).
            throw new TornTokenRead(ex);
        }
        o.Verbose?.Invoke($"Token: '{token.Label}' serial {token.SerialNumber} in slot {token.SlotId} ('{token.SlotDescription}').");

        // Refuse before sending a PIN: a locked PIN cannot succeed, and a wrong PIN on the final
        // try locks it, which for an HSM means an SO-PIN ceremony.
        if (token.UserPinLocked)
            throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinLocked",
                $"The user PIN of '{token.Label}' is locked. Unblock it with the SO-PIN first (sc-hsm-tool --unlock-pin, or pkcs11-tool --init-pin --login-type so).", token);

        byte[]? pin = pinSource(token);
        // A wrong PIN on the final try locks it. A login this process already has is proven against
        // its PIN hash and spends no try, so the guard runs only before a C_Login the token checks.
        PicoHsmException? FinalTry() => token.UserPinFinalTry && !o.Force
            ? new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinFinalTry",
                $"The user PIN of '{token.Label}' has one try left; a wrong PIN now locks it. Check the PIN, then repeat with -Force.", token)
            : null;
        if (pin is null && token.ProtectedAuthenticationPath)
            o.Verbose?.Invoke($"'{token.Label}' has a protected authentication path (a PIN pad); no PIN was given or proven, so this session is not logged in by PicoHsm.");

        ISession session;
        try
        {
            session = slot.OpenSession(SessionType.ReadWrite);
        }
        catch (Pkcs11Exception ex)
        {
            if (pin is not null) Array.Clear(pin);
            throw Pkcs11Errors.Translate(ex, $"open a session to '{token.Label}' (slot {token.SlotId} of '{path}')", token);
        }

        // A SmartCard-HSM's DKEK work goes through its own card channel, which may need to VERIFY
        // the PIN again after anything re-selects the applet; it keeps a pinned copy for that.
        using SecretBytes? cardPin = pin is not null && (token.IsScHsmFamily || o.Reader is not null) ? SecretBytes.CopyOf(pin) : null;
        Pkcs11Login? login = null;
        if (pin is not null)
        {
            try
            {
                // Every Connect proves its PIN: by the token's C_Login, or against the login this process already has.
                login = Pkcs11LoginRegistry.Login(path, token, session, pin, o.Verbose, FinalTry, () => RetrySpendsNoTry(slot, token));
            }
            catch (PicoHsmException ex) when ((ex.InnerException is Pkcs11Exception { RV: CKR.CKR_GENERAL_ERROR } ||
                (ex.InnerException is Pkcs11Exception { RV: CKR.CKR_USER_PIN_NOT_INITIALIZED } && token.UserPinInitialized)) &&
                RetrySpendsNoTry(slot, token))
            {
                // The login failed before the token looked at the PIN, and looking again did not help:
                // SoftHSM2 reads a token's PIN blobs once, at C_Initialize, and keeps what it read (an
                // empty user PIN blob, when it was torn) for as long as the module stays loaded.
                try { session.CloseSession(); } catch (Pkcs11Exception) { }
                throw new TornTokenRead(ex);
            }
            catch (PicoHsmException ex) when (ex.InnerException is Pkcs11Exception { RV: CKR.CKR_PIN_INCORRECT })
            {
                // The token spent a try: say how many are left, as the card path does.
                try { session.CloseSession(); } catch (Pkcs11Exception) { }
                throw new PicoHsmException(ex.Kind, ex.Reason, $"{ex.Message} {TriesLeft(slot, token)}", ex.Target, ex.InnerException);
            }
            catch
            {
                try { session.CloseSession(); } catch (Pkcs11Exception) { }
                throw;
            }
            finally
            {
                Array.Clear(pin);
            }
        }
        bool loggedIn = login is not null;
        var context = new DeviceContext(token);
        context.SetLoggedIn(loggedIn);
        var pkcs11 = new Pkcs11Connection(path, slot, session, context, login);
        if (!token.IsScHsmFamily && o.Reader is null)
            return new PicoHsmSession(new Pkcs11DkekBackend(context, pkcs11));

        // A SmartCard-HSM through OpenSC: the DKEK work goes through the card's own channel on the
        // same reader; the backend owns the PKCS#11 session too.
        ScHsmCardBackend card;
        try
        {
            card = o.Reader is not null
                ? ScHsmCardBackend.Open(context, o.Reader, cardPin, pkcs11)
                : ScHsmCardBackend.Open(context, cardPin, pkcs11);
        }
        catch
        {
            pkcs11.Dispose();
            throw;
        }
        return new PicoHsmSession(card);
    }

    /// <summary>
    /// A card-only session that does not log in and does not look at the PIN state (a blocked
    /// or uninitialised card can still be initialised): for Initialize-PicoHsm -Reader.
    /// </summary>
    public static PicoHsmSession OpenCardOnly(string reader) => new(ScHsmCardBackend.ConnectCardOnly(reader, null));

    /// <summary>
    /// Whether a C_Login that failed before the token checked the PIN may be sent again: only while a
    /// wrong PIN could not lock it (not on the final try, not locked) and when the failed call counted
    /// no try (the count-low flag as it was before the login). A token that cannot say is not retried.
    /// </summary>
    internal static bool RetrySpendsNoTry(ISlot slot, PicoHsmToken token)
    {
        try
        {
            var f = Pkcs11TornReads.Read(() => slot.GetTokenInfo().TokenFlags);
            return !f.UserPinLocked && !f.UserPinFinalTry && f.UserPinCountLow == token.UserPinCountLow;
        }
        catch (Pkcs11Exception)
        {
            return false;
        }
    }

    /// <summary>
    /// The tries left after a wrong PIN: the exact count from the card's own channel for a SmartCard-HSM
    /// (OpenSC reports only CKF_USER_PIN_COUNT_LOW / FINAL_TRY / LOCKED), else what the token's flags say.
    /// </summary>
    internal static string TriesLeft(ISlot slot, PicoHsmToken token)
    {
        if (token.IsScHsmFamily && !string.IsNullOrEmpty(token.SlotDescription))
        {
            try
            {
                using var card = ScHsmCardBackend.ConnectCardOnly(token.SlotDescription, null);
                var st = card.ReadPinStatus();
                if (st.State == ScHsmPinState.Blocked) return "No tries are left: the PIN is now blocked (unblock it with the SO-PIN, e.g. sc-hsm-tool --unlock-pin).";
                if (st.TriesLeft is int n) return $"{n} {(n == 1 ? "try" : "tries")} left before the PIN is blocked.";
            }
            catch (PicoHsmException) { /* no card channel: the flags below */ }
        }
        try
        {
            var f = Pkcs11TornReads.Read(() => slot.GetTokenInfo().TokenFlags);
            return f.UserPinLocked ? "The token reports the PIN locked now (unblock it with the SO-PIN)."
                : f.UserPinFinalTry ? "The token reports one try left before the PIN is locked."
                : f.UserPinCountLow ? "The token reports fewer tries left than its maximum (it does not say how many)."
                : "The token does not say how many tries are left.";
        }
        catch (Pkcs11Exception)
        {
            return "The token does not say how many tries are left.";
        }
    }

    /// <summary>
    /// A card was changed behind the PKCS#11 modules' back (initialised over its card channel): each
    /// loaded module is finalised now, or once the last session using it closes, so the next connect
    /// reads the card afresh (OpenSC reads a card's PKCS#15 view only at C_Initialize).
    /// </summary>
    /// <returns>Whether every module was refreshed at once (no session still uses one).</returns>
    public static bool RefreshModules() => Pkcs11Modules.MarkStale();

    /// <summary>Readers holding a SmartCard-HSM family card (by ATR; nothing is sent to any card).</summary>
    public static IReadOnlyList<string> FindCardReaders() => ScHsmCardBackend.FindReaders();

    /// <summary>A session to a SmartCard-HSM / Pico HSM through PC/SC only (a host with pcscd and no PKCS#11 module).</summary>
    private static PicoHsmSession ConnectCard(ConnectOptions o)
    {
        string reader = o.Reader ?? ScHsmCardBackend.FindReaders() switch
        {
            { Count: 1 } one => one[0],
            { Count: 0 } => throw new PicoHsmException(PicoErrorKind.NotFound, "NoCard",
                "No SmartCard-HSM / Pico HSM was found in any PC/SC reader. Insert it, check that pcscd runs, or name the reader with -Reader.", null),
            var many => throw new PicoHsmException(PicoErrorKind.InvalidArgument, "AmbiguousReader",
                $"Several readers hold a SmartCard-HSM: {string.Join(", ", many.Select(r => $"'{r}'"))}. Choose one with -Reader.", null),
        };
        var backend = ScHsmCardBackend.ConnectCardOnly(reader, null);
        try
        {
            var status = backend.ReadPinStatus();
            if (status.State == ScHsmPinState.Blocked)
                throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinLocked",
                    $"The user PIN of the card in '{reader}' is locked. Unblock it with the SO-PIN first (sc-hsm-tool --unlock-pin).", reader);
            byte[]? pin = o.PinSource?.Invoke(backend.Context.Token);
            if (pin is not null)
            {
                try
                {
                    if (status.TriesLeft == 1 && !o.Force)
                        throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinFinalTry",
                            $"The user PIN of the card in '{reader}' has one try left; a wrong PIN now locks it. Check the PIN, then repeat with -Force.", reader);
                    using var copy = SecretBytes.CopyOf(pin);
                    backend.Login(copy);
                }
                finally
                {
                    Array.Clear(pin);
                }
            }
            return new PicoHsmSession(backend);
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }
}
