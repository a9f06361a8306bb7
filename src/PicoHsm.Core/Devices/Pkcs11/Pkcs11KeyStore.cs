using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Keys;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>Finds keys on a token through PKCS#11 and describes them as <see cref="PicoKey"/>.</summary>
public static class Pkcs11KeyStore
{
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

    /// <summary>
    /// What a listing reads of every object, in one C_GetAttributeValue per object: the attributes of
    /// a private key, a secret key, a public key and a certificate together (attributes an object
    /// does not have come back unreadable). The indexes below name the positions.
    /// </summary>
    private static readonly List<CKA> ListAttrs = new()
    {
        CKA.CKA_CLASS, CKA.CKA_ID, CKA.CKA_LABEL, CKA.CKA_KEY_TYPE, CKA.CKA_EXTRACTABLE, CKA.CKA_SENSITIVE,
        CKA.CKA_NEVER_EXTRACTABLE, CKA.CKA_SIGN, CKA.CKA_DECRYPT, CKA.CKA_ENCRYPT, CKA.CKA_WRAP, CKA.CKA_UNWRAP,
        CKA.CKA_DERIVE, CKA.CKA_VALUE_LEN, CKA.CKA_MODULUS, CKA.CKA_PUBLIC_EXPONENT, CKA.CKA_EC_PARAMS, CKA.CKA_EC_POINT,
    };
    private const int IClass = 0, IId = 1, ILabel = 2, IKeyType = 3, IExtractable = 4, ISensitive = 5, INeverExtractable = 6,
        ISign = 7, IDecrypt = 8, IEncrypt = 9, IWrap = 10, IUnwrap = 11, IDerive = 12, IValueLen = 13, IModulus = 14,
        IExponent = 15, IEcParams = 16, IEcPoint = 17;

    /// <summary>One object's attribute values (raw bytes) by the positions of <see cref="ListAttrs"/>; unreadable ones are null.</summary>
    private readonly struct Attrs
    {
        private readonly byte[]?[] _values;
        public Attrs(byte[]?[] values) => _values = values;
        public byte[]? Bytes(int i) => _values[i];
        public string? String(int i) => _values[i] is { } v ? System.Text.Encoding.UTF8.GetString(v) : null;
        /// <summary>A CK_ULONG (class, key type, length): as wide as the platform's, in its byte order.</summary>
        public ulong? Ulong(int i) => _values[i] switch
        {
            { Length: 8 } v => BitConverter.ToUInt64(v),
            { Length: 4 } v => BitConverter.ToUInt32(v),
            _ => null,
        };
        /// <summary>Not readable, or not a CK_BBOOL: false.</summary>
        public bool Bool(int i) => _values[i] is { Length: 1 } v && v[0] != 0;
    }

    /// <summary>
    /// The listing's attributes of one object: in one C_GetAttributeValue where the platform allows
    /// it (<see cref="Pkcs11OneCallReader"/>), else through Pkcs11Interop (which asks twice: the
    /// lengths, then the values).
    /// </summary>
    private static Attrs ReadListAttrs(ISession s, IObjectHandle h, Pkcs11OneCallReader? fast = null)
    {
        if (fast?.TryRead(s.SessionId, h.ObjectId) is { } raw) return new Attrs(raw);
        var values = s.GetAttributeValue(h, ListAttrs);
        var bytes = new byte[]?[values.Count];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = values[i].CannotBeRead ? null : values[i].GetValueAsByteArray();
        return new Attrs(bytes);
    }

    /// <summary>
    /// What one pass over a token's objects found, classified from the listing's one read per object:
    /// public keys and certificates by id (to pair with private keys), the private and secret keys, and
    /// the ids the DKEK records name (data objects of <see cref="Pkcs11DkekBackend.ProofApplication"/>).
    /// </summary>
    private sealed class Catalogue
    {
        public readonly Dictionary<string, Attrs> Publics = new(StringComparer.Ordinal);
        public readonly HashSet<string> CertIds = new(StringComparer.Ordinal);
        public readonly List<(string Id, Attrs A)> Privates = new();
        public readonly List<(string Id, byte[] IdBytes, IObjectHandle H, Attrs A)> Secrets = new();
        public readonly List<(byte[] Id, IObjectHandle Record, byte[] Kcv, byte[] Proof)> DkekRecords = new();
        public readonly HashSet<ulong> Seen = new();

