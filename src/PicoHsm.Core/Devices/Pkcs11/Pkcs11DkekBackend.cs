using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// DKEK work on a generic PKCS#11 token (SoftHSM2, network HSMs): the DKEK is an AES-256
/// secret key object (sensitive, never extractable, wrap/unwrap only), keys are wrapped with
/// C_WrapKey under it and restored with C_UnwrapKey.
/// </summary>
public sealed class Pkcs11DkekBackend : IDeviceBackend, IKeyGenerator
{
    public DeviceFamily Family => DeviceFamily.Pkcs11Token;
    public string BackupExtension => WrappedKeyFile.Extension;

    /// <summary>CKA_APPLICATION of the data object that records the DKEK's KCV and proof.</summary>
    public const string ProofApplication = "PicoHsm DKEK";
    private static readonly byte[] ProofMagic = Encoding.ASCII.GetBytes("PHDK1");

    private readonly DeviceContext _session;
    private readonly Pkcs11Connection _p11;


    public Pkcs11DkekBackend(DeviceContext context, Pkcs11Connection connection)
    {
        _session = context ?? throw new ArgumentNullException(nameof(context));
        _p11 = connection ?? throw new ArgumentNullException(nameof(connection));
    }

    public DeviceContext Context => _session;
    public bool IsOpen => _p11.IsOpen;
    public bool HasPkcs11 => true;
    public string ModulePath => _p11.ModulePath;

    public void Dispose() => _p11.Dispose();

    public byte[]? GenerateRandom(int count)
    {
        lock (_session.Gate) return S.GenerateRandom(count);
    }

    public PicoKey GenerateKey(KeyKind kind, int size, string? curve, byte[] id, string label, bool extractable) =>
        Pkcs11KeyGenerator.Generate(_session, S, kind, size, curve, id, label, extractable);

    private ISession S => _p11.Session;

    private sealed record DkekObjects(IObjectHandle Key, byte[] Id, string? Label, IObjectHandle? Proof, byte[]? Kcv, byte[]? ProofBytes);

    // ---------- DKEK ----------

