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
internal sealed class Pkcs11KeyWrapper
{
    private static readonly List<CKA> EcParamsOnly = new() { CKA.CKA_EC_PARAMS };
    private static readonly List<CKA> CertificateAttrs = new() { CKA.CKA_VALUE, CKA.CKA_LABEL };

    private readonly DeviceContext _context;
    private readonly Pkcs11Connection _p11;
    private readonly Pkcs11Mechanisms _mechanisms;
    private readonly Pkcs11DkekStore _dkek;
    private readonly Pkcs11ObjectIndex _objects;
    private readonly Pkcs11BackupMac _mac;
    private DkekObjects? _verifiedDkek;

    public Pkcs11KeyWrapper(DeviceContext context, Pkcs11Connection connection, Pkcs11Mechanisms mechanisms, Pkcs11DkekStore dkek, Pkcs11BackupMac mac)
    {
        _mac = mac;
        _context = context;
        _p11 = connection;
        _mechanisms = mechanisms;
        _dkek = dkek;
        _objects = new Pkcs11ObjectIndex(() => _p11.Session);
    }

    /// <summary>Forgets what the wrapper knows of the token's objects (call after a listing or a change).</summary>
    public void Reset()
    {
        _objects.Reset();
        _verifiedDkek = null;
        _mac.Reset();
    }

    /// <summary>
    /// The DKEK, proven (the token wraps the probe key to the recorded proof) once, then only checked
    /// to be the same object with the same id at each export: proving it per key costs a wrap and
    /// three object scans per key. A DKEK replaced or deleted by another tool has a new or an invalid
    /// handle, and is found and proven again.
    /// </summary>
    private DkekObjects VerifiedDkek()
    {
        if (_verifiedDkek is { } d && Pkcs11ObjectIndex.StillIs(S, d.Key, CKO.CKO_SECRET_KEY, d.Id)) return d;
        return _verifiedDkek = _dkek.RequireVerified();
    }

    private ISession S => _p11.Session;

    public WrappedKeyFile Wrap(PicoKey key)
    {
        lock (_context.Gate)
        {
            try
            {
                var dkek = VerifiedDkek();
                if (!key.Extractable)
                    throw new PicoHsmException(PicoErrorKind.PermissionDenied, "KeyNotExtractable",
                        $"Key {key.Id} '{key.Label}' is not extractable (CKA_EXTRACTABLE is false), so the token will not wrap it. It cannot be backed up; it was created that way.", key);
                byte[] idBytes = Convert.FromHexString(key.Id);
                var handle = FindKeyHandle(idBytes, key.Id, key.Class);
                var mech = _mechanisms.ChooseWrapMechanism(key.Class);
                byte[] wrapped = S.WrapKey(Pkcs11Mechanisms.Create(mech), dkek.Key, handle);
                int sizeBits = key.Size;
                // SoftHSM2 leaves CKA_VALUE_LEN at 0 on secret keys it unwrapped (and refuses it in
                // the unwrap template); AES key wrap adds exactly 8 bytes to a 16/24/32-byte key.
                if (sizeBits == 0 && key.KeyType == KeyKind.Aes && mech is CKM.CKM_AES_KEY_WRAP_PAD or CKM.CKM_AES_KEY_WRAP)
                    sizeBits = (wrapped.Length - 8) * 8;

                var usage = Pkcs11RestoreTemplates.UsageAttributes;
                var attrs = new Dictionary<string, bool>(usage.Length);
                var values = S.GetAttributeValue(handle, Pkcs11RestoreTemplates.UsageTypes);
                for (int i = 0; i < usage.Length; i++)
                    if (!values[i].CannotBeRead) attrs[usage[i].Name] = values[i].GetValueAsBool();

                byte[]? ecParams = null;
                if (key.KeyType == KeyKind.Ec)
                    ecParams = Read(S, handle, EcParamsOnly)[CKA.CKA_EC_PARAMS]?.GetValueAsByteArray();

                byte[]? cert = null;
                string? certLabel = null;
                var certs = _objects.Find(CKO.CKO_CERTIFICATE, idBytes);
                if (certs.Count > 0)
                {
                    var c = Read(S, certs[0], CertificateAttrs);
                    cert = c[CKA.CKA_VALUE]?.GetValueAsByteArray();
                    certLabel = c[CKA.CKA_LABEL]?.GetValueAsString();
                }
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

    /// <summary>The key's object, by class and id, from the object index (checked against the token).</summary>
    private IObjectHandle FindKeyHandle(byte[] id, string idHex, string keyClass)
    {
        var cko = keyClass == "SecretKey" ? CKO.CKO_SECRET_KEY : CKO.CKO_PRIVATE_KEY;
        var h = _objects.Find(cko, id);
        if (h.Count == 0)
        {
            // Not in the snapshot: made since it was taken (by this session or another tool). Ask the
            // token directly, and drop the snapshot so the key's certificate is found too.
            h = Find(S, (CKA.CKA_CLASS, cko), (CKA.CKA_ID, id));
            if (h.Count > 0) _objects.Reset();
        }
        return h.Count switch
        {
            1 => h[0],
            0 => throw new PicoHsmException(PicoErrorKind.NotFound, "KeyNotFound", $"No {keyClass} with id {idHex} on '{_context.TokenLabel}'.", idHex),
            _ => throw new PicoHsmException(PicoErrorKind.InvalidOperation, "DuplicateId",
                $"Several {keyClass} objects share id {idHex} on '{_context.TokenLabel}'; give each a unique CKA_ID before backing up.", idHex),
        };
    }
}
