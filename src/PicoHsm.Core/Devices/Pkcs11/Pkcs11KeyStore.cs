using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Keys;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>Finds keys on a token through PKCS#11 and describes them as <see cref="PicoKey"/>.</summary>
public static class Pkcs11KeyStore
{
    private static readonly List<CKA> PrivateAttrs = new()
    {
        CKA.CKA_ID, CKA.CKA_LABEL, CKA.CKA_KEY_TYPE, CKA.CKA_EXTRACTABLE, CKA.CKA_SENSITIVE, CKA.CKA_NEVER_EXTRACTABLE,
        CKA.CKA_SIGN, CKA.CKA_DECRYPT, CKA.CKA_UNWRAP, CKA.CKA_DERIVE, CKA.CKA_MODULUS, CKA.CKA_PUBLIC_EXPONENT, CKA.CKA_EC_PARAMS,
    };
    private static readonly List<CKA> SecretAttrs = new()
    {
        CKA.CKA_ID, CKA.CKA_LABEL, CKA.CKA_KEY_TYPE, CKA.CKA_EXTRACTABLE, CKA.CKA_SENSITIVE, CKA.CKA_NEVER_EXTRACTABLE,
        CKA.CKA_SIGN, CKA.CKA_DECRYPT, CKA.CKA_ENCRYPT, CKA.CKA_WRAP, CKA.CKA_UNWRAP, CKA.CKA_DERIVE, CKA.CKA_VALUE_LEN,
    };
    private static readonly List<CKA> PublicAttrs = new()
    {
        CKA.CKA_ID, CKA.CKA_KEY_TYPE, CKA.CKA_MODULUS, CKA.CKA_PUBLIC_EXPONENT, CKA.CKA_EC_PARAMS, CKA.CKA_EC_POINT,
    };

    public static IObjectAttribute Attr(CKA type, object value) => value switch
    {
        bool b => Pkcs11Connection.Factories.ObjectAttributeFactory.Create(type, b),
        byte[] bytes => Pkcs11Connection.Factories.ObjectAttributeFactory.Create(type, bytes),
        string s => Pkcs11Connection.Factories.ObjectAttributeFactory.Create(type, s),
        CKO o => Pkcs11Connection.Factories.ObjectAttributeFactory.Create(type, o),
        CKK k => Pkcs11Connection.Factories.ObjectAttributeFactory.Create(type, k),
        CKC c => Pkcs11Connection.Factories.ObjectAttributeFactory.Create(type, c),
        ulong u => Pkcs11Connection.Factories.ObjectAttributeFactory.Create(type, u),
        int i => Pkcs11Connection.Factories.ObjectAttributeFactory.Create(type, (ulong)i),
        _ => throw new ArgumentException($"Unsupported attribute value type {value.GetType()}"),
    };

    public static List<IObjectHandle> Find(ISession s, params (CKA, object)[] template)
    {
        var attributes = new List<IObjectAttribute>(template.Length);
        foreach (var (type, value) in template) attributes.Add(Attr(type, value));
        return s.FindAllObjects(attributes);
    }

    /// <summary>Reads attributes; ones the token will not reveal come back as null.</summary>
    public static Dictionary<CKA, IObjectAttribute?> Read(ISession s, IObjectHandle h, List<CKA> types)
    {
        var values = s.GetAttributeValue(h, types);
        var d = new Dictionary<CKA, IObjectAttribute?>();
        for (int i = 0; i < types.Count; i++)
            d[types[i]] = values[i].CannotBeRead ? null : values[i];
        return d;
    }

    public static string IdHex(byte[]? id) => id is null ? "" : Convert.ToHexString(id).ToLowerInvariant();

    private static readonly List<CKA> IdOnly = new() { CKA.CKA_ID };

