using Net.Pkcs11Interop.Common;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// A token that failed only because another process was rewriting its files, retried.
///
/// Why: SoftHSM2's file object store rewrites a token's <c>token.object</c> on every successful
/// login (the PIN-count flags), and a process that reads the file at that moment reads it torn.
/// The call then fails before it does anything: C_GetTokenInfo and C_Login answer
/// CKR_GENERAL_ERROR (C_Login also CKR_USER_PIN_NOT_INITIALIZED: it read an empty PIN blob), and
/// C_Initialize leaves the token out of its slot list. Two scheduled scripts that connect to one
/// token at the same moment meet it (CI saw a Connect fail with CKR_GENERAL_ERROR while another
/// process restored into the token; two loops of pkcs11-tool logins on one token show all three
/// in under a second). The writer is done within milliseconds, so a short wait and the same
/// read again answer what the token holds.
///
/// Only calls that change nothing when they fail are retried here (a read, C_OpenSession, and
/// C_Login under the guard its caller gives, so no retry can spend a PIN try); a wrap, unwrap or
/// create is never repeated.
/// </summary>
public static class Pkcs11TornReads
{
    /// <summary>The waits before each retry: four looks at the token within half a second.</summary>
    internal static readonly TimeSpan[] Waits =
        { TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(80), TimeSpan.FromMilliseconds(250) };

    /// <summary>Whether a failed call may have read the token's files while another process wrote them.</summary>
    public static bool MayBeTorn(Pkcs11Exception ex) => ex.RV == CKR.CKR_GENERAL_ERROR;

    /// <summary>
    /// <paramref name="read"/>, again after a short wait while it fails with CKR_GENERAL_ERROR; the
    /// last failure is thrown as it came. For calls that change nothing on the token when they fail.
    /// </summary>
    public static T Read<T>(Func<T> read)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return read();
            }
            catch (Pkcs11Exception ex) when (MayBeTorn(ex) && attempt < Waits.Length)
            {
                Thread.Sleep(Waits[attempt]);
            }
        }
    }
}
