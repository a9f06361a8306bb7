using PicoHsm.Backends;
using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Module;

/// <summary>One place that lists a session's keys and finds its DKEK backend, so every cmdlet sees the same.</summary>
internal static class KeyServices
{
    /// <summary>The keys users back up: the DKEK object itself is not one of them (Get-PicoDkek shows it).</summary>
    public static List<PicoKey> List(PicoHsmSession session)
    {
        var backend = new Pkcs11DkekBackend(session);
        return Pkcs11KeyStore.List(session, (id, label) => session.IsLoggedIn && backend.IsDkekObject(id, label));
    }

    public static Pkcs11DkekBackend Backend(PicoHsmSession session) => new(session);
}
