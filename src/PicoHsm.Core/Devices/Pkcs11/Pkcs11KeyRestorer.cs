using System.Security.Cryptography;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>A restore plan with what acting on it needs: the verified DKEK, the objects at the target id.</summary>
internal sealed record Pkcs11RestorePlan(
    RestorePlan Plan, byte[] Id, string? Label, DkekObjects? Dkek, IReadOnlyList<IObjectHandle> Replace,
    IObjectHandle? Present, bool AddPublicKey, bool AddCertificate);

/// <summary>
/// Restore: plans it (same DKEK, mechanism, key type and size, a target id no other object holds,
/// or the very key already there) before anything changes, then unwraps it with C_UnwrapKey and
/// recreates its public key and certificate from the <see cref="Pkcs11RestoreTemplates"/>.
/// Callers hold the context's gate.
/// </summary>
internal sealed class Pkcs11KeyRestorer
{
    private static readonly List<CKA> ClassOnly = new() { CKA.CKA_CLASS };
    private static readonly List<CKA> KeyTypeOnly = new() { CKA.CKA_KEY_TYPE };

    private readonly DeviceContext _context;
    private readonly Pkcs11Connection _p11;
    private readonly Pkcs11Mechanisms _mechanisms;
    private readonly Pkcs11DkekStore _dkek;
    private readonly Pkcs11BackupMac _mac;

    public Pkcs11KeyRestorer(DeviceContext context, Pkcs11Connection connection, Pkcs11Mechanisms mechanisms, Pkcs11DkekStore dkek, Pkcs11BackupMac mac)
    {
        _mac = mac;
        _context = context;
        _p11 = connection;
        _mechanisms = mechanisms;
        _dkek = dkek;
    }

    private ISession S => _p11.Session;

    private string Token => _context.TokenLabel ?? "";

    /// <summary>
    /// The pre-flight, changing nothing on the token: the DKEK is found and proven once, then the
    /// mechanism, the key type and size, and every object that holds the target id (any class): from
    /// <paramref name="index"/> when a batch holds one (see <see cref="Pkcs11IdIndex"/>), else by a search.
    /// </summary>
    public Pkcs11RestorePlan Plan(WrappedKeyFile b, byte[]? newId, string? newLabel, bool force, Pkcs11IdIndex? index = null)
    {
        byte[] id = newId ?? b.Id;
        string? label = newLabel ?? b.Label;
        string idHex = IdHex(id);
        string target = $"id {idHex} on '{Token}'";
        var refusals = new List<PicoHsmException>();

        // The DKEK proven earlier by this backend (a plan, an export), if its handle still is that object
        // (one attribute read): finding it is two object scans and proving it a wrap, per key otherwise.
        var d = _dkek.Proven();
        bool proven = d is not null;
        d ??= _dkek.FindDkek();
        bool dkekOk = false;
        if (d is null)
            refusals.Add(new PicoHsmException(PicoErrorKind.NotFound, "NoDkek",
                $"The token '{Token}' has no DKEK. Import the backup's DKEK ({KeyCheckValue.ToHex(b.WrappingKeyKcv)}) from its shares first (Import-PicoDkek).", target));
        else if (!d.Kcv.AsSpan().SequenceEqual(b.WrappingKeyKcv))
            refusals.Add(new PicoHsmException(PicoErrorKind.InvalidOperation, "DkekMismatch",
                $"The backup was made under DKEK {KeyCheckValue.ToHex(b.WrappingKeyKcv)}, but the token '{Token}' holds DKEK {KeyCheckValue.ToHex(d.Kcv)}. Restore it onto a token that holds the backup's DKEK.", target));
        else if (!proven && !_dkek.Verify(d))
            refusals.Add(new PicoHsmException(PicoErrorKind.InvalidData, "DkekMismatch",
                $"The DKEK object on '{Token}' does not match the KCV recorded for it ({KeyCheckValue.ToHex(d.Kcv)}). Something replaced it; re-import the DKEK from its shares.", target));
        else
            dkekOk = true;

        // A version 2 file's tag, checked by the token under the DKEK before anything else reads the
        // file's attributes: a changed label, id, key type or usage flag refuses the restore here.
        if (dkekOk && b.Authentication is not null && !_mac.Verify(b, d!))
        {
            refusals.Add(new PicoHsmException(PicoErrorKind.InvalidData, "BackupTampered",
                $"The backup {(b.SourceName is null ? "" : $"'{b.SourceName}' ")}has been changed since it was made: its authentication tag (HMAC-SHA256 under a key wrapped by DKEK {KeyCheckValue.ToHex(d!.Kcv)}) does not verify, " +
                "so its label, id, key type or usage flags cannot be trusted. Nothing was restored; restore from another copy of the backup.", target));
            return new Pkcs11RestorePlan(RestorePlan.Refuse(idHex, label, target, refusals.ToArray()), id, label, d, new List<IObjectHandle>(), null, false, false);
        }

        bool mechanismOk = Enum.TryParse(b.WrapMechanism, out CKM mech) && _mechanisms.Supports(mech);
        if (!mechanismOk)
            refusals.Add(new PicoHsmException(PicoErrorKind.NotSupported, "MechanismNotSupported",
                $"The token '{Token}' does not offer {b.WrapMechanism}, the mechanism the key was wrapped with; restore it onto a token that does.", target));
        CheckKeyType(b, target, refusals);

        var at = Occupancy(b, id, d, target, refusals, force, dkekOk && mechanismOk ? mech : null, index, out var replace, out var present, out string? replaces);
        if (refusals.Count > 0)
            return new Pkcs11RestorePlan(RestorePlan.Refuse(idHex, label, target, refusals.ToArray()), id, label, d, replace, null, false, false);
        if (present is not null)
        {
            bool addPublic = b.KeyClass == KeyClass.Private && b.PublicKeyInfo is not null && !at.Contains(CKO.CKO_PUBLIC_KEY);
            bool addCert = b.Certificate is not null && !at.Contains(CKO.CKO_CERTIFICATE);
            string? completes = (addPublic, addCert) switch
            {
                (true, true) => "its public key and certificate",
                (true, false) => "its public key",
                (false, true) => "its certificate",
                _ => null,
            };
            var existing = DescribeAt(present, id, b.KeyClass == KeyClass.Secret, index);
            var plan = new RestorePlan(RestoreAction.AlreadyPresent, idHex, label, target, Existing: WithSize(existing, b)) { Completes = completes };
            return new Pkcs11RestorePlan(plan, id, label, d, replace, present, addPublic, addCert);
        }
        var action = replace.Count > 0 ? RestoreAction.Replace : RestoreAction.Create;
        return new Pkcs11RestorePlan(new RestorePlan(action, idHex, label, target, replaces), id, label, d, replace, null, false, false);
    }

