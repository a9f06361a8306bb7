using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// The token's keys and certificates by class and id, for an export's lookups: a find per exported
/// key would make a backup of n keys cost n² attribute matches on tokens that scan every object per
/// find (SoftHSM2). Filled by the listing's own pass over the token (<see cref="Pkcs11KeyStore.List"/>),
/// or by a pass of its own (<see cref="Scan"/>: one C_FindObjects and one class-and-id read per
/// object). Key hits are checked against the token at use; a certificate miss is trusted for the
/// catalogue's life (<see cref="Pkcs11KeyWrapper"/> decides how long).
/// </summary>
internal sealed class Pkcs11ObjectCatalogue
{
    private const int KClass = 0, KId = 1; // the order of Pkcs11HandleCheck.ClassAndId

    public readonly System.Diagnostics.Stopwatch Age = System.Diagnostics.Stopwatch.StartNew();
    private readonly Dictionary<string, List<IObjectHandle>> _private = new(StringComparer.Ordinal), _secret = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IObjectHandle> _certs = new(StringComparer.Ordinal);

    public static Pkcs11ObjectCatalogue Scan(ISession s, Func<IObjectHandle, byte[]?[]> classAndId)
    {
        var c = new Pkcs11ObjectCatalogue();
        foreach (var h in s.FindAllObjects(new List<IObjectAttribute> { Attr(CKA.CKA_TOKEN, true) }))
        {
            byte[]?[] v;
            try { v = classAndId(h); }
            catch (Pkcs11Exception) { continue; } // gone since the find
            if (v[KId] is not { } id || Pkcs11HandleCheck.UlongOf(v[KClass]) is not ulong cls) continue;
            c.Add((CKO)cls, id, h);
        }
        return c;
    }

    /// <summary>Files one token object (other classes are ignored); the first certificate of an id wins.</summary>
    public void Add(CKO cls, byte[] id, IObjectHandle h)
    {
        switch (cls)
        {
            case CKO.CKO_PRIVATE_KEY: Add(_private, Convert.ToHexString(id), h); break;
            case CKO.CKO_SECRET_KEY: Add(_secret, Convert.ToHexString(id), h); break;
            case CKO.CKO_CERTIFICATE: _certs.TryAdd(Convert.ToHexString(id), h); break;
        }
    }

    private static void Add(Dictionary<string, List<IObjectHandle>> d, string k, IObjectHandle h)
    {
        if (!d.TryGetValue(k, out var list)) d[k] = list = new List<IObjectHandle>(1);
        list.Add(h);
    }

    public List<IObjectHandle>? Keys(CKO cko, byte[] id) =>
        (cko == CKO.CKO_SECRET_KEY ? _secret : _private).TryGetValue(Convert.ToHexString(id), out var l) ? l : null;

    public IObjectHandle? Certificate(byte[] id) => _certs.TryGetValue(Convert.ToHexString(id), out var h) ? h : null;
}
