using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// Export: wraps one key with C_WrapKey under the token's verified DKEK and describes it as a
/// <see cref="WrappedKeyFile"/> (usage attributes, curve, public key, certificate), authenticated by
/// the token under the run's MAC key (<see cref="Pkcs11BackupMac"/>; a listing starts a new run).
/// </summary>
internal sealed class Pkcs11KeyWrapper : IDisposable
{
    private static readonly List<CKA> CertificateAttrs = new() { CKA.CKA_CLASS, CKA.CKA_ID, CKA.CKA_VALUE, CKA.CKA_LABEL };

    /// <summary>
    /// What an export reads of a key, in one C_GetAttributeValue: its class and id (the check that the
    /// catalogue's handle still is this key), the usage attributes a backup records, and its curve.
    /// </summary>
    private static readonly List<CKA> KeyAttrs = BuildKeyAttrs();
    private const int KClass = 0, KId = 1, KUsage = 2;
    private static readonly int KEcParams = 2 + Pkcs11RestoreTemplates.UsageAttributes.Length;

    private static List<CKA> BuildKeyAttrs()
    {
        var t = new List<CKA>(3 + Pkcs11RestoreTemplates.UsageAttributes.Length) { CKA.CKA_CLASS, CKA.CKA_ID };
        foreach (var (cka, _) in Pkcs11RestoreTemplates.UsageAttributes) t.Add(cka);
        t.Add(CKA.CKA_EC_PARAMS);
        return t;
    }

    /// <summary>Room for the largest wrapped key: a PKCS#8 RSA-16384 private key is under 10 KiB, AES-KWP adds at most 15 bytes.</summary>
    private const int MaxWrapped = 16 * 1024;

    private readonly DeviceContext _context;
    private readonly Pkcs11Connection _p11;
    private readonly Pkcs11Mechanisms _mechanisms;
    private readonly Pkcs11DkekStore _dkek;
    private readonly Pkcs11BackupMac _mac;
    private readonly Pkcs11HandleCheck _handles;
    private Pkcs11ObjectCatalogue? _catalogue;
    private Pkcs11OneCallReader? _keyReader;
    private bool _readerMade, _disposed;
    private byte[]? _wrapBuffer;

    public Pkcs11KeyWrapper(DeviceContext context, Pkcs11Connection connection, Pkcs11Mechanisms mechanisms, Pkcs11DkekStore dkek, Pkcs11BackupMac mac, Pkcs11HandleCheck handles)
    {
        _mac = mac;
        _handles = handles;
        _context = context;
        _p11 = connection;
        _mechanisms = mechanisms;
        _dkek = dkek;
    }

    /// <summary>Forgets what the wrapper knows of the token's objects (call after a listing or a change).</summary>
    public void Reset()
    {
        _catalogue = null;
        _dkek.Forget();
        _mac.Reset();
    }

    private ISession S => _p11.Session;

    private void MakeReader()
    {
        if (_readerMade || _disposed) return;
        _readerMade = true;
        // Kept for the backend's life (small native buffers), released by its Dispose.
        _keyReader = Pkcs11OneCallReader.TryCreate(_context.Token.ModulePath, KeyAttrs);
    }

    /// <summary>Whether the key reader's native buffers are released (for tests).</summary>
    internal bool Released => _disposed;

    public void Dispose()
    {
        _disposed = true;
        _keyReader?.Dispose();
        _keyReader = null;
    }

    /// <summary>Values of <paramref name="types"/> in one call where the platform allows it, else through Pkcs11Interop; unreadable ones null.</summary>
    private byte[]?[] ReadRaw(IObjectHandle h, Pkcs11OneCallReader? fast, List<CKA> types)
    {
        if (fast?.TryRead(S.SessionId, h.ObjectId) is { } raw) return raw;
        var values = S.GetAttributeValue(h, types);
        var bytes = new byte[]?[values.Count];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = values[i].CannotBeRead ? null : values[i].GetValueAsByteArray();
        return bytes;
    }

    // KeyAttrs starts with class and id, in the order of Pkcs11HandleCheck.ClassAndId.
    private static bool IsClassAndId(byte[]?[] v, CKO cko, byte[] id) => Pkcs11HandleCheck.Is(v, cko, id);