        /// <summary>When set, every key and certificate read is filed there too, for the exports that follow the listing.</summary>
        public Pkcs11ObjectCatalogue? Objects;

        /// <summary>Reads the object once (unless already read) and files it by its class.</summary>
        public void Add(ISession s, IObjectHandle h, Pkcs11OneCallReader? fast, bool keys = true)
        {
            if (!Seen.Add(h.ObjectId)) return;
            var a = ReadListAttrs(s, h, fast);
            if (a.Ulong(IClass) is not ulong cls) return;
            if (Objects is not null && a.Bytes(IId) is { } objectId) Objects.Add((CKO)cls, objectId, h);
            switch ((CKO)cls)
            {
                case CKO.CKO_PUBLIC_KEY:
                    Publics.TryAdd(IdHex(a.Bytes(IId)), a);
                    break;
                case CKO.CKO_CERTIFICATE:
                    CertIds.Add(IdHex(a.Bytes(IId)));
                    break;
                case CKO.CKO_PRIVATE_KEY when keys:
                    Privates.Add((IdHex(a.Bytes(IId)), a));
                    break;
                case CKO.CKO_SECRET_KEY when keys:
                    byte[] idBytes = a.Bytes(IId) ?? Array.Empty<byte>();
                    Secrets.Add((IdHex(idBytes), idBytes, h, a));
                    break;
                case CKO.CKO_DATA when keys:
                    // Only the DKEK's record is read further (its value names the DKEK's id); a data
                    // object of another application costs this one extra read of its application.
                    if (Read(s, h, ApplicationOnly)[CKA.CKA_APPLICATION]?.GetValueAsString() == Pkcs11DkekBackend.ProofApplication &&
                        Pkcs11DkekStore.TryParseRecord(Read(s, h, ValueOnly)[CKA.CKA_VALUE]?.GetValueAsByteArray(), out byte[] kcv, out byte[] dkekId, out byte[] proof))
                        DkekRecords.Add((dkekId, h, kcv, proof));
                    break;
            }
        }

        /// <summary>
        /// The DKEK's id as <see cref="Pkcs11DkekStore.FindDkek"/> chooses it, from what this pass read: a
        /// record whose AES secret key is there (an orphan record is ignored). With several such records
        /// the token must prove which is the DKEK: <paramref name="ambiguous"/> decides (a search and a wrap).
        /// With one such record, <paramref name="objects"/> are its objects as FindDkek gives them: found, not proven.
        /// </summary>
        public byte[]? Dkek(Func<byte[]?>? ambiguous, out DkekObjects? objects)
        {
            objects = null;
            byte[]? found = null;
            int candidates = 0;
            foreach (var r in DkekRecords)
            {
                foreach (var sk in Secrets)
                {
                    if (sk.A.Ulong(IKeyType) != (ulong)CKK.CKK_AES || !sk.IdBytes.AsSpan().SequenceEqual(r.Id)) continue;
                    candidates++;
                    if (found is null)
                    {
                        found = r.Id;
                        objects = new DkekObjects(sk.H, r.Id, sk.A.String(ILabel), r.Record, r.Kcv, r.Proof);
                    }
                    break;
                }
            }
            if (candidates <= 1) return found;
            objects = null;
            return ambiguous is not null ? ambiguous() : found;
        }
    }

    private static readonly List<CKA> ApplicationOnly = new() { CKA.CKA_APPLICATION };
    private static readonly List<CKA> ValueOnly = new() { CKA.CKA_VALUE };

