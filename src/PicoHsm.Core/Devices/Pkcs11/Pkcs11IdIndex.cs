using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// Every object the session sees, filed by its CKA_ID, from one pass: one C_FindObjects of all objects
/// and one read of class and id per object. Why: a restore must know what holds its target id, and a
/// search per key costs what the token's C_FindObjects costs; SoftHSM2 reads every object of the token
/// for each search whatever the template, so a restore of n keys searching per key costs n²
/// (102 ms per key at 1,000 keys, where the unwrap is 22). A batch of restores takes this index once
/// and keeps it current with its own changes (<see cref="Added"/>, <see cref="Removed"/>). What another program changes meanwhile it cannot see: a batch that writes
/// holds the token lock (other PicoHsm processes wait) and compares the index with a fresh pass at its
/// end (<see cref="Pkcs11RestoreBatch.Complete"/>). Callers hold the session's gate.
/// </summary>
internal sealed class Pkcs11IdIndex
{
    private static readonly List<CKA> ClassAndId = new() { CKA.CKA_CLASS, CKA.CKA_ID };

    private readonly Dictionary<string, List<(IObjectHandle Handle, CKO Class)>> _byId = new(StringComparer.Ordinal);

    private Pkcs11IdIndex() { }

    /// <summary>One pass over the session's objects (token and session objects, as a search by id finds them).</summary>
    public static Pkcs11IdIndex Take(ISession s, string modulePath)
    {
        var index = new Pkcs11IdIndex();
        using var fast = Pkcs11OneCallReader.TryCreate(modulePath, ClassAndId);
        foreach (var h in s.FindAllObjects(new List<IObjectAttribute>()))
        {
            byte[]? cls, id;
            if (fast?.TryRead(s.SessionId, h.ObjectId) is { } raw)
            {
                cls = raw[0];
                id = raw[1];
            }
            else
            {
                var values = s.GetAttributeValue(h, ClassAndId);
                cls = values[0].CannotBeRead ? null : values[0].GetValueAsByteArray();
                id = values[1].CannotBeRead ? null : values[1].GetValueAsByteArray();
            }
            index.Added(id ?? Array.Empty<byte>(), h, ClassOf(cls));
        }
        return index;
    }

    /// <summary>A CK_ULONG class as wide as the platform's, in its byte order; unreadable: vendor defined (refused as foreign).</summary>
    private static CKO ClassOf(byte[]? v) => v switch
    {
        { Length: 8 } => (CKO)BitConverter.ToUInt64(v, 0),
        { Length: 4 } => (CKO)BitConverter.ToUInt32(v, 0),
        _ => CKO.CKO_VENDOR_DEFINED,
    };

    /// <summary>The objects holding <paramref name="id"/> (any class), as a search by CKA_ID would find them.</summary>
    public IReadOnlyList<(IObjectHandle Handle, CKO Class)> At(byte[] id) =>
        _byId.TryGetValue(IdHex(id), out var list) ? list : Array.Empty<(IObjectHandle, CKO)>();

    public void Added(byte[] id, IObjectHandle handle, CKO cls)
    {
        string key = IdHex(id);
        if (!_byId.TryGetValue(key, out var list)) _byId[key] = list = new List<(IObjectHandle, CKO)>(1);
        list.Add((handle, cls));
    }

    public void Removed(byte[] id, IObjectHandle handle)
    {
        if (_byId.TryGetValue(IdHex(id), out var list)) list.RemoveAll(o => o.Handle.ObjectId == handle.ObjectId);
    }

    /// <summary>The handles at <paramref name="id"/> that <paramref name="other"/> does not have there.</summary>
    public List<(IObjectHandle Handle, CKO Class)> NotIn(Pkcs11IdIndex other, byte[] id)
    {
        var theirs = new HashSet<ulong>();
        foreach (var o in other.At(id)) theirs.Add(o.Handle.ObjectId);
        var extra = new List<(IObjectHandle, CKO)>();
        foreach (var o in At(id)) if (!theirs.Contains(o.Handle.ObjectId)) extra.Add(o);
        return extra;
    }
}