    public WrappedKeyFile Wrap(PicoKey key)
    {
        lock (_context.Gate)
        {
            try
            {
                // Proven once, then only checked by its handle (see Pkcs11DkekStore.RequireVerified).
                var dkek = _dkek.RequireVerified();
                if (!key.Extractable)
                    throw new PicoHsmException(PicoErrorKind.PermissionDenied, "KeyNotExtractable",
                        $"Key {key.Id} '{key.Label}' is not extractable (CKA_EXTRACTABLE is false), so the token will not wrap it. It cannot be backed up; it was created that way.", key);
                byte[] idBytes = Convert.FromHexString(key.Id);
                var (handle, a) = FindKey(idBytes, key.Id, key.Class);
                var mech = _mechanisms.ChooseWrapMechanism(key.Class);
                byte[] wrapped = WrapKey(mech, dkek.Key, handle);
                int sizeBits = key.Size;
                // SoftHSM2 leaves CKA_VALUE_LEN at 0 on secret keys it unwrapped (and refuses it in
                // the unwrap template); AES key wrap adds exactly 8 bytes to a 16/24/32-byte key.
                if (sizeBits == 0 && key.KeyType == KeyKind.Aes && mech is CKM.CKM_AES_KEY_WRAP_PAD or CKM.CKM_AES_KEY_WRAP)
                    sizeBits = (wrapped.Length - 8) * 8;

                var usage = Pkcs11RestoreTemplates.UsageAttributes;
                var attrs = new Dictionary<string, bool>(usage.Length);
                for (int i = 0; i < usage.Length; i++)
                    if (a[KUsage + i] is { Length: > 0 } v) attrs[usage[i].Name] = v[0] != 0;
                byte[]? ecParams = key.KeyType == KeyKind.Ec ? a[KEcParams] : null;

                var (cert, certLabel) = FindCertificate(idBytes);
                var t = _context.Token;
                var file = new WrappedKeyFile
                {
                    Created = DateTimeOffset.UtcNow,
                    ToolVersion = ProductInfo.ToolVersion,
                    SourceToken = new TokenInfo(t.Manufacturer ?? "", t.Model ?? "", t.SerialNumber ?? "", t.FirmwareVersion ?? ""),
                    KeyClass = key.Class == "SecretKey" ? KeyClass.Secret : KeyClass.Private,
                    KeyKind = key.KeyType,
                    SizeBits = sizeBits,
                    CurveName = key.KeyType == KeyKind.Ec ? key.Curve : null,
                    CurveParameters = key.KeyType == KeyKind.Ec ? ecParams : null,
                    Id = idBytes,
                    Label = key.Label ?? "",
                    Attributes = attrs,
                    WrapMechanism = mech.ToString(),
                    WrappingKeyKcv = dkek.Kcv,
                    WrappedKey = wrapped,
                    PublicKeyInfo = key.KeyType is KeyKind.Rsa or KeyKind.Ec ? key.PublicKeyInfo : null,
                    Certificate = cert,
                    CertificateLabel = cert is null ? null : certLabel ?? "",
                };
                file.Validate();
                // The tag over every field a restore uses: one C_Sign per key under the run's MAC key.
                return _mac.Authenticate(file, dkek);
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, $"wrap key {key.Id} '{key.Label}'", key);
            }
        }
    }

    /// <summary>The key's certificate (value and label) by id from the catalogue, checked to still be it; else asked of the token.</summary>
    private (byte[]? Value, string? Label) FindCertificate(byte[] id)
    {
        if (Catalog().Certificate(id) is not { } h) return (null, null);
        try
        {
            var c = Read(S, h, CertificateAttrs);
            if (c[CKA.CKA_CLASS]?.GetValueAsUlong() == (ulong)CKO.CKO_CERTIFICATE && c[CKA.CKA_ID]?.GetValueAsByteArray() is { } got && got.AsSpan().SequenceEqual(id))
                return (c[CKA.CKA_VALUE]?.GetValueAsByteArray(), c[CKA.CKA_LABEL]?.GetValueAsString());
        }
        catch (Pkcs11Exception) { } // the handle is gone
        _catalogue = null;
        var found = Find(S, (CKA.CKA_CLASS, CKO.CKO_CERTIFICATE), (CKA.CKA_ID, id));
        if (found.Count == 0) return (null, null);
        var r = Read(S, found[0], CertificateAttrs);
        return (r[CKA.CKA_VALUE]?.GetValueAsByteArray(), r[CKA.CKA_LABEL]?.GetValueAsString());
    }

    /// <summary>C_WrapKey once into a buffer sized for the largest key (see <see cref="Pkcs11OneCallReader.TryWrapKey"/>), else Pkcs11Interop's two calls.</summary>
    private byte[] WrapKey(CKM mech, IObjectHandle wrappingKey, IObjectHandle key)
    {
        _wrapBuffer ??= new byte[MaxWrapped];
        int n = Pkcs11OneCallReader.TryWrapKey(_context.Token.ModulePath, S.SessionId, mech, wrappingKey.ObjectId, key.ObjectId, _wrapBuffer);
        if (n < 0) return S.WrapKey(Pkcs11Mechanisms.Create(mech), wrappingKey, key);
        var wrapped = new byte[n];
        Buffer.BlockCopy(_wrapBuffer, 0, wrapped, 0, n);
        return wrapped;
    }

    /// <summary>How long a catalogue's misses are trusted: objects another tool adds are seen by the next operation after it.</summary>
    private static readonly TimeSpan CatalogueMaxAge = TimeSpan.FromSeconds(30);

    private Pkcs11ObjectCatalogue Catalog()
    {
        if (_catalogue is { } c && c.Age.Elapsed < CatalogueMaxAge) return c;
        return _catalogue = Pkcs11ObjectCatalogue.Scan(S, _handles.ReadClassAndId);
    }

    /// <summary>
    /// As <see cref="Reset"/>, from what a listing's own pass over the token found: the exports that follow
    /// look keys up in its <paramref name="catalogue"/> instead of passing over the token's objects again, and
    /// the DKEK proof is kept if it names the very objects the listing found (<paramref name="listedDkek"/>).
    /// </summary>
    public void StartFrom(Pkcs11ObjectCatalogue catalogue, DkekObjects? listedDkek)
    {
        _catalogue = catalogue;
        _dkek.KeepOnlyFor(listedDkek);
        _mac.Reset();
    }

    /// <summary>
    /// The key's object by class and id, from the catalogue, with its attributes (one read, which also
    /// checks that the handle still is that key). A key the catalogue does not hold, or whose handle
    /// now names another object, is asked of the token directly and the catalogue dropped.
    /// </summary>
    private (IObjectHandle Handle, byte[]?[] Attrs) FindKey(byte[] id, string idHex, string keyClass)
    {
        MakeReader();
        var cko = keyClass == "SecretKey" ? CKO.CKO_SECRET_KEY : CKO.CKO_PRIVATE_KEY;
        var h = Catalog().Keys(cko, id);
        if (h is { Count: 1 })
        {
            byte[]?[]? a = null;
            try { a = ReadRaw(h[0], _keyReader, KeyAttrs); }
            catch (Pkcs11Exception) { } // the handle is gone
            if (a is not null && IsClassAndId(a, cko, id)) return (h[0], a);
        }
        // Not in the catalogue as one object: made, changed or removed since it was taken (by this
        // session or another tool). Ask the token directly, and take a new catalogue next time.
        var found = Find(S, (CKA.CKA_CLASS, cko), (CKA.CKA_ID, id));
        _catalogue = null;
        return found.Count switch
        {
            1 => (found[0], ReadRaw(found[0], _keyReader, KeyAttrs)),
            0 => throw new PicoHsmException(PicoErrorKind.NotFound, "KeyNotFound", $"No {keyClass} with id {idHex} on '{_context.TokenLabel}'.", idHex),
            _ => throw new PicoHsmException(PicoErrorKind.InvalidOperation, "DuplicateId",
                $"Several {keyClass} objects share id {idHex} on '{_context.TokenLabel}'; give each a unique CKA_ID before backing up.", idHex),
        };
    }
}
