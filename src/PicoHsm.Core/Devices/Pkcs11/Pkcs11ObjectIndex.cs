using System.Diagnostics;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// The token's objects of one class by CKA_ID, from one C_FindObjects of that class. Why: tokens such
/// as SoftHSM2 answer every C_FindObjects by scanning all their objects, so a find per exported key
/// (its handle, its certificate) makes a backup of n keys cost n² attribute matches. With the index a
/// backup costs one scan per class, and each hit is still checked against the token (one
/// C_GetAttributeValue of CKA_CLASS and CKA_ID), so a deleted or changed object is never used.
/// A miss is trusted for the snapshot's life: the snapshot is dropped by <see cref="Reset"/> (a new
/// listing, a key this module created) and when it is older than <see cref="MaxAge"/>, so objects
/// another tool adds are seen by the next operation. Callers hold the session's gate.
/// </summary>
internal sealed class Pkcs11ObjectIndex
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(30);
    private static readonly List<CKA> ClassAndId = new() { CKA.CKA_CLASS, CKA.CKA_ID };
    private static readonly List<CKA> IdOnly = new() { CKA.CKA_ID };

    private readonly Func<ISession> _session;
    private readonly Dictionary<CKO, (Stopwatch Age, Dictionary<string, List<IObjectHandle>> ById)> _snapshots = new();

    public Pkcs11ObjectIndex(Func<ISession> session) => _session = session;

    /// <summary>Forgets every snapshot: the next lookup scans the token again.</summary>
    public void Reset() => _snapshots.Clear();

    /// <summary>The objects of <paramref name="cko"/> whose CKA_ID is <paramref name="id"/>, each checked against the token.</summary>
    public List<IObjectHandle> Find(CKO cko, byte[] id)
    {
        string key = Convert.ToHexString(id);
        for (int attempt = 0; attempt < 2; attempt++)
        {
            var byId = Snapshot(cko);
            if (!byId.TryGetValue(key, out var handles)) return new List<IObjectHandle>();
            if (handles.TrueForAll(h => StillIs(_session(), h, cko, id))) return handles;
            _snapshots.Remove(cko); // something changed since the scan: scan once more
        }
        return Pkcs11KeyStore.Find(_session(), (CKA.CKA_CLASS, cko), (CKA.CKA_ID, id));
    }

    private Dictionary<string, List<IObjectHandle>> Snapshot(CKO cko)
    {
        if (_snapshots.TryGetValue(cko, out var s) && s.Age.Elapsed < MaxAge) return s.ById;
        var session = _session();
        var byId = new Dictionary<string, List<IObjectHandle>>(StringComparer.Ordinal);
        foreach (var h in Pkcs11KeyStore.Find(session, (CKA.CKA_CLASS, cko)))
        {
            byte[]? id = Read(session, h, IdOnly)[CKA.CKA_ID]?.GetValueAsByteArray();
            if (id is null) continue;
            string k = Convert.ToHexString(id);
            if (!byId.TryGetValue(k, out var list)) byId[k] = list = new List<IObjectHandle>(1);
            list.Add(h);
        }
        _snapshots[cko] = (Stopwatch.StartNew(), byId);
        return byId;
    }

    /// <summary>Whether the handle still names an object of that class with that id (false once it is gone).</summary>
    public static bool StillIs(ISession session, IObjectHandle h, CKO cko, byte[] id)
    {
        try
        {
            var a = Read(session, h, ClassAndId);
            return a[CKA.CKA_CLASS] is { } c && c.GetValueAsUlong() == (ulong)cko
                && a[CKA.CKA_ID]?.GetValueAsByteArray() is { } got && got.AsSpan().SequenceEqual(id);
        }
        catch (Pkcs11Exception)
        {
            return false; // the handle is gone (CKR_OBJECT_HANDLE_INVALID)
        }
    }
}