    private void CheckKeyType(WrappedKeyFile b, string target, List<PicoHsmException> refusals)
    {
        var (gen, unit) = b.KeyKind switch
        {
            KeyKind.Rsa => (CKM.CKM_RSA_PKCS_KEY_PAIR_GEN, "bits"),
            KeyKind.Ec => (CKM.CKM_EC_KEY_PAIR_GEN, "bits"),
            KeyKind.Aes => (CKM.CKM_AES_KEY_GEN, "bytes"),
            KeyKind.GenericSecret => (CKM.CKM_GENERIC_SECRET_KEY_GEN, "bits"),
            _ => (CKM.CKM_VENDOR_DEFINED, ""),
        };
        if (gen == CKM.CKM_VENDOR_DEFINED || !_mechanisms.Supports(gen))
        {
            refusals.Add(new PicoHsmException(PicoErrorKind.NotSupported, "KeyTypeNotSupported",
                $"The token '{Token}' does not support {b.KeyKind} keys; restore this backup onto a token that does.", target));
            return;
        }
        if (_mechanisms.Info(gen) is not { } info || b.SizeBits <= 0) return; // no size information: the unwrap decides
        ulong size = b.KeyKind == KeyKind.Aes ? (ulong)(b.SizeBits / 8) : (ulong)b.SizeBits;
        // Modules disagree on units (SoftHSM2 gives AES in bytes, others bits): accept either reading.
        ulong alt = b.KeyKind == KeyKind.Aes ? (ulong)b.SizeBits : size;
        bool inRange(ulong v) => (info.MinKeySize == 0 || v >= info.MinKeySize) && (info.MaxKeySize == 0 || v <= info.MaxKeySize);
        if (!inRange(size) && !inRange(alt))
            refusals.Add(new PicoHsmException(PicoErrorKind.NotSupported, "KeySizeNotSupported",
                $"The token '{Token}' supports {b.KeyKind} keys of {info.MinKeySize}-{info.MaxKeySize} {unit}, not {b.SizeBits} bits; restore this backup onto a token that does.", target));
    }

