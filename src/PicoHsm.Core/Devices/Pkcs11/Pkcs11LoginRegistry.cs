using System.Security.Cryptography;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Common;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// The PKCS#11 logins of this process, one per token. PKCS#11 login state belongs to the token
/// (for the whole process), not to a session: once one session is logged in, C_Login on another
/// answers CKR_USER_ALREADY_LOGGED_IN without looking at the PIN. So the first Connect to a token
/// logs in for real and keeps a salted PBKDF2 hash of the PIN (in memory only); every later
/// Connect to that token is compared with it in constant time: a wrong PIN is refused without a
/// C_Login (no device try is spent), the right one shares the login. Each sharing session holds a
/// <see cref="Pkcs11Login"/>; the login ends (C_Logout) when the last of them is disposed.
///
/// A token that is logged in with no entry here (code outside PicoHsm in this process, or the same
/// library reached through another module path, such as pkcs11-spy) is refused: the PIN cannot be
/// compared with anything, and logging out to prove it would end that other user's login (and a
/// wrong PIN would then leave it logged out). Refusing spends no try and changes nothing.
/// </summary>
public static class Pkcs11LoginRegistry
{
    private const int Iterations = 100_000;
    private const int SaltBytes = 16;
    private const int HashBytes = 32;

    private static readonly object Gate = new();
    private static readonly Dictionary<string, Entry> Entries = new(StringComparer.Ordinal);
    private static readonly Dictionary<string, object> KeyGates = new(StringComparer.Ordinal);

    internal sealed class Entry
    {
        public required string Key { get; init; }
        public required byte[] Salt { get; init; }
        /// <summary>The PIN's PBKDF2 hash, derived on the thread pool while the connect goes on (see <see cref="DeriveAside"/>).</summary>
        public required Task<byte[]> PendingHash { get; init; }
        public byte[] Hash => PendingHash.GetAwaiter().GetResult();
        public int Sessions { get; set; }
    }

    /// <summary>The registry key: module path, slot and token serial (login state is per token per loaded module).</summary>
    public static string KeyOf(string modulePath, PicoHsmToken token) =>
        $"{modulePath}\u001f{token.SlotId}\u001f{token.SerialNumber}";

    /// <summary>How many PicoHsm sessions share the login of this token (0: not logged in through PicoHsm).</summary>
    public static int SessionsSharing(string modulePath, PicoHsmToken token)
    {
        lock (Gate) return Entries.TryGetValue(KeyOf(modulePath, token), out var e) ? e.Sessions : 0;
    }

    private static object KeyGate(string key)
    {
        lock (Gate)
        {
            if (!KeyGates.TryGetValue(key, out var g)) KeyGates[key] = g = new object();
            return g;
        }
    }

