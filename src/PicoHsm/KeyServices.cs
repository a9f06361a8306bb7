using PicoHsm.Backends;
using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Module;

/// <summary>One place that finds a session's DKEK backend and its keys, so every cmdlet sees the same.</summary>
internal static class KeyServices
{
    public static IDkekBackend Backend(PicoHsmSession session) => BackupFiles.BackendFor(session);

    /// <summary>The keys users back up: not the DKEK object, not a card's own device key.</summary>
    public static List<PicoKey> List(PicoHsmSession session) => Backend(session).ListKeys();
}