    /// <summary>
    /// Every object holding <paramref name="id"/>, by class. The DKEK's id refuses (even with -Force); an
    /// object that is not of the backup's kind (another key class, a data object) refuses; the backup's
    /// very key is <paramref name="present"/>; another key of its class refuses without -Force and is
    /// replaced (with its public key and certificate) with it.
    /// </summary>
    private HashSet<CKO> Occupancy(WrappedKeyFile b, byte[] id, DkekObjects? d, string target, List<PicoHsmException> refusals, bool force,
        CKM? proofMechanism, Pkcs11IdIndex? index, out List<IObjectHandle> replace, out IObjectHandle? present, out string? replaces)
    {
        replace = new List<IObjectHandle>();
        present = null;
        replaces = null;
        string idHex = IdHex(id);
        const string Advice = "Restore it under another id (Import-PicoWrappedKey -Id <free id>)";
        if (d is not null && d.Id.AsSpan().SequenceEqual(id))
        {
            refusals.Add(new PicoHsmException(PicoErrorKind.ResourceExists, "IdIsDkek",
                $"Id {idHex} on '{Token}' is the token's DKEK '{d.Label}' (KCV {KeyCheckValue.ToHex(d.Kcv)}, with its KCV record): a restore never replaces the DKEK, not even with -Force. {Advice}.", target));
            return new HashSet<CKO>();
        }
        var objects = new List<IObjectHandle>();
        var objectClasses = new List<CKO>();
        if (index is not null)
        {
            foreach (var (h, c) in index.At(id)) { objects.Add(h); objectClasses.Add(c); }
        }
        else
        {
            objects = Find(S, (CKA.CKA_ID, id));
            foreach (var h in objects)
                objectClasses.Add((CKO)(Read(S, h, ClassOnly)[CKA.CKA_CLASS]?.GetValueAsUlong() ?? (ulong)CKO.CKO_VENDOR_DEFINED));
        }
        var classes = new HashSet<CKO>();
        if (objects.Count == 0) return classes;
        CKO keyClass = Pkcs11RestoreTemplates.ObjectClass(b);
        var keys = new List<IObjectHandle>();
        var foreign = new List<CKO>();
        for (int i = 0; i < objects.Count; i++)
        {
            var h = objects[i];
            var cko = objectClasses[i];
            classes.Add(cko);
            if (cko == keyClass) keys.Add(h);
            else if (cko == CKO.CKO_CERTIFICATE || (cko == CKO.CKO_PUBLIC_KEY && keyClass == CKO.CKO_PRIVATE_KEY)) { }
            else foreign.Add(cko);
        }
        if (foreign.Count > 0)
        {
            refusals.Add(new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
                $"Id {idHex} on '{Token}' is used by {string.Join(", ", foreign.Distinct().Select(Name))}, not a {Name(keyClass)}; -Force replaces only a key of the backup's class, so nothing was changed. {Advice}, or remove that object.", target));
            return classes;
        }
        if (keys.Count == 1 && IsSameKey(b, keys[0], id, proofMechanism, d, index))
        {
            present = keys[0];
            return classes;
        }
        string what = keys.Count > 0
            ? DescribeOccupant(keys[0], id, b, index)
            : $"the {string.Join(" and ", classes.Select(Name))} with that id (no {Name(keyClass)})";
        if (!force)
        {
            refusals.Add(new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
                $"Id {idHex} is already used on '{Token}' by {what}. {Advice}, or use -Force to replace that key.", target));
            return classes;
        }
        replace.AddRange(objects);
        replaces = what;
        return classes;
    }

    private string DescribeOccupant(IObjectHandle key, byte[] id, WrappedKeyFile b, Pkcs11IdIndex? index)
    {
        var k = DescribeAt(key, id, b.KeyClass == KeyClass.Secret, index);
        return $"{(k.Class == "SecretKey" ? "secret" : "private")} key {k.Id} '{k.Label}' ({k.KeyType}{(k.Size > 0 ? "-" + k.Size : "")})";
    }

    /// <summary>
    /// The key at <paramref name="id"/> described, its public key and certificate taken from
    /// <paramref name="index"/> when there is one (a search each otherwise: a read of every object on
    /// SoftHSM2, per planned file). A planning snapshot may be older than the token: when its handles no
    /// longer read, the key is described by searches after all.
    /// </summary>
    private PicoKey DescribeAt(IObjectHandle key, byte[] id, bool secret, Pkcs11IdIndex? index)
    {
        if (index is null) return Pkcs11KeyStore.Describe(_context, S, key, secret);
        IObjectHandle? publicKey = null;
        bool certificate = false;
        foreach (var (h, c) in index.At(id))
        {
            if (c == CKO.CKO_PUBLIC_KEY) publicKey ??= h;
            else if (c == CKO.CKO_CERTIFICATE) certificate = true;
        }
        try { return Pkcs11KeyStore.Describe(_context, S, key, secret, publicKey, certificate); }
        catch (PicoHsmException) { return Pkcs11KeyStore.Describe(_context, S, key, secret); }
    }

    private static string Name(CKO c) => c switch
    {
        CKO.CKO_PRIVATE_KEY => "private key",
        CKO.CKO_SECRET_KEY => "secret key",
        CKO.CKO_PUBLIC_KEY => "public key",
        CKO.CKO_CERTIFICATE => "certificate",
        CKO.CKO_DATA => "data object",
        _ => c.ToString(),
    };

    /// <summary>
    /// Whether the key at the id is the backup's key. A private key: its public key (from its public key
    /// object, or RSA's modulus and exponent on the private key) is the backup's SubjectPublicKeyInfo. A
    /// secret key: the token wraps it under the DKEK with the backup's mechanism, and the bytes equal the
    /// backup's wrapped key (AES key wrap is deterministic, so equal bytes prove the same key value). A key
    /// the token will not wrap (not extractable) cannot be proven the same and counts as another key.
    /// </summary>
    private bool IsSameKey(WrappedKeyFile b, IObjectHandle key, byte[] id, CKM? mechanism, DkekObjects? d, Pkcs11IdIndex? index)
    {
        if (b.KeyClass == KeyClass.Private)
        {
            if (b.PublicKeyInfo is null) return false;
            var k = DescribeAt(key, id, secret: false, index);
            return k.PublicKeyInfo is not null && k.PublicKeyInfo.AsSpan().SequenceEqual(b.PublicKeyInfo);
        }
        if (mechanism is null || d is null) return false;
        var ckk = Read(S, key, KeyTypeOnly)[CKA.CKA_KEY_TYPE]?.GetValueAsUlong();
        var want = b.KeyKind == KeyKind.Aes ? CKK.CKK_AES : CKK.CKK_GENERIC_SECRET;
        if (ckk != (ulong)want) return false;
        try
        {
            byte[] wrapped = S.WrapKey(Pkcs11Mechanisms.Create(mechanism.Value), d.Key, key);
            return CryptographicOperations.FixedTimeEquals(wrapped, b.WrappedKey);
        }
        catch (Pkcs11Exception)
        {
            return false;
        }
    }

    /// <summary>
    /// Plans again (under the gate and the token lock the caller holds) and acts on that plan; throws its
    /// first refusal. <paramref name="index"/>, a batch's (taken under that lock), is kept current with
    /// every object made or destroyed here.
    /// </summary>
    public PicoKey Restore(WrappedKeyFile b, byte[]? newId, string? newLabel, bool force, Pkcs11IdIndex? index = null)
    {
        Pkcs11RestorePlan p;
        try { p = Plan(b, newId, newLabel, force, index); }
        catch (Pkcs11Exception ex) { throw Pkcs11Errors.Translate(ex, $"check the restore of key {IdHex(newId ?? b.Id)}", b); }
        if (p.Plan.IsRefused) throw p.Plan.Refusals[0];
        byte[] id = p.Id;
        IObjectHandle handle;
        try
        {
            if (p.Present is not null)
            {
                // An interrupted restore may have left the key without its public key or certificate.
                // (Made first, then filed: "index?.Added(id, S.CreateObject(...))" would skip the create without an index.)
                if (p.AddPublicKey)
                {
                    var pub = S.CreateObject(Pkcs11RestoreTemplates.PublicKey(b, id, p.Label));
                    index?.Added(id, pub, CKO.CKO_PUBLIC_KEY);
                }
                if (p.AddCertificate)
                {
                    var cert = S.CreateObject(Pkcs11RestoreTemplates.Certificate(b, id));
                    index?.Added(id, cert, CKO.CKO_CERTIFICATE);
                }
                handle = p.Present;
            }
            else
            {
                handle = Unwrap(b, p, index, out var publicKey);
                // Described from the objects just made: no search for its public key or certificate.
                return WithSize(Pkcs11KeyStore.Describe(_context, S, handle, secret: b.KeyClass == KeyClass.Secret, publicKey, hasCertificate: b.Certificate is not null, knownSizeBits: b.SizeBits), b);
            }
        }
        catch (Pkcs11Exception ex)
        {
            throw Pkcs11Errors.Translate(ex, $"restore key {IdHex(id)}", b);
        }
        // The restored key read by its handle: a listing per restored key would make a
        // Restore-PicoHsm of n keys quadratic in n.
        return WithSize(DescribeAt(handle, id, b.KeyClass == KeyClass.Secret, index), b);
    }

    private static PicoKey WithSize(PicoKey k, WrappedKeyFile b) => k.Size == 0 ? k with { Size = b.SizeBits } : k;

    private IObjectHandle Unwrap(WrappedKeyFile b, Pkcs11RestorePlan p, Pkcs11IdIndex? index, out IObjectHandle? publicKey)
    {
        publicKey = null;
        byte[] id = p.Id;
        var dkek = p.Dkek!;
        var old = p.Replace;
        // Unwrap under a temporary id while an old key still holds the target id, so that
        // there is never a moment with neither key on the token.
        byte[] unwrapId = old.Count > 0 ? RandomNumberGenerator.GetBytes(16) : id;
        var mech = Enum.Parse<CKM>(b.WrapMechanism);
        var handle = UnwrapKey(b, mech, dkek, unwrapId, p.Label);
        var created = new List<IObjectHandle> { handle };
        var createdClasses = new List<CKO> { Pkcs11RestoreTemplates.ObjectClass(b) };
        try
        {
            if (b.KeyClass == KeyClass.Private && b.PublicKeyInfo is not null)
            {
                created.Add(publicKey = S.CreateObject(Pkcs11RestoreTemplates.PublicKey(b, unwrapId, p.Label)));
                createdClasses.Add(CKO.CKO_PUBLIC_KEY);
            }
            if (b.Certificate is not null)
            {
                created.Add(S.CreateObject(Pkcs11RestoreTemplates.Certificate(b, unwrapId)));
                createdClasses.Add(CKO.CKO_CERTIFICATE);
            }
        }
        catch
        {
            foreach (var h in created) { try { S.DestroyObject(h); } catch (Pkcs11Exception) { } }
            throw;
        }
        if (old.Count == 0)
        {
            if (index is not null) for (int i = 0; i < created.Count; i++) index.Added(id, created[i], createdClasses[i]);
            return handle;
        }
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
        if (index is not null) for (int i = 0; i < created.Count; i++) index.Added(id, created[i], createdClasses[i]);
        foreach (var h in old)
        {
            S.DestroyObject(h);
            index?.Removed(id, h);
        }
        return handle;
    }

    /// <summary>
    /// C_UnwrapKey with the key's length in the template for a secret key (a token that does not
    /// take CKA_VALUE_LEN at unwrap is asked again without it). Not on SoftHSM2: it refuses the
    /// attribute (CKR_ATTRIBUTE_READ_ONLY, at unwrap and after it) and the refused C_UnwrapKey
    /// leaves a half-made object behind; its keys are measured by the key store instead
    /// (Pkcs11KeyStore.SecretKeyRuler), so they still list with their size.
    /// </summary>
    private IObjectHandle UnwrapKey(WrappedKeyFile b, CKM mech, DkekObjects dkek, byte[] id, string? label)
    {
        var template = Pkcs11RestoreTemplates.Unwrap(b, id, label, onToken: true, forTest: false);
        bool softHsm = _context.Token.Manufacturer?.StartsWith("SoftHSM", StringComparison.OrdinalIgnoreCase) == true;
        if (softHsm || b.KeyClass != KeyClass.Secret || b.SizeBits <= 0 || b.SizeBits % 8 != 0)
            return S.UnwrapKey(Pkcs11Mechanisms.Create(mech), dkek.Key, b.WrappedKey, template);
        var length = Attr(CKA.CKA_VALUE_LEN, (ulong)(b.SizeBits / 8));
        try
        {
            return S.UnwrapKey(Pkcs11Mechanisms.Create(mech), dkek.Key, b.WrappedKey, new List<IObjectAttribute>(template) { length });
        }
        catch (Pkcs11Exception ex) when (ex.RV is CKR.CKR_TEMPLATE_INCONSISTENT or CKR.CKR_ATTRIBUTE_READ_ONLY or CKR.CKR_ATTRIBUTE_TYPE_INVALID or CKR.CKR_ATTRIBUTE_VALUE_INVALID)
        {
            return S.UnwrapKey(Pkcs11Mechanisms.Create(mech), dkek.Key, b.WrappedKey, template);
        }
    }
}