    /// <summary>
    /// The DKEK object and its record. A record whose key was deleted by another tool is an
    /// orphan and ignored; with several candidates, the one the token's wrap proves wins.
    /// </summary>
    private DkekObjects? FindDkek()
    {
        var candidates = new List<DkekObjects>();
        foreach (var data in Find(S, (CKA.CKA_CLASS, CKO.CKO_DATA), (CKA.CKA_APPLICATION, ProofApplication)))
        {
            var v = Read(S, data, new List<CKA> { CKA.CKA_VALUE })[CKA.CKA_VALUE]?.GetValueAsByteArray();
            if (!TryParseProof(v, out byte[] kcv, out byte[] id, out byte[] proof)) continue;
            var keys = Find(S, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), (CKA.CKA_KEY_TYPE, CKK.CKK_AES), (CKA.CKA_ID, id));
            if (keys.Count == 0) continue;
            string? label = Read(S, keys[0], new List<CKA> { CKA.CKA_LABEL })[CKA.CKA_LABEL]?.GetValueAsString();
            candidates.Add(new DkekObjects(keys[0], id, label, data, kcv, proof));
        }
        if (candidates.Count <= 1) return candidates.FirstOrDefault();
        foreach (var c in candidates)
        {
            try
            {
                if (CryptographicOperations.FixedTimeEquals(WrapProbe(c.Key), c.ProofBytes!)) return c;
            }
            catch (Pkcs11Exception) { }
        }
        return candidates[0];
    }

    /// <summary>Records whose DKEK object is gone (deleted with another tool): removed before a new import.</summary>
    private void RemoveOrphanRecords()
    {
        foreach (var data in Find(S, (CKA.CKA_CLASS, CKO.CKO_DATA), (CKA.CKA_APPLICATION, ProofApplication)))
        {
            var v = Read(S, data, new List<CKA> { CKA.CKA_VALUE })[CKA.CKA_VALUE]?.GetValueAsByteArray();
            if (TryParseProof(v, out _, out byte[] id, out _) &&
                Find(S, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), (CKA.CKA_KEY_TYPE, CKK.CKK_AES), (CKA.CKA_ID, id)).Count == 0)
                S.DestroyObject(data);
        }
    }

    private static byte[] BuildProof(byte[] kcv, byte[] id, byte[] proof)
    {
        // magic | kcv(8) | id length(1) | id | proof
        var b = new List<byte>(ProofMagic);
        b.AddRange(kcv);
        b.Add((byte)id.Length);
        b.AddRange(id);
        b.AddRange(proof);
        return b.ToArray();
    }

    private static bool TryParseProof(byte[]? v, out byte[] kcv, out byte[] id, out byte[] proof)
    {
        kcv = id = proof = Array.Empty<byte>();
        if (v is null || v.Length < ProofMagic.Length + 8 + 1 || !v.AsSpan(0, ProofMagic.Length).SequenceEqual(ProofMagic)) return false;
        int o = ProofMagic.Length;
        kcv = v[o..(o + 8)];
        o += 8;
        int idLen = v[o++];
        if (v.Length < o + idLen + 16) return false;
        id = v[o..(o + idLen)];
        proof = v[(o + idLen)..];
        return true;
    }

    /// <summary>Wraps the public probe key under the token's DKEK object (see <see cref="DkekProof"/>).</summary>
    private byte[] WrapProbe(IObjectHandle dkek)
    {
        var probe = S.CreateObject(new List<IObjectAttribute>
        {
            Attr(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), Attr(CKA.CKA_KEY_TYPE, CKK.CKK_AES), Attr(CKA.CKA_TOKEN, false),
            Attr(CKA.CKA_VALUE, DkekProof.ProbeKey), Attr(CKA.CKA_EXTRACTABLE, true), Attr(CKA.CKA_SENSITIVE, false),
            Attr(CKA.CKA_LABEL, "PicoHsm DKEK probe"),
        });
        try
        {
            return S.WrapKey(Mechanism(CKM.CKM_AES_KEY_WRAP_PAD), dkek, probe);
        }
        finally
        {
            S.DestroyObject(probe);
        }
    }

    IReadOnlyList<PicoDkek> IDeviceBackend.GetDkek() => new[] { GetDkek() };

    public PicoDkek GetDkek()
    {
        lock (_session.Gate)
        {
            try
            {
                var d = FindDkek();
                if (d is null)
                {
                    return new PicoDkek { Present = false, DeviceFamily = DeviceFamily.Pkcs11Token, TokenLabel = _session.TokenLabel, TokenSerial = _session.SerialNumber, Status = "No DKEK on this token" };
                }
                bool verified = false;
                string status;
                try
                {
                    verified = CryptographicOperations.FixedTimeEquals(WrapProbe(d.Key), d.ProofBytes!);
                    status = verified ? "Verified" : "Mismatch: the DKEK object does not match its recorded KCV";
                }
                catch (Pkcs11Exception ex) when (ex.RV is CKR.CKR_MECHANISM_INVALID or CKR.CKR_KEY_FUNCTION_NOT_PERMITTED)
                {
                    status = "Unverified: the token cannot wrap the probe key";
                }
                return new PicoDkek
                {
                    Present = true,
                    KeyCheckValue = verified || status.StartsWith("Unverified") ? KeyCheckValue.ToHex(d.Kcv!) : null,
                    KcvVerified = verified,
                    Label = d.Label,
                    Id = IdHex(d.Id),
                    DeviceFamily = DeviceFamily.Pkcs11Token,
                    TokenLabel = _session.TokenLabel,
                    TokenSerial = _session.SerialNumber,
                    Status = status,
                };
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, "read the token's DKEK", _session);
            }
        }
    }

    /// <summary>
    /// Puts the DKEK on the token. A token that holds another DKEK is refused; the same DKEK is a
    /// no-op (returns false so the caller can warn).
    /// </summary>
    public bool ImportDkek(SecretBytes dkek, string label, byte[] id)
    {
        byte[] kcv = KeyCheckValue.Compute(dkek.Span);
        byte[] proof = DkekProof.Compute(dkek.Span);
        lock (_session.Gate)
        {
            try
            {
                var existing = FindDkek();
                if (existing is not null)
                {
                    if (existing.Kcv!.AsSpan().SequenceEqual(kcv) && CryptographicOperations.FixedTimeEquals(WrapProbe(existing.Key), proof))
                        return false;
                    throw new PicoHsmException(PicoErrorKind.ResourceExists, "OtherDkekPresent",
                        $"The token '{_session.TokenLabel}' already holds a DKEK with KCV {KeyCheckValue.ToHex(existing.Kcv!)}, not {KeyCheckValue.ToHex(kcv)}. " +
                        "Keys backed up under one DKEK cannot be restored under another; use the shares of the token's DKEK, or a fresh token.", _session);
                }
                RemoveOrphanRecords();
                if (Find(S, (CKA.CKA_ID, id)).Count > 0)
                    throw new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
                        $"An object with id {IdHex(id)} already exists on '{_session.TokenLabel}'. Choose another -Id for the DKEK.", IdHex(id));
                RequireMechanism(CKM.CKM_AES_KEY_WRAP_PAD, "wrap keys under the DKEK");

                var key = S.CreateObject(new List<IObjectAttribute>
                {
                    Attr(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), Attr(CKA.CKA_KEY_TYPE, CKK.CKK_AES),
                    Attr(CKA.CKA_TOKEN, true), Attr(CKA.CKA_PRIVATE, true), Attr(CKA.CKA_SENSITIVE, true), Attr(CKA.CKA_EXTRACTABLE, false),
                    Attr(CKA.CKA_WRAP, true), Attr(CKA.CKA_UNWRAP, true), Attr(CKA.CKA_ENCRYPT, false), Attr(CKA.CKA_DECRYPT, false),
                    Attr(CKA.CKA_SIGN, false), Attr(CKA.CKA_VERIFY, false), Attr(CKA.CKA_DERIVE, false), Attr(CKA.CKA_MODIFIABLE, false),
                    Attr(CKA.CKA_LABEL, label), Attr(CKA.CKA_ID, id), Attr(CKA.CKA_VALUE, dkek.UnsafeArray),
                });
                try
                {
                    if (!CryptographicOperations.FixedTimeEquals(WrapProbe(key), proof))
                        throw new PicoHsmException(PicoErrorKind.DeviceError, "DkekProofFailed",
                            "The token's wrap of the probe key does not match the expected value; its AES key wrap is not RFC 5649. The DKEK was not kept.", _session);
                    S.CreateObject(new List<IObjectAttribute>
                    {
                        Attr(CKA.CKA_CLASS, CKO.CKO_DATA), Attr(CKA.CKA_TOKEN, true), Attr(CKA.CKA_PRIVATE, true),
                        Attr(CKA.CKA_APPLICATION, ProofApplication), Attr(CKA.CKA_LABEL, label + " KCV"),
                        Attr(CKA.CKA_VALUE, BuildProof(kcv, id, proof)),
                    });
                }
                catch
                {
                    S.DestroyObject(key);
                    throw;
                }
                return true;
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, "import the DKEK", _session);
            }
        }
    }

    /// <summary>Removes the DKEK and its record (for wiping a token in the drill).</summary>
    public bool RemoveDkek()
    {
        lock (_session.Gate)
        {
            var d = FindDkek();
            if (d is null) return false;
            S.DestroyObject(d.Key);
            if (d.Proof is not null) S.DestroyObject(d.Proof);
            return true;
        }
    }

    private (DkekObjects Dkek, byte[] Kcv) RequireVerifiedDkek()
    {
        var d = FindDkek() ?? throw new PicoHsmException(PicoErrorKind.NotFound, "NoDkek",
            $"The token '{_session.TokenLabel}' has no DKEK. Create one with New-PicoDkek or restore it from shares with Import-PicoDkek.", _session);
        if (!CryptographicOperations.FixedTimeEquals(WrapProbe(d.Key), d.ProofBytes!))
            throw new PicoHsmException(PicoErrorKind.InvalidData, "DkekMismatch",
                $"The DKEK object on '{_session.TokenLabel}' does not match the KCV recorded for it ({KeyCheckValue.ToHex(d.Kcv!)}). Something replaced it; re-import the DKEK from its shares.", _session);
        return (d, d.Kcv!);
    }

    // ---------- mechanisms ----------

    private static IMechanism Mechanism(CKM m) => Pkcs11Connection.Factories.MechanismFactory.Create(m);

    private List<CKM>? _mechanisms;

    public bool Supports(CKM m)
    {
        try { return (_mechanisms ??= _p11.Slot.GetMechanismList()).Contains(m); }
        catch (Pkcs11Exception) { return false; }
    }

    private void RequireMechanism(CKM m, string why)
    {
        if (!Supports(m))
            throw new PicoHsmException(PicoErrorKind.NotSupported, "MechanismNotSupported",
                $"The token '{_session.TokenLabel}' does not offer {m}, needed to {why}.", _session);
    }

    /// <summary>The best wrap mechanism the token lists: RFC 5649 (any key length) first.</summary>
    public CKM ChooseWrapMechanism(string keyClass)
    {
        if (Supports(CKM.CKM_AES_KEY_WRAP_PAD)) return CKM.CKM_AES_KEY_WRAP_PAD;
        // RFC 3394 needs a multiple of 8 bytes: always true of AES keys, not of PKCS#8 private keys.
        if (keyClass == "SecretKey" && Supports(CKM.CKM_AES_KEY_WRAP)) return CKM.CKM_AES_KEY_WRAP;
        throw new PicoHsmException(PicoErrorKind.NotSupported, "MechanismNotSupported",
            $"The token '{_session.TokenLabel}' offers no AES key wrap mechanism (CKM_AES_KEY_WRAP_PAD) to wrap this key under the DKEK.", _session);
    }

    // ---------- export ----------

    /// <summary>The boolean attributes a backup records, by their name in the backup file.</summary>
    private static readonly (CKA Cka, string Name)[] UsageAttributes =
    {
        (CKA.CKA_SIGN, KeyAttributeNames.Sign), (CKA.CKA_VERIFY, KeyAttributeNames.Verify), (CKA.CKA_DECRYPT, KeyAttributeNames.Decrypt),
        (CKA.CKA_ENCRYPT, KeyAttributeNames.Encrypt), (CKA.CKA_WRAP, KeyAttributeNames.Wrap), (CKA.CKA_UNWRAP, KeyAttributeNames.Unwrap),
        (CKA.CKA_DERIVE, KeyAttributeNames.Derive), (CKA.CKA_SENSITIVE, KeyAttributeNames.Sensitive), (CKA.CKA_EXTRACTABLE, KeyAttributeNames.Extractable),
        (CKA.CKA_PRIVATE, KeyAttributeNames.Private), (CKA.CKA_SIGN_RECOVER, KeyAttributeNames.SignRecover),
        (CKA.CKA_ALWAYS_AUTHENTICATE, KeyAttributeNames.AlwaysAuthenticate),
    };

    private IObjectHandle FindKeyHandle(string idHex, string keyClass)
    {
        var cko = keyClass == "SecretKey" ? CKO.CKO_SECRET_KEY : CKO.CKO_PRIVATE_KEY;
        var h = Find(S, (CKA.CKA_CLASS, cko), (CKA.CKA_ID, Convert.FromHexString(idHex)));
        return h.Count switch
        {
            1 => h[0],
            0 => throw new PicoHsmException(PicoErrorKind.NotFound, "KeyNotFound", $"No {keyClass} with id {idHex} on '{_session.TokenLabel}'.", idHex),
            _ => throw new PicoHsmException(PicoErrorKind.InvalidOperation, "DuplicateId",
                $"Several {keyClass} objects share id {idHex} on '{_session.TokenLabel}'; give each a unique CKA_ID before backing up.", idHex),
        };
    }

    /// <summary>
    /// The key catalogue. The DKEK object is found once per listing (not once per secret key) and
    /// left out; it is listed by Get-PicoDkek.
    /// </summary>
    public List<PicoKey> ListKeys()
    {
        lock (_session.Gate)
        {
            byte[]? dkekId = _session.IsLoggedIn ? FindDkek()?.Id : null;
            return Pkcs11KeyStore.List(_session, S, dkekId is null ? null : (id, _) => dkekId.AsSpan().SequenceEqual(id));
        }
    }

    public PicoKeyBackup Export(PicoKey key, string path, bool overwrite)
    {
        if (!overwrite && File.Exists(path))
            throw new PicoHsmException(PicoErrorKind.ResourceExists, "FileExists",
                $"'{path}' already exists. Choose another path, or use -Force to replace it.", path);
        var file = Wrap(key);
        byte[] bytes = file.ToBytes();
        AtomicFile.WriteAllBytes(path, bytes, overwrite);
        return BackupFiles.Describe(path, file, bytes);
    }

    public WrappedKeyFile Wrap(PicoKey key)
    {
        lock (_session.Gate)
        {
            try
            {
                var (dkek, kcv) = RequireVerifiedDkek();
                if (!key.Extractable)
                    throw new PicoHsmException(PicoErrorKind.PermissionDenied, "KeyNotExtractable",
                        $"Key {key.Id} '{key.Label}' is not extractable (CKA_EXTRACTABLE is false), so the token will not wrap it. It cannot be backed up; it was created that way.", key);
                var handle = FindKeyHandle(key.Id, key.Class);
                var mech = ChooseWrapMechanism(key.Class);
                byte[] wrapped = S.WrapKey(Mechanism(mech), dkek.Key, handle);
                int sizeBits = key.Size;
                // SoftHSM2 leaves CKA_VALUE_LEN at 0 on secret keys it unwrapped (and refuses it in
                // the unwrap template); AES key wrap adds exactly 8 bytes to a 16/24/32-byte key.
                if (sizeBits == 0 && key.KeyType == KeyKind.Aes && mech is CKM.CKM_AES_KEY_WRAP_PAD or CKM.CKM_AES_KEY_WRAP)
                    sizeBits = (wrapped.Length - 8) * 8;

                var attrs = new Dictionary<string, bool>();
                var values = S.GetAttributeValue(handle, UsageAttributes.Select(u => u.Cka).ToList());
                for (int i = 0; i < UsageAttributes.Length; i++)
                    if (!values[i].CannotBeRead) attrs[UsageAttributes[i].Name] = values[i].GetValueAsBool();

                byte[]? ecParams = null;
                if (key.KeyType == KeyKind.Ec)
                    ecParams = Read(S, handle, new List<CKA> { CKA.CKA_EC_PARAMS })[CKA.CKA_EC_PARAMS]?.GetValueAsByteArray();

                byte[]? cert = null;
                string? certLabel = null;
                var certs = Find(S, (CKA.CKA_CLASS, CKO.CKO_CERTIFICATE), (CKA.CKA_ID, Convert.FromHexString(key.Id)));
                if (certs.Count > 0)
                {
                    var c = Read(S, certs[0], new List<CKA> { CKA.CKA_VALUE, CKA.CKA_LABEL });
                    cert = c[CKA.CKA_VALUE]?.GetValueAsByteArray();
                    certLabel = c[CKA.CKA_LABEL]?.GetValueAsString();
                }
                var t = _session.Token;
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
                    Id = Convert.FromHexString(key.Id),
                    Label = key.Label ?? "",
                    Attributes = attrs,
                    WrapMechanism = mech.ToString(),
                    WrappingKeyKcv = kcv,
                    WrappedKey = wrapped,
                    PublicKeyInfo = key.KeyType is KeyKind.Rsa or KeyKind.Ec ? key.PublicKeyInfo : null,
                    Certificate = cert,
                    CertificateLabel = cert is null ? null : certLabel ?? "",
                };
                file.Validate();
                return file;
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, $"wrap key {key.Id} '{key.Label}'", key);
            }
        }
    }

    // ---------- compatibility and restore ----------

    /// <summary>Everything that stops a restore, checked before anything on the token changes. Empty: compatible.</summary>
    public List<string> CheckCompatibility(WrappedKeyFile backup, byte[]? targetId, bool force, out bool dkekMatches)
    {
        var problems = new List<string>();
        dkekMatches = false;
        lock (_session.Gate)
        {
            var d = FindDkek();
            if (d is null)
                problems.Add($"The token '{_session.TokenLabel}' has no DKEK; import it from its shares first (Import-PicoDkek).");
            else if (!d.Kcv!.AsSpan().SequenceEqual(backup.WrappingKeyKcv))
                problems.Add($"The backup was made under DKEK {KeyCheckValue.ToHex(backup.WrappingKeyKcv)}, but the token's DKEK is {KeyCheckValue.ToHex(d.Kcv!)}.");
            else if (!CryptographicOperations.FixedTimeEquals(WrapProbe(d.Key), d.ProofBytes!))
                problems.Add($"The token's DKEK object does not match its recorded KCV {KeyCheckValue.ToHex(d.Kcv!)}.");
            else
                dkekMatches = true;

            if (!Enum.TryParse(backup.WrapMechanism, out CKM mech) || !Supports(mech))
                problems.Add($"The token does not offer {backup.WrapMechanism}, the mechanism the key was wrapped with.");

            var (gen, min, max, unit) = backup.KeyKind switch
            {
                KeyKind.Rsa => (CKM.CKM_RSA_PKCS_KEY_PAIR_GEN, 0, 0, "bits"),
                KeyKind.Ec => (CKM.CKM_EC_KEY_PAIR_GEN, 0, 0, "bits"),
                KeyKind.Aes => (CKM.CKM_AES_KEY_GEN, 0, 0, "bytes"),
                KeyKind.GenericSecret => (CKM.CKM_GENERIC_SECRET_KEY_GEN, 0, 0, "bits"),
                _ => (CKM.CKM_VENDOR_DEFINED, 0, 0, ""),
            };
            if (gen == CKM.CKM_VENDOR_DEFINED || !Supports(gen))
                problems.Add($"The token does not support {backup.KeyKind} keys.");
            else
            {
                try
                {
                    var info = _p11.Slot.GetMechanismInfo(gen);
                    ulong size = backup.KeyKind == KeyKind.Aes && unit == "bytes" ? (ulong)(backup.SizeBits / 8) : (ulong)backup.SizeBits;
                    // Modules disagree on units (SoftHSM2 gives AES in bytes, others bits): accept either reading.
                    ulong alt = backup.KeyKind == KeyKind.Aes ? (ulong)backup.SizeBits : size;
                    bool inRange(ulong v) => (info.MinKeySize == 0 || v >= info.MinKeySize) && (info.MaxKeySize == 0 || v <= info.MaxKeySize);
                    if (backup.SizeBits > 0 && !inRange(size) && !inRange(alt))
                        problems.Add($"The token supports {backup.KeyKind} keys of {info.MinKeySize}-{info.MaxKeySize} {unit}, not {backup.SizeBits} bits.");
                }
                catch (Pkcs11Exception) { /* no size information: let the unwrap decide */ }
            }

            byte[] id = targetId ?? backup.Id;
            var cko = backup.KeyClass == KeyClass.Secret ? CKO.CKO_SECRET_KEY : CKO.CKO_PRIVATE_KEY;
            if (Find(S, (CKA.CKA_CLASS, cko), (CKA.CKA_ID, id)).Count > 0 && !force)
                problems.Add($"Id {IdHex(id)} is already used by a key on '{_session.TokenLabel}'. Restore with -Id <another id>, or -Force to replace that key.");
        }
        return problems;
    }

    private List<IObjectAttribute> UnwrapTemplate(WrappedKeyFile b, byte[] id, string? label, bool onToken, bool forTest)
    {
        var cko = b.KeyClass == KeyClass.Secret ? CKO.CKO_SECRET_KEY : CKO.CKO_PRIVATE_KEY;
        var ckk = b.KeyKind switch
        {
            KeyKind.Rsa => CKK.CKK_RSA, KeyKind.Ec => CKK.CKK_EC, KeyKind.Aes => CKK.CKK_AES, KeyKind.GenericSecret => CKK.CKK_GENERIC_SECRET,
            _ => throw new PicoHsmException(PicoErrorKind.NotSupported, "KeyTypeNotSupported", $"Key type {b.KeyKind} cannot be restored.", b),
        };
        var t = new List<IObjectAttribute>
        {
            Attr(CKA.CKA_CLASS, cko), Attr(CKA.CKA_KEY_TYPE, ckk), Attr(CKA.CKA_TOKEN, onToken), Attr(CKA.CKA_ID, id),
            Attr(CKA.CKA_SENSITIVE, true),
        };
        if (label is not null) t.Add(Attr(CKA.CKA_LABEL, label));
        bool isSecret = b.KeyClass == KeyClass.Secret;
        foreach (var (name, value) in b.Attributes)
        {
            int ix = Array.FindIndex(UsageAttributes, u => u.Name == name);
            if (ix < 0) continue;
            CKA cka = UsageAttributes[ix].Cka;
            if (cka is CKA.CKA_VERIFY or CKA.CKA_ENCRYPT or CKA.CKA_WRAP && !isSecret) continue; // public-key usages
            if (cka is CKA.CKA_MODIFIABLE) continue; // set last would lock our own id change with -Force
            // The backup's digest is no signature: whoever can edit the file could clear
            // CKA_SENSITIVE. A restored key is always sensitive, whatever the file says.
            if (cka is CKA.CKA_SENSITIVE) continue;
            if (forTest && cka is CKA.CKA_SIGN or CKA.CKA_ENCRYPT or CKA.CKA_DECRYPT or CKA.CKA_VERIFY or CKA.CKA_ALWAYS_AUTHENTICATE) continue;
            t.Add(Attr(cka, value));
        }
        if (forTest)
        {
            // A throwaway session copy may do what the proof needs, whatever the original allowed.
            t.Add(Attr(CKA.CKA_SIGN, true));
            if (isSecret) { t.Add(Attr(CKA.CKA_ENCRYPT, true)); t.Add(Attr(CKA.CKA_DECRYPT, true)); }
        }
        return t;
    }

    /// <summary>Restores a key. Checks compatibility first; with <paramref name="force"/> an occupied id is replaced only after the new key exists.</summary>
    public PicoKey Restore(PicoKeyBackup backup, RestoreRequest request)
    {
        var content = backup.Content ?? throw new PicoHsmException(PicoErrorKind.NotSupported, "FormatNotSupported",
            $"'{backup.Path}' is an sc-hsm-tool file for a SmartCard-HSM / Pico HSM; a generic PKCS#11 token restores PicoHsm (.pkb) backups only.", backup.Path);
        return Restore(content, request.NewId, request.NewLabel, request.Force);
    }

    public PicoKey Restore(WrappedKeyFile b, byte[]? newId, string? newLabel, bool force)
    {
        var problems = CheckCompatibility(b, newId, force, out _);
        if (problems.Count > 0)
            throw new PicoHsmException(problems[0].Contains("already used") ? PicoErrorKind.ResourceExists : PicoErrorKind.InvalidOperation,
                problems[0].Contains("already used") ? "IdInUse" : problems[0].Contains("DKEK") ? "DkekMismatch" : "Incompatible",
                string.Join(" ", problems), b);
        byte[] id = newId ?? b.Id;
        string? label = newLabel ?? b.Label;
        lock (_session.Gate)
        {
            try
            {
                var (dkek, _) = RequireVerifiedDkek();
                var cko = b.KeyClass == KeyClass.Secret ? CKO.CKO_SECRET_KEY : CKO.CKO_PRIVATE_KEY;
                var old = Find(S, (CKA.CKA_CLASS, cko), (CKA.CKA_ID, id));
                var oldPublic = Find(S, (CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY), (CKA.CKA_ID, id));
                var oldCert = Find(S, (CKA.CKA_CLASS, CKO.CKO_CERTIFICATE), (CKA.CKA_ID, id));
                if (old.Count > 0 && !force)
                    throw new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
                        $"Id {IdHex(id)} is already used by a key on '{_session.TokenLabel}'. Restore with -Id <another id>, or -Force to replace that key.", b);
                // Unwrap under a temporary id while an old key still holds the target id, so that
                // there is never a moment with neither key on the token.
                byte[] unwrapId = old.Count > 0 ? RandomNumberGenerator.GetBytes(16) : id;
                var mech = Enum.Parse<CKM>(b.WrapMechanism);
                var handle = S.UnwrapKey(Mechanism(mech), dkek.Key, b.WrappedKey, UnwrapTemplate(b, unwrapId, label, onToken: true, forTest: false));
                var created = new List<IObjectHandle> { handle };
                try
                {
                    if (b.KeyClass == KeyClass.Private && b.PublicKeyInfo is not null)
                        created.Add(S.CreateObject(PublicKeyTemplate(b, unwrapId, label)));
                    if (b.Certificate is not null)
                        created.Add(S.CreateObject(CertificateTemplate(b, unwrapId)));
                }
                catch
                {
                    foreach (var h in created) S.DestroyObject(h);
                    throw;
                }
                if (old.Count > 0)
                {
                    // Give the new objects the id first (duplicate ids are allowed), so a token that
                    // refuses to change CKA_ID leaves the old key untouched, then remove the old ones.
                    try
                    {
                        foreach (var h in created) S.SetAttributeValue(h, new List<IObjectAttribute> { Attr(CKA.CKA_ID, id) });
                    }
                    catch
                    {
                        foreach (var h in created) { try { S.DestroyObject(h); } catch (Pkcs11Exception) { } }
                        throw;
                    }
                    foreach (var h in old.Concat(oldPublic).Concat(oldCert)) S.DestroyObject(h);
                }
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, $"restore key {IdHex(id)}", b);
            }
        }
        string idHex = IdHex(id);
        string cls = b.KeyClass == KeyClass.Secret ? "SecretKey" : "PrivateKey";
        var restored = Pkcs11KeyStore.List(_session, S).First(k => k.Id == idHex && k.Class == cls);
        return restored.Size == 0 ? restored with { Size = b.SizeBits } : restored;
    }

    private static List<IObjectAttribute> PublicKeyTemplate(WrappedKeyFile b, byte[] id, string? label)
    {
        var t = new List<IObjectAttribute> { Attr(CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY), Attr(CKA.CKA_TOKEN, true), Attr(CKA.CKA_ID, id), Attr(CKA.CKA_PRIVATE, false) };
        if (label is not null) t.Add(Attr(CKA.CKA_LABEL, label));
        bool verify = !b.Attributes.TryGetValue(KeyAttributeNames.Sign, out bool s) || s;
        bool encrypt = !b.Attributes.TryGetValue(KeyAttributeNames.Decrypt, out bool d) || d;
        t.Add(Attr(CKA.CKA_VERIFY, verify));
        if (b.KeyKind == KeyKind.Rsa)
        {
            using var rsa = RSA.Create();
            rsa.ImportSubjectPublicKeyInfo(b.PublicKeyInfo, out _);
            var p = rsa.ExportParameters(false);
            t.Add(Attr(CKA.CKA_KEY_TYPE, CKK.CKK_RSA));
            t.Add(Attr(CKA.CKA_MODULUS, p.Modulus!));
            t.Add(Attr(CKA.CKA_PUBLIC_EXPONENT, p.Exponent!));
            t.Add(Attr(CKA.CKA_ENCRYPT, encrypt));
        }
        else
        {
            var (ecParams, point) = SplitEcSpki(b.PublicKeyInfo!);
            t.Add(Attr(CKA.CKA_KEY_TYPE, CKK.CKK_EC));
            t.Add(Attr(CKA.CKA_EC_PARAMS, b.CurveParameters ?? ecParams));
            t.Add(Attr(CKA.CKA_EC_POINT, PublicKeyInfo.WrapEcPoint(point)));
        }
        return t;
    }

    internal static (byte[] Params, byte[] Point) SplitEcSpki(byte[] spki)
    {
        var r = new System.Formats.Asn1.AsnReader(spki, System.Formats.Asn1.AsnEncodingRules.DER).ReadSequence();
        var alg = r.ReadSequence();
        alg.ReadObjectIdentifier();
        byte[] prm = alg.ReadEncodedValue().ToArray();
        byte[] point = r.ReadBitString(out _);
        return (prm, point);
    }

    private static List<IObjectAttribute> CertificateTemplate(WrappedKeyFile b, byte[] id)
    {
        using var x = new X509Certificate2(b.Certificate!);
        var t = new List<IObjectAttribute>
        {
            Attr(CKA.CKA_CLASS, CKO.CKO_CERTIFICATE), Attr(CKA.CKA_CERTIFICATE_TYPE, CKC.CKC_X_509), Attr(CKA.CKA_TOKEN, true),
            Attr(CKA.CKA_PRIVATE, false), Attr(CKA.CKA_ID, id), Attr(CKA.CKA_VALUE, b.Certificate!),
            Attr(CKA.CKA_SUBJECT, x.SubjectName.RawData), Attr(CKA.CKA_ISSUER, x.IssuerName.RawData),
            Attr(CKA.CKA_SERIAL_NUMBER, SerialDer(x.GetSerialNumber())),
        };
        if (b.CertificateLabel is not null) t.Add(Attr(CKA.CKA_LABEL, b.CertificateLabel));
        return t;
    }

    private static byte[] SerialDer(byte[] littleEndianSerial)
    {
        var w = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
        Array.Reverse(littleEndianSerial);
        w.WriteInteger(littleEndianSerial);
        return w.Encode();
    }

    public PicoBackupTestResult Test(PicoKeyBackup b, bool restoreTest)
    {
        if (b.Content is null)
            return new PicoBackupTestResult
            {
                Path = b.Path, Id = b.Id, Label = b.Label, Kcv = b.Kcv, Valid = true, Compatible = false, Restorable = restoreTest ? false : null,
                Problems = new[] { "An sc-hsm-tool backup restores only onto a SmartCard-HSM / Pico HSM, not onto this PKCS#11 token." },
            };
        // The target id may be taken by the very key this backup came from: that is not a
        // compatibility problem for a test, so occupancy is not checked here.
        var problems = CheckCompatibility(b.Content, null, force: true, out bool match);
        bool? restorable = null;
        string? detail = null;
        if (restoreTest)
        {
            if (match && problems.Count == 0)
            {
                (bool ok, detail) = RestoreTest(b.Content);
                restorable = ok;
                if (!ok) problems.Add(detail);
            }
            else
            {
                restorable = false;
                detail = "Not tried: the backup does not fit this token.";
            }
        }
        return new PicoBackupTestResult
        {
            Path = b.Path, Id = b.Id, Label = b.Label, Kcv = b.Kcv, Valid = true, DkekMatch = match, Compatible = problems.Count == 0 || (restorable == false && match && problems.Count == 1 && detail is not null && problems[0] == detail),
            Restorable = restorable, Problems = problems.ToArray(), Detail = detail,
        };
    }

    /// <summary>
    /// Unwraps the backup into a session object (gone when the session closes, destroyed here at
    /// once), proves it is the key that was backed up, and reports what it proved.
    /// </summary>
    public (bool Restorable, string Detail) RestoreTest(WrappedKeyFile b)
    {
        lock (_session.Gate)
        {
            IObjectHandle? h = null;
            try
            {
                var (dkek, _) = RequireVerifiedDkek();
                h = S.UnwrapKey(Mechanism(Enum.Parse<CKM>(b.WrapMechanism)), dkek.Key, b.WrappedKey,
                    UnwrapTemplate(b, RandomNumberGenerator.GetBytes(8), "PicoHsm restore test", onToken: false, forTest: true));
                byte[] message = RandomNumberGenerator.GetBytes(64);
                switch (b.KeyKind)
                {
                    case KeyKind.Rsa when b.PublicKeyInfo is not null:
                    {
                        byte[] sig = S.Sign(Mechanism(CKM.CKM_SHA256_RSA_PKCS), h, message);
                        using var rsa = RSA.Create();
                        rsa.ImportSubjectPublicKeyInfo(b.PublicKeyInfo, out _);
                        return rsa.VerifyData(message, sig, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
                            ? (true, "Signed with the restored key; the signature verifies with the backed-up public key.")
                            : (false, "The restored key's signature does not verify with the backed-up public key.");
                    }
                    case KeyKind.Ec when b.PublicKeyInfo is not null:
                    {
                        byte[] hash = SHA256.HashData(message);
                        byte[] sig = S.Sign(Mechanism(CKM.CKM_ECDSA), h, hash);
                        using var ec = ECDsa.Create();
                        ec.ImportSubjectPublicKeyInfo(b.PublicKeyInfo, out _);
                        return ec.VerifyHash(hash, sig, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)
                            ? (true, "Signed with the restored key; the signature verifies with the backed-up public key.")
                            : (false, "The restored key's signature does not verify with the backed-up public key.");
                    }
                    case KeyKind.Aes:
                    {
                        byte[] block = RandomNumberGenerator.GetBytes(16);
                        byte[] enc = S.Encrypt(Mechanism(CKM.CKM_AES_ECB), h, block);
                        byte[] dec = S.Decrypt(Mechanism(CKM.CKM_AES_ECB), h, enc);
                        if (!dec.AsSpan().SequenceEqual(block))
                            return (false, "The restored AES key does not decrypt what it encrypted.");
                        // The unwrap itself already proved the bytes are the ones wrapped under this
                        // DKEK: RFC 5649 unwrapping checks an integrity value.
                        return (true, "Unwrapped under the DKEK (integrity checked); encrypt/decrypt works.");
                    }
                    default:
                        return (true, "Unwrapped under the DKEK (no public key in the backup to prove it against).");
                }
            }
            catch (Pkcs11Exception ex)
            {
                var e = Pkcs11Errors.Translate(ex, "unwrap the key for the restore test", b);
                return (false, e.Message);
            }
            finally
            {
                if (h is not null) { try { S.DestroyObject(h); } catch (Pkcs11Exception) { } }
            }
        }
    }
}