    /// <summary>
    /// All private and secret keys, excluding the module's own DKEK object (it is listed by Get-PicoDkek).
    /// One C_GetAttributeValue per object; the public keys and certificates are indexed by id
    /// once per listing, so each key is paired with them by a lookup, not a search.
    /// </summary>
    public static List<PicoKey> List(DeviceContext session, ISession s, Func<byte[], string?, bool>? isInfrastructure = null)
    {
        lock (session.Gate)
        {
            try
            {
                var publics = new Dictionary<string, Dictionary<CKA, IObjectAttribute?>>(StringComparer.Ordinal);
                foreach (var h in Find(s, (CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY)))
                {
                    var a = Read(s, h, PublicAttrs);
                    publics.TryAdd(IdHex(a[CKA.CKA_ID]?.GetValueAsByteArray()), a);
                }
                var certIds = new HashSet<string>(StringComparer.Ordinal);
                foreach (var h in Find(s, (CKA.CKA_CLASS, CKO.CKO_CERTIFICATE)))
                    certIds.Add(IdHex(Read(s, h, IdOnly)[CKA.CKA_ID]?.GetValueAsByteArray()));

                var keys = new List<PicoKey>();
                foreach (var h in Find(s, (CKA.CKA_CLASS, CKO.CKO_PRIVATE_KEY)))
                {
                    var a = Read(s, h, PrivateAttrs);
                    string id = IdHex(a[CKA.CKA_ID]?.GetValueAsByteArray());
                    publics.TryGetValue(id, out var pub);
                    keys.Add(DescribePrivate(session, id, a, pub, certIds.Contains(id)));
                }
                using var ruler = new SecretKeyRuler(s);
                foreach (var h in Find(s, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY)))
                {
                    var a = Read(s, h, SecretAttrs);
                    byte[] idBytes = a[CKA.CKA_ID]?.GetValueAsByteArray() ?? Array.Empty<byte>();
                    string? label = a[CKA.CKA_LABEL]?.GetValueAsString();
                    if (isInfrastructure?.Invoke(idBytes, label) == true) continue;
                    string id = IdHex(idBytes);
                    keys.Add(WithMeasuredSize(DescribeSecret(session, id, a, certIds.Contains(id)), h, ruler));
                }
                // Stable (duplicate ids keep the token's order), once per listing.
                return keys.OrderBy(k => k.Id, StringComparer.Ordinal).ThenBy(k => k.Class).ToList();
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, "list the token's keys", session);
            }
        }
    }

    /// <summary>
    /// One key described from its handle (a key just restored or generated): its attributes in one
    /// C_GetAttributeValue, its public key and certificate found by its id. The work does not grow
    /// with the number of keys on the token, unlike a listing.
    /// </summary>
    public static PicoKey Describe(DeviceContext session, ISession s, IObjectHandle key, bool secret)
    {
        lock (session.Gate)
        {
            try
            {
                var a = Read(s, key, secret ? SecretAttrs : PrivateAttrs);
                byte[] idBytes = a[CKA.CKA_ID]?.GetValueAsByteArray() ?? Array.Empty<byte>();
                string id = IdHex(idBytes);
                bool hasCert = Find(s, (CKA.CKA_CLASS, CKO.CKO_CERTIFICATE), (CKA.CKA_ID, idBytes)).Count > 0;
                if (secret)
                {
                    using var ruler = new SecretKeyRuler(s);
                    return WithMeasuredSize(DescribeSecret(session, id, a, hasCert), key, ruler);
                }
                var pubs = Find(s, (CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY), (CKA.CKA_ID, idBytes));
                var pub = pubs.Count > 0 ? Read(s, pubs[0], PublicAttrs) : null;
                return DescribePrivate(session, id, a, pub, hasCert);
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, "describe the key", session);
            }
        }
    }

    private static bool Bool(Dictionary<CKA, IObjectAttribute?> a, CKA t)
    {
        // Attributes not asked for (CKA_ENCRYPT of a private key) or not readable read as false.
        if (!a.TryGetValue(t, out var v) || v is null) return false;
        try { return v.GetValueAsBool(); } catch { return false; }
    }

    private static PicoKey DescribePrivate(DeviceContext session, string id, Dictionary<CKA, IObjectAttribute?> a,
        Dictionary<CKA, IObjectAttribute?>? pub, bool hasCert)
    {
        var ckk = a[CKA.CKA_KEY_TYPE] is { } kt ? (CKK)kt.GetValueAsUlong() : CKK.CKK_VENDOR_DEFINED;
        KeyKind kind = ckk switch { CKK.CKK_RSA => KeyKind.Rsa, CKK.CKK_EC => KeyKind.Ec, _ => KeyKind.Unknown };
        int size = 0;
        string? curve = null;
        byte[]? spki = null;
        if (kind == KeyKind.Rsa)
        {
            byte[]? mod = pub?[CKA.CKA_MODULUS]?.GetValueAsByteArray() ?? a[CKA.CKA_MODULUS]?.GetValueAsByteArray();
            byte[]? exp = pub?[CKA.CKA_PUBLIC_EXPONENT]?.GetValueAsByteArray() ?? a[CKA.CKA_PUBLIC_EXPONENT]?.GetValueAsByteArray();
            if (mod is { Length: > 0 })
            {
                size = BitLength(mod);
                if (exp is { Length: > 0 }) spki = PublicKeyInfo.FromRsa(mod, exp);
            }
        }
        else if (kind == KeyKind.Ec)
        {
            byte[]? prm = a[CKA.CKA_EC_PARAMS]?.GetValueAsByteArray() ?? pub?[CKA.CKA_EC_PARAMS]?.GetValueAsByteArray();
            var c = EcCurves.FromEcParams(prm);
            curve = c?.Name;
            size = c?.Bits ?? 0;
            byte[]? point = pub?[CKA.CKA_EC_POINT]?.GetValueAsByteArray();
            if (prm is not null && point is { Length: > 0 }) spki = PublicKeyInfo.FromEc(prm, point);
        }
        return Common(session, id, a, hasCert) with
        {
            Class = "PrivateKey",
            KeyType = kind,
            Size = size,
            Curve = curve,
            HasPublicKey = pub is not null,
            PublicKeyInfo = spki,
            PublicKeyFingerprint = spki is null ? null : Keys.PublicKeyInfo.Fingerprint(spki),
        };
    }

    /// <summary>What private and secret keys share: identity, protection, usage, token, exportability.</summary>
    private static PicoKey Common(DeviceContext session, string id, Dictionary<CKA, IObjectAttribute?> a, bool hasCert)
    {
        bool extractable = Bool(a, CKA.CKA_EXTRACTABLE);
        return new PicoKey
        {
            Id = id,
            Label = a[CKA.CKA_LABEL]?.GetValueAsString(),
            Class = "",
            Extractable = extractable,
            Sensitive = Bool(a, CKA.CKA_SENSITIVE),
            NeverExtractable = Bool(a, CKA.CKA_NEVER_EXTRACTABLE),
            CanSign = Bool(a, CKA.CKA_SIGN),
            CanDecrypt = Bool(a, CKA.CKA_DECRYPT),
            CanEncrypt = Bool(a, CKA.CKA_ENCRYPT),
            CanWrap = Bool(a, CKA.CKA_WRAP),
            CanUnwrap = Bool(a, CKA.CKA_UNWRAP),
            CanDerive = Bool(a, CKA.CKA_DERIVE),
            HasCertificate = hasCert,
            TokenLabel = session.TokenLabel,
            TokenSerial = session.SerialNumber,
            SessionId = session.SessionId,
            Exportable = extractable,
            ExportBlockedReason = extractable ? null : "CKA_EXTRACTABLE is false",
        };
    }

    private static PicoKey DescribeSecret(DeviceContext session, string id, Dictionary<CKA, IObjectAttribute?> a, bool hasCert)
    {
        var ckk = a[CKA.CKA_KEY_TYPE] is { } kt ? (CKK)kt.GetValueAsUlong() : CKK.CKK_VENDOR_DEFINED;
        KeyKind kind = ckk switch { CKK.CKK_AES => KeyKind.Aes, CKK.CKK_GENERIC_SECRET => KeyKind.GenericSecret, _ => KeyKind.Unknown };
        int size = a[CKA.CKA_VALUE_LEN] is { } vl ? (int)vl.GetValueAsUlong() * 8 : 0;
        return Common(session, id, a, hasCert) with { Class = "SecretKey", KeyType = kind, Size = size };
    }

    /// <summary>An AES key the token reports as CKA_VALUE_LEN 0 (SoftHSM2 after C_UnwrapKey), measured when it can be.</summary>
    private static PicoKey WithMeasuredSize(PicoKey k, IObjectHandle h, SecretKeyRuler ruler) =>
        k.Size == 0 && k.KeyType == KeyKind.Aes && k.Extractable && ruler.MeasureAesBits(h) is int bits ? k with { Size = bits } : k;

    /// <summary>
    /// Measures AES keys whose token does not report their length: wraps the key with RFC 3394 AES key
    /// wrap (CKM_AES_KEY_WRAP, no padding) under a throwaway session key made once per listing, and
    /// reads the length from the output (key length + 8 bytes, exactly). Only extractable keys can be
    /// measured; the wrapped bytes are discarded, and the throwaway key destroyed, at once.
    /// </summary>
    private sealed class SecretKeyRuler : IDisposable
    {
        private readonly ISession _s;
        private IObjectHandle? _kek;
        private bool _failed;

        public SecretKeyRuler(ISession s) => _s = s;

        public int? MeasureAesBits(IObjectHandle key)
        {
            if (_failed) return null;
            try
            {
                _kek ??= _s.GenerateKey(Pkcs11Connection.Factories.MechanismFactory.Create(CKM.CKM_AES_KEY_GEN), new List<IObjectAttribute>
                {
                    Attr(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), Attr(CKA.CKA_KEY_TYPE, CKK.CKK_AES), Attr(CKA.CKA_TOKEN, false),
                    Attr(CKA.CKA_VALUE_LEN, 32UL), Attr(CKA.CKA_WRAP, true), Attr(CKA.CKA_LABEL, "PicoHsm key length probe"),
                });
                byte[] wrapped = _s.WrapKey(Pkcs11Connection.Factories.MechanismFactory.Create(CKM.CKM_AES_KEY_WRAP), _kek, key);
                int bytes = wrapped.Length - 8;
                Array.Clear(wrapped);
                return bytes is 16 or 24 or 32 ? bytes * 8 : null;
            }
            catch (Pkcs11Exception)
            {
                _failed = _kek is null;
                return null;
            }
        }

        public void Dispose()
        {
            if (_kek is null) return;
            try { _s.DestroyObject(_kek); } catch (Pkcs11Exception) { }
        }
    }

    internal static int BitLength(byte[] bigEndian)
    {
        int i = 0;
        while (i < bigEndian.Length && bigEndian[i] == 0) i++;
        if (i == bigEndian.Length) return 0;
        return (bigEndian.Length - i - 1) * 8 + (32 - System.Numerics.BitOperations.LeadingZeroCount((uint)bigEndian[i]));
    }
}
