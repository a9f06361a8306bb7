using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Module;

/// <summary>One place that lists a session's keys, so every cmdlet sees the same set.</summary>
internal static class KeyServices
{
    public static List<PicoKey> List(PicoHsmSession session) => Pkcs11KeyStore.List(session);
}