    /// <summary>
    /// All private and secret keys, excluding the module's own DKEK object (it is listed by Get-PicoDkek).
    /// One C_FindObjects of every token object and one C_GetAttributeValue per object (keys, their public
    /// halves and certificates alike); each private key is paired with its public key and certificate by
    /// id from that one pass, not by a search, and the DKEK is recognised from the same pass (its record's
    /// data object names its id), not by searches of its own. <paramref name="ambiguousDkek"/> is asked
    /// only when several records name an AES key on the token. Sorted by id, then class (duplicate ids
    /// keep the token's order).
    /// </summary>
    public static List<PicoKey> List(DeviceContext session, ISession s, Func<byte[]?>? ambiguousDkek = null) =>
        List(session, s, ambiguousDkek, null, out _);

    /// <summary>
    /// As <see cref="List(DeviceContext, ISession, Func{byte[]?}?)"/>, and what the same pass saw for the
    /// exports that follow: every key and certificate filed in <paramref name="objects"/>, and the DKEK's
    /// objects (<paramref name="dkek"/>, found, not proven; null unless exactly one record names a key).
    /// </summary>
    internal static List<PicoKey> List(DeviceContext session, ISession s, Func<byte[]?>? ambiguousDkek, Pkcs11ObjectCatalogue? objects, out DkekObjects? dkek)
    {
        lock (session.Gate)
        {
            try
            {
                var c = new Catalogue { Objects = objects };
                using var fast = Pkcs11OneCallReader.TryCreate(session.Token.ModulePath, ListAttrs);
                // Token objects only: session objects (a backup run's MAC key, a restore test's
                // temporary key, made by this or another session of the process) are never keys to list.
                foreach (var h in s.FindAllObjects(new List<IObjectAttribute> { Attr(CKA.CKA_TOKEN, true) }))
                    c.Add(s, h, fast);
                byte[]? dkekId = c.Dkek(ambiguousDkek, out dkek);
                return DescribeAll(session, s, c, dkekId is null ? null : id => dkekId.AsSpan().SequenceEqual(id));
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, "list the token's keys", session);
            }
        }
    }

    /// <summary>
    /// The keys whose CKA_LABEL is exactly <paramref name="label"/>: one C_FindObjects with the label
    /// (the token compares it, byte for byte), one C_GetAttributeValue per object found, and for each
    /// key one C_FindObjects of its id (its public key and certificate, whatever their labels), then
    /// described as <see cref="List"/> does. The work grows with the number of keys of that label, not
    /// with the token's objects, apart from the token's own scans. <paramref name="isDkek"/> is asked
    /// only of secret keys found.
    /// </summary>
    public static List<PicoKey> ListByLabel(DeviceContext session, ISession s, string label, Func<byte[], bool>? isDkek = null)
    {
        lock (session.Gate)
        {
            try
            {
                var c = new Catalogue();
                using var fast = Pkcs11OneCallReader.TryCreate(session.Token.ModulePath, ListAttrs);
                foreach (var h in s.FindAllObjects(new List<IObjectAttribute> { Attr(CKA.CKA_TOKEN, true), Attr(CKA.CKA_LABEL, label) }))
                    c.Add(s, h, fast);
                var ids = new HashSet<string>(StringComparer.Ordinal);
                var keyIds = new List<byte[]>();
                foreach (var (id, a) in c.Privates) if (ids.Add(id)) keyIds.Add(a.Bytes(IId) ?? Array.Empty<byte>());
                foreach (var sk in c.Secrets) if (ids.Add(sk.Id)) keyIds.Add(sk.IdBytes);
                // The key's companions under any label: one search of its id finds its public key and certificate both.
                foreach (var id in keyIds)
                    foreach (var h in s.FindAllObjects(new List<IObjectAttribute> { Attr(CKA.CKA_TOKEN, true), Attr(CKA.CKA_ID, id) }))
                        c.Add(s, h, fast, keys: false);
                return DescribeAll(session, s, c, isDkek);
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, "find the token's keys by label", session);
            }
        }
    }

    /// <summary>The one describe loop of both listings: each private key with its public key and certificate, each secret key but the DKEK.</summary>
    private static List<PicoKey> DescribeAll(DeviceContext session, ISession s, Catalogue c, Func<byte[], bool>? isDkek)
    {
        var keys = new List<PicoKey>(c.Privates.Count + c.Secrets.Count);
        foreach (var (id, a) in c.Privates)
            keys.Add(DescribePrivate(session, id, a, c.Publics.TryGetValue(id, out var pub) ? pub : null, c.CertIds.Contains(id)));
        SecretKeyRuler? ruler = null;
        try
        {
            foreach (var (id, idBytes, h, a) in c.Secrets)
            {
                if (isDkek?.Invoke(idBytes) == true) continue;
                var k = DescribeSecret(session, id, a, c.CertIds.Contains(id));
                if (NeedsMeasuring(k)) k = WithMeasuredSize(k, h, ruler ??= new SecretKeyRuler(s));
                keys.Add(k);
            }
        }
        finally { ruler?.Dispose(); }
        return SortById(keys);
    }

    /// <summary>By id, then class (PrivateKey before SecretKey); stable, so duplicate ids keep the token's order.</summary>
    private static List<PicoKey> SortById(List<PicoKey> keys)
    {
        var order = new int[keys.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        Array.Sort(order, (x, y) =>
        {
            int c = string.CompareOrdinal(keys[x].Id, keys[y].Id);
            if (c == 0) c = string.CompareOrdinal(keys[x].Class, keys[y].Class);
            return c != 0 ? c : x.CompareTo(y);
        });
        var sorted = new List<PicoKey>(keys.Count);
        foreach (int i in order) sorted.Add(keys[i]);
        return sorted;
    }

    /// <summary>
    /// One key described from its handle (a key just restored or generated): its attributes in one
    /// C_GetAttributeValue, its public key and certificate found by its id. The work does not grow
    /// with the number of keys on the token, unlike a listing.
    /// </summary>
    public static PicoKey Describe(DeviceContext session, ISession s, IObjectHandle key, bool secret) =>
        Describe(session, s, key, secret, publicKey: null, hasCertificate: null);

    /// <summary>
    /// As above, for a key whose objects the caller just made: <paramref name="publicKey"/> (when not
    /// null) is its public key and <paramref name="hasCertificate"/> (when not null) says whether it
    /// has a certificate, so neither is searched for. <paramref name="knownSizeBits"/> (when over 0)
    /// is the size of a secret key the token reports as 0 (SoftHSM2 after C_UnwrapKey), so it is not
    /// measured with a throwaway key and a wrap.
    /// </summary>
    public static PicoKey Describe(DeviceContext session, ISession s, IObjectHandle key, bool secret, IObjectHandle? publicKey, bool? hasCertificate, int knownSizeBits = 0)
    {
        lock (session.Gate)
        {
            try
            {
                using var fast = Pkcs11OneCallReader.TryCreate(session.Token.ModulePath, ListAttrs);
                var a = ReadListAttrs(s, key, fast);
                byte[] idBytes = a.Bytes(IId) ?? Array.Empty<byte>();
                string id = IdHex(idBytes);
                bool hasCert = hasCertificate ?? Find(s, (CKA.CKA_CLASS, CKO.CKO_CERTIFICATE), (CKA.CKA_ID, idBytes)).Count > 0;
                if (secret)
                {
                    var k = DescribeSecret(session, id, a, hasCert);
                    if (!NeedsMeasuring(k)) return k;
                    if (knownSizeBits > 0) return k with { Size = knownSizeBits };
                    using var ruler = new SecretKeyRuler(s);
                    return WithMeasuredSize(k, key, ruler);
                }
                var pubs = publicKey is not null ? new List<IObjectHandle> { publicKey } : Find(s, (CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY), (CKA.CKA_ID, idBytes));
                Attrs? pub = pubs.Count > 0 ? ReadListAttrs(s, pubs[0], fast) : null;
                return DescribePrivate(session, id, a, pub, hasCert);
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, "describe the key", session);
            }
        }
    }

    private static PicoKey DescribePrivate(DeviceContext session, string id, Attrs a, Attrs? pub, bool hasCert)
    {
        var ckk = a.Ulong(IKeyType) is ulong kt ? (CKK)kt : CKK.CKK_VENDOR_DEFINED;
        KeyKind kind = ckk switch { CKK.CKK_RSA => KeyKind.Rsa, CKK.CKK_EC => KeyKind.Ec, _ => KeyKind.Unknown };
        int size = 0;
        string? curve = null;
        byte[]? spki = null;
        if (kind == KeyKind.Rsa)
        {
            byte[]? mod = pub?.Bytes(IModulus) ?? a.Bytes(IModulus);
            byte[]? exp = pub?.Bytes(IExponent) ?? a.Bytes(IExponent);
            if (mod is { Length: > 0 })
            {
                size = BitLength(mod);
                if (exp is { Length: > 0 }) spki = PublicKeyInfo.FromRsa(mod, exp);
            }
        }
        else if (kind == KeyKind.Ec)
        {
            byte[]? prm = a.Bytes(IEcParams) ?? pub?.Bytes(IEcParams);
            var c = EcCurves.FromEcParams(prm);
            curve = c?.Name;
            size = c?.Bits ?? 0;
            byte[]? point = pub?.Bytes(IEcPoint);
            if (prm is not null && point is { Length: > 0 }) spki = PublicKeyInfo.FromEc(prm, point);
        }
        // A private key has no CKA_ENCRYPT or CKA_WRAP: those usages are its public half's.
        return NewKey(session, id, a, hasCert, "PrivateKey", kind, size, canEncryptAndWrap: false,
            curve, hasPublicKey: pub is not null, spki);
    }

    private static PicoKey DescribeSecret(DeviceContext session, string id, Attrs a, bool hasCert)
    {
        var ckk = a.Ulong(IKeyType) is ulong kt ? (CKK)kt : CKK.CKK_VENDOR_DEFINED;
        KeyKind kind = ckk switch { CKK.CKK_AES => KeyKind.Aes, CKK.CKK_GENERIC_SECRET => KeyKind.GenericSecret, _ => KeyKind.Unknown };
        int size = a.Ulong(IValueLen) is ulong vl ? (int)vl * 8 : 0;
        return NewKey(session, id, a, hasCert, "SecretKey", kind, size, canEncryptAndWrap: true, curve: null, hasPublicKey: false, spki: null);
    }

    /// <summary>What private and secret keys share: identity, protection, usage, token, exportability.</summary>
    private static PicoKey NewKey(DeviceContext session, string id, Attrs a, bool hasCert, string cls, KeyKind kind, int size,
        bool canEncryptAndWrap, string? curve, bool hasPublicKey, byte[]? spki)
    {
        bool extractable = a.Bool(IExtractable);
        return new PicoKey
        {
            Id = id,
            Label = a.String(ILabel),
            Class = cls,
            KeyType = kind,
            Size = size,
            Curve = curve,
            Extractable = extractable,
            Sensitive = a.Bool(ISensitive),
            NeverExtractable = a.Bool(INeverExtractable),
            CanSign = a.Bool(ISign),
            CanDecrypt = a.Bool(IDecrypt),
            CanEncrypt = canEncryptAndWrap && a.Bool(IEncrypt),
            CanWrap = canEncryptAndWrap && a.Bool(IWrap),
            CanUnwrap = a.Bool(IUnwrap),
            CanDerive = a.Bool(IDerive),
            HasPublicKey = hasPublicKey,
            HasCertificate = hasCert,
            PublicKeyInfo = spki,
            PublicKeyFingerprint = spki is null ? null : Keys.PublicKeyInfo.Fingerprint(spki),
            TokenLabel = session.TokenLabel,
            TokenSerial = session.SerialNumber,
            SessionId = session.SessionId,
            Exportable = extractable,
            ExportBlockedReason = extractable ? null : "CKA_EXTRACTABLE is false",
        };
    }

    private static bool NeedsMeasuring(PicoKey k) => k.Size == 0 && k.KeyType == KeyKind.Aes && k.Extractable;

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