    /// <summary>
    /// Logs <paramref name="session"/> in with <paramref name="pin"/>, or proves the PIN against the
    /// login this process already has on the token and shares it. The PIN bytes are not zeroed here
    /// (the caller owns them). Throws AuthenticationFailed (WrongPin) for a PIN that does not match
    /// the login in place, and LoggedInElsewhere for a login that is not PicoHsm's.
    /// <paramref name="beforeTokenChecksPin"/> runs just before a C_Login that the token will check
    /// (not when the PIN is proven against a login in place); an exception it returns is thrown instead.
    /// A C_Login that failed with CKR_GENERAL_ERROR, before the token looked at the PIN (a torn read of
    /// its files, see <see cref="Pkcs11TornReads"/>), is sent again only while <paramref name="retrySpendsNoTry"/>
    /// says, after the wait, that the token's PIN state shows no try spent and no lock close (null: never).
    /// </summary>
    public static Pkcs11Login Login(string modulePath, PicoHsmToken token, ISession session, ReadOnlySpan<byte> pin,
        Action<string>? verbose = null, Func<PicoHsmException?>? beforeTokenChecksPin = null, Func<bool>? retrySpendsNoTry = null)
    {
        string key = KeyOf(modulePath, token);
        string where = $"'{token.Label}' (serial {token.SerialNumber}, slot {token.SlotId} of '{modulePath}')";
        lock (KeyGate(key))
        {
            Entry? entry;
            lock (Gate) Entries.TryGetValue(key, out entry);
            if (entry is not null)
            {
                if (!Matches(entry, pin))
                    throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "WrongPin",
                        $"Could not log in to {where}: the PIN is wrong. This process is already logged in to that token, and the PIN given is not " +
                        "the one that logged in, so it was refused here without asking the token (no PIN try was spent). Check the PIN before trying again.", token);
                if (!IsUserSession(session))
                {
                    // The token lost the login (reset, re-inserted): the PIN was proven against the one it accepted, so log in again.
                    verbose?.Invoke($"The PIN matches this process's login to {where}, but the token no longer reports it; logging in again.");
                    LoginOnToken(session, pin, where, token, retrySpendsNoTry, verbose); // "already logged in" here is the state coming back: fine
                }
                else
                {
                    verbose?.Invoke($"The PIN matches the login this process already has on {where}; sharing it ({entry.Sessions + 1} sessions).");
                }
                lock (Gate) entry.Sessions++;
                return new Pkcs11Login(entry);
            }

            if (IsUserSession(session)) throw LoggedInElsewhere(where, token);
            if (beforeTokenChecksPin?.Invoke() is { } refused) throw refused;
            if (!LoginOnToken(session, pin, where, token, retrySpendsNoTry, verbose)) throw LoggedInElsewhere(where, token);
            byte[] salt = RandomNumberGenerator.GetBytes(SaltBytes);
            entry = new Entry { Key = key, Salt = salt, PendingHash = DeriveAside(pin, salt), Sessions = 1 };
            lock (Gate) Entries[key] = entry;
            verbose?.Invoke($"Logged in to {where}; the PIN was checked by the token.");
            return new Pkcs11Login(entry);
        }
    }

    /// <summary>Drops one session's share; the last one runs <paramref name="logout"/> (C_Logout) before the entry goes.</summary>
    internal static void Release(Entry entry, Action logout)
    {
        lock (KeyGate(entry.Key))
        {
            bool last;
            lock (Gate)
            {
                entry.Sessions--;
                last = entry.Sessions <= 0;
                if (last && Entries.TryGetValue(entry.Key, out var current) && ReferenceEquals(current, entry))
                    Entries.Remove(entry.Key);
            }
            if (!last) return;
            CryptographicOperations.ZeroMemory(entry.Hash);
            CryptographicOperations.ZeroMemory(entry.Salt);
            logout();
        }
    }

    /// <summary>
    /// C_Login; false when the token answered CKR_USER_ALREADY_LOGGED_IN (the PIN was not checked).
    /// A failure from before the PIN check is retried after a short wait, each time only if
    /// <paramref name="retrySpendsNoTry"/> allows it.
    /// </summary>
    private static bool LoginOnToken(ISession session, ReadOnlySpan<byte> pin, string where, PicoHsmToken token,
        Func<bool>? retrySpendsNoTry, Action<string>? verbose)
    {
        byte[] copy = pin.ToArray();
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                try
                {
                    session.Login(CKU.CKU_USER, copy);
                    return true;
                }
                catch (Pkcs11Exception ex) when (ex.RV == CKR.CKR_USER_ALREADY_LOGGED_IN)
                {
                    return false;
                }
                catch (Pkcs11Exception ex)
                {
                    if (!Pkcs11TornReads.MayBeTorn(ex) || attempt >= Pkcs11TornReads.Waits.Length)
                        throw Pkcs11Errors.Translate(ex, $"log in to {where}", token);
                    Thread.Sleep(Pkcs11TornReads.Waits[attempt]);
                    if (retrySpendsNoTry?.Invoke() != true)
                        throw Pkcs11Errors.Translate(ex, $"log in to {where}", token);
                    verbose?.Invoke($"{where} answered {ex.RV} to C_Login before it checked the PIN (its files were being rewritten by another process); logging in again.");
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(copy);
        }
    }

    private static bool IsUserSession(ISession session)
    {
        try
        {
            var state = session.GetSessionInfo().State;
            return state is CKS.CKS_RO_USER_FUNCTIONS or CKS.CKS_RW_USER_FUNCTIONS;
        }
        catch (Pkcs11Exception)
        {
            return false; // C_Login will tell
        }
    }

    private static bool Matches(Entry entry, ReadOnlySpan<byte> pin)
    {
        byte[] h = Derive(pin, entry.Salt);
        try { return CryptographicOperations.FixedTimeEquals(h, entry.Hash); }
        finally { CryptographicOperations.ZeroMemory(h); }
    }

    /// <summary>
    /// The hash of a PIN the token has just accepted, derived off the connect's path. Why: the
    /// 100,000 PBKDF2-SHA256 rounds (what makes the hash slow to guess from a memory dump: a 6-digit
    /// PIN is a million guesses) cost 50-100 ms, and nothing needs the hash until a second Connect to
    /// the same token compares a PIN with it (<see cref="Matches"/> waits for it). The PIN is copied
    /// for the derivation and the copy zeroed as soon as it is done; the rounds are not reduced.
    /// </summary>
    private static Task<byte[]> DeriveAside(ReadOnlySpan<byte> pin, byte[] salt)
    {
        byte[] copy = pin.ToArray();
        return Task.Run(() =>
        {
            try { return Derive(copy, salt); }
            finally { CryptographicOperations.ZeroMemory(copy); }
        });
    }

    private static byte[] Derive(ReadOnlySpan<byte> pin, byte[] salt) =>
        Rfc2898DeriveBytes.Pbkdf2(pin, salt, Iterations, HashAlgorithmName.SHA256, HashBytes);

    private static PicoHsmException LoggedInElsewhere(string where, PicoHsmToken token) =>
        new(PicoErrorKind.InvalidOperation, "LoggedInElsewhere",
            $"This process is already logged in to {where}, but not through a PicoHsm session of that module, so the PIN given cannot be " +
            "compared with the one that logged in, and an unproven PIN is not accepted. Logging out to check it would end that other login, so " +
            "nothing was sent to the token. End the other user of this token in this process (other code, or the same library loaded through " +
            "another module path such as pkcs11-spy), or connect from a new PowerShell process.", token);
}

/// <summary>One session's share of a token's login; disposing the last share logs the token out.</summary>
public sealed class Pkcs11Login
{
    private Pkcs11LoginRegistry.Entry? _entry;

    internal Pkcs11Login(Pkcs11LoginRegistry.Entry entry) => _entry = entry;

    /// <summary>Gives the share back; <paramref name="logout"/> runs only when it was the last one.</summary>
    public void Release(Action logout)
    {
        var e = Interlocked.Exchange(ref _entry, null);
        if (e is not null) Pkcs11LoginRegistry.Release(e, logout);
    }
}
