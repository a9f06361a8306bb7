using System.Security.Cryptography;
using System.Text;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;
using PicoHsm.Common;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>The DKEK key object on a token, and the data object that records its KCV and proof.</summary>
internal sealed record DkekObjects(IObjectHandle Key, byte[] Id, string? Label, IObjectHandle Proof, byte[] Kcv, byte[] ProofBytes);

/// <summary>
/// Finds, imports, verifies and removes the DKEK of a generic PKCS#11 token: an AES-256 secret key
/// object (sensitive, never extractable, wrap/unwrap only) and next to it a data object recording
/// its KCV and the proof of <see cref="DkekProof"/>. Callers hold the session's gate.
/// </summary>
internal sealed class Pkcs11DkekStore
{
    private static readonly byte[] ProofMagic = Encoding.ASCII.GetBytes("PHDK1");
    private static readonly List<CKA> ValueOnly = new() { CKA.CKA_VALUE };
    private static readonly List<CKA> LabelOnly = new() { CKA.CKA_LABEL };

    /// <summary>
    /// The CKA_ID a DKEK takes when none is given: the ASCII bytes of "dkek" (646b656b), an id no
    /// key generator or CA tool hands out; when an object of any class already has it,
    /// "dkek" followed by 01, 02, … (the first one no object uses).
    /// </summary>
    public static readonly byte[] DefaultIdBase = Encoding.ASCII.GetBytes("dkek");

    private readonly DeviceContext _context;
    private readonly Pkcs11Connection _p11;
    private readonly Pkcs11Mechanisms _mechanisms;
    private readonly Pkcs11HandleCheck _handles;

    /// <summary>
    /// The DKEK this backend proved (the token wrapped the probe key to the recorded proof), shared by
    /// export and restore: afterwards only checked to be the same object with the same id (one
    /// C_GetAttributeValue, <see cref="Pkcs11HandleCheck"/>); finding and proving it is two object scans
    /// and a wrap. A DKEK replaced or deleted by another tool has a new or an invalid handle, and is
    /// found and proven again. Dropped by <see cref="Forget"/> (a listing starts an operation afresh).
    /// </summary>
    private DkekObjects? _proven;

    public Pkcs11DkekStore(DeviceContext context, Pkcs11Connection connection, Pkcs11Mechanisms mechanisms, Pkcs11HandleCheck handles)
    {
        _context = context;
        _p11 = connection;
        _mechanisms = mechanisms;
        _handles = handles;
    }

    /// <summary>The DKEK proven earlier, if its handle still is that object (one handle check); else null, and forgotten.</summary>
    public DkekObjects? Proven()
    {
        if (_proven is not { } d) return null;
        if (_handles.StillIs(d.Key, CKO.CKO_SECRET_KEY, d.Id)) return d;
        _proven = null;
        return null;
    }

    /// <summary>
    /// The DKEK's objects as the last listing's own pass over the token found them (not proven), tried before a
    /// search of the token: its wrap of the probe proves the key, a read of the record that it still says the
    /// same, and neither scans the token's objects (the two searches of <see cref="FindDkek"/>, each a pass over
    /// every object on SoftHSM2: ~22 ms at 1,000 keys, ~110 ms at 5,000). Used once; anything that does not hold,
    /// and the DKEK is found by searching, as before.
    /// </summary>
    private DkekObjects? _listed;

    /// <summary>Forgets the proven DKEK: the next use finds and proves it again.</summary>
    public void Forget() => (_proven, _listed) = (null, null);

    /// <summary>
    /// After a listing: the proof is kept only when the listing's own pass found the very objects it names
    /// (<paramref name="listed"/>: the same key and record handles, id, KCV and proof), since a key's value
    /// cannot change under its handle; otherwise it is forgotten, and the DKEK is found and proven at its next use.
    /// </summary>
    public void KeepOnlyFor(DkekObjects? listed)
    {
        _listed = listed;
        if (_proven is not { } p || listed is null || p.Key.ObjectId != listed.Key.ObjectId || p.Proof.ObjectId != listed.Proof.ObjectId ||
            !p.Id.AsSpan().SequenceEqual(listed.Id) || !p.Kcv.AsSpan().SequenceEqual(listed.Kcv) || !p.ProofBytes.AsSpan().SequenceEqual(listed.ProofBytes))
            _proven = null;
    }

    private ISession S => _p11.Session;

    /// <summary>
    /// The DKEK object and its record. A record whose key was deleted by another tool is an
    /// orphan and ignored; with several candidates, the one the token's wrap proves wins.
    /// </summary>
    public DkekObjects? FindDkek()
    {
        var candidates = new List<DkekObjects>();
        foreach (var data in Find(S, (CKA.CKA_CLASS, CKO.CKO_DATA), (CKA.CKA_APPLICATION, Pkcs11DkekBackend.ProofApplication)))
        {
            var v = Read(S, data, ValueOnly)[CKA.CKA_VALUE]?.GetValueAsByteArray();
            if (!TryParseRecord(v, out byte[] kcv, out byte[] id, out byte[] proof)) continue;
            var keys = FindKeys(id);
            if (keys.Count == 0) continue;
            string? label = Read(S, keys[0], LabelOnly)[CKA.CKA_LABEL]?.GetValueAsString();
            candidates.Add(new DkekObjects(keys[0], id, label, data, kcv, proof));
        }
        if (candidates.Count <= 1) return candidates.Count == 0 ? null : candidates[0];
        foreach (var c in candidates)
        {
            try
            {
                if (Verify(c)) return c;
            }
            catch (Pkcs11Exception) { }
        }
        return candidates[0];
    }

    private List<IObjectHandle> FindKeys(byte[] id) =>
        Find(S, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), (CKA.CKA_KEY_TYPE, CKK.CKK_AES), (CKA.CKA_ID, id));

    /// <summary>Whether the token's DKEK object wraps the probe key to the recorded proof (the DKEK is then <see cref="Proven"/>).</summary>
    public bool Verify(DkekObjects d)
    {
        bool ok = CryptographicOperations.FixedTimeEquals(WrapProbe(d.Key), d.ProofBytes);
        if (ok) _proven = d;
        else if (_proven is { } p && p.Key.ObjectId == d.Key.ObjectId) _proven = null;
        return ok;
    }

    /// <summary>The DKEK, proven to be the one its record names (once: see <see cref="Proven"/>); otherwise an error saying what to do.</summary>
    public DkekObjects RequireVerified()
    {
        if (Proven() is { } proven) return proven;
        if (ProveListed() is { } listed) return listed;
        var d = FindDkek() ?? throw new PicoHsmException(PicoErrorKind.NotFound, "NoDkek",
            $"The token '{_context.TokenLabel}' has no DKEK. Create one with New-PicoDkek or restore it from shares with Import-PicoDkek.", _context);
        if (!Verify(d))
            throw new PicoHsmException(PicoErrorKind.InvalidData, "DkekMismatch",
                $"The DKEK object on '{_context.TokenLabel}' does not match the KCV recorded for it ({KeyCheckValue.ToHex(d.Kcv)}). Something replaced it; re-import the DKEK from its shares.", _context);
        return d;
    }

    /// <summary>
    /// The listing's DKEK objects (<see cref="_listed"/>, taken once) when they still are the DKEK: the record still
    /// holds the id, KCV and proof the listing read, and the key wraps the probe to that proof (it is then
    /// <see cref="Proven"/>). Null when there are none or anything differs (also a handle gone since): the caller
    /// searches the token.
    /// </summary>
    private DkekObjects? ProveListed()
    {
        if (_listed is not { } l) return null;
        _listed = null;
        try
        {
            var v = Read(S, l.Proof, ValueOnly)[CKA.CKA_VALUE]?.GetValueAsByteArray();
            if (!TryParseRecord(v, out byte[] kcv, out byte[] id, out byte[] proof) || !kcv.AsSpan().SequenceEqual(l.Kcv) ||
                !id.AsSpan().SequenceEqual(l.Id) || !proof.AsSpan().SequenceEqual(l.ProofBytes))
                return null;
            return Verify(l) ? l : null;
        }
        catch (Pkcs11Exception)
        {
            return null; // gone since the listing, or the probe cannot be wrapped: the search says which
        }
    }

    /// <summary>The DKEK as Get-PicoDkek shows it.</summary>
    public PicoDkek Describe()
    {
        var listed = ProveListed();
        var d = listed ?? FindDkek();
        if (d is null)
            return new PicoDkek { Present = false, DeviceFamily = DeviceFamily.Pkcs11Token, TokenLabel = _context.TokenLabel, TokenSerial = _context.SerialNumber, Status = "No DKEK on this token" };
        bool verified = false;
        string status;
        try
        {
            verified = listed is not null || Verify(d);
            status = verified ? "Verified" : "Mismatch: the DKEK object does not match its recorded KCV";
        }
        catch (Pkcs11Exception ex) when (ex.RV is CKR.CKR_MECHANISM_INVALID or CKR.CKR_KEY_FUNCTION_NOT_PERMITTED)
        {
            status = "Unverified: the token cannot wrap the probe key";
        }
        return new PicoDkek
        {
            Present = true,
            KeyCheckValue = verified || status.StartsWith("Unverified", StringComparison.Ordinal) ? KeyCheckValue.ToHex(d.Kcv) : null,
            KcvVerified = verified,
            Label = d.Label,
            Id = IdHex(d.Id),
            DeviceFamily = DeviceFamily.Pkcs11Token,
            TokenLabel = _context.TokenLabel,
            TokenSerial = _context.SerialNumber,
            Status = status,
        };
    }

    /// <summary>Whether no object of any class (key, certificate, data object) has this CKA_ID.</summary>
    public bool IsIdFree(byte[] id) => Find(S, (CKA.CKA_ID, id)).Count == 0;

    /// <summary>The id a new DKEK takes when none is given (see <see cref="DefaultIdBase"/>): one no object uses.</summary>
    public byte[] ChooseId()
    {
        if (IsIdFree(DefaultIdBase)) return DefaultIdBase.ToArray();
        for (int n = 1; n <= 255; n++)
        {
            byte[] id = [.. DefaultIdBase, (byte)n];
            if (IsIdFree(id)) return id;
        }
        throw new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
            $"Every id from {IdHex(DefaultIdBase)} to {IdHex(DefaultIdBase)}ff is used on '{_context.TokenLabel}'. Give the DKEK a free id with -Id.", _context);
    }

    /// <summary>
    /// Puts the DKEK on the token. A token that holds another DKEK is refused; the same DKEK is a
    /// no-op (returns false so the caller can warn). An empty <paramref name="id"/> takes
    /// <see cref="ChooseId"/>; a given id that any object already has is refused, so the DKEK
    /// never shares its CKA_ID with a key.
    /// </summary>
    public bool Import(SecretBytes dkek, string label, byte[] id)
    {
        byte[] kcv = KeyCheckValue.Compute(dkek.Span);
        byte[] proof = DkekProof.Compute(dkek.Span);
        (_proven, _listed) = (null, null);
        var existing = FindDkek();
        if (existing is not null)
        {
            if (existing.Kcv.AsSpan().SequenceEqual(kcv) && CryptographicOperations.FixedTimeEquals(WrapProbe(existing.Key), proof))
                return false;
            throw new PicoHsmException(PicoErrorKind.ResourceExists, "OtherDkekPresent",
                $"The token '{_context.TokenLabel}' already holds a DKEK with KCV {KeyCheckValue.ToHex(existing.Kcv)}, not {KeyCheckValue.ToHex(kcv)}. " +
                "Keys backed up under one DKEK cannot be restored under another; use the shares of the token's DKEK, or a fresh token.", _context);
        }
        RemoveOrphanRecords();
        if (id.Length == 0)
            id = ChooseId();
        else if (!IsIdFree(id))
            throw new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
                $"An object with id {IdHex(id)} already exists on '{_context.TokenLabel}'; the DKEK never shares an id with another object. Leave -Id out (a free id is chosen) or give a free one.", IdHex(id));
        _mechanisms.Require(CKM.CKM_AES_KEY_WRAP_PAD, "wrap keys under the DKEK");

        var key = CreateDkekObject(dkek, label, id);
        try
        {
            if (!CryptographicOperations.FixedTimeEquals(WrapProbe(key), proof))
                throw new PicoHsmException(PicoErrorKind.DeviceError, "DkekProofFailed",
                    "The token's wrap of the probe key does not match the expected value; its AES key wrap is not RFC 5649. The DKEK was not kept.", _context);
            S.CreateObject(new List<IObjectAttribute>
            {
                Attr(CKA.CKA_CLASS, CKO.CKO_DATA), Attr(CKA.CKA_TOKEN, true), Attr(CKA.CKA_PRIVATE, true),
                Attr(CKA.CKA_APPLICATION, Pkcs11DkekBackend.ProofApplication), Attr(CKA.CKA_LABEL, label + " KCV"),
                Attr(CKA.CKA_VALUE, BuildRecord(kcv, id, proof)),
            });
        }
        catch
        {
            S.DestroyObject(key);
            throw;
        }
        return true;
    }

    /// <summary>
    /// The DKEK's key object: AES, on the token, private, sensitive, never extractable, wrap/unwrap only,
    /// not modifiable. Created by <see cref="Pkcs11SecretObjectCreator"/>, which zeroes the unmanaged copy
    /// of the value it hands the module; where that path is not available (see there), through
    /// Pkcs11Interop, whose unmanaged copy of the value is freed without zeroing.
    /// </summary>
    private IObjectHandle CreateDkekObject(SecretBytes dkek, string label, byte[] id)
    {
        var template = DkekTemplate(label, id);
        ulong? handle = Pkcs11SecretObjectCreator.TryCreate(_p11.ModulePath, S.SessionId, template, CKA.CKA_VALUE, dkek.Span);
        if (handle is ulong h) return Pkcs11Connection.Factories.ObjectHandleFactory.Create(h);
        var attributes = template.Select(a => Attr(a.Type, a.Value)).ToList();
        attributes.Add(Attr(CKA.CKA_VALUE, dkek.UnsafeArray));
        return S.CreateObject(attributes);
    }

    /// <summary>The DKEK object's attributes but its value, encoded once for either way of creating it.</summary>
    internal static List<EncodedAttribute> DkekTemplate(string label, byte[] id) => new()
    {
        Pkcs11SecretObjectCreator.Encode(CKA.CKA_CLASS, (ulong)CKO.CKO_SECRET_KEY), Pkcs11SecretObjectCreator.Encode(CKA.CKA_KEY_TYPE, (ulong)CKK.CKK_AES),
        Pkcs11SecretObjectCreator.Encode(CKA.CKA_TOKEN, true), Pkcs11SecretObjectCreator.Encode(CKA.CKA_PRIVATE, true),
        Pkcs11SecretObjectCreator.Encode(CKA.CKA_SENSITIVE, true), Pkcs11SecretObjectCreator.Encode(CKA.CKA_EXTRACTABLE, false),
        Pkcs11SecretObjectCreator.Encode(CKA.CKA_WRAP, true), Pkcs11SecretObjectCreator.Encode(CKA.CKA_UNWRAP, true),
        Pkcs11SecretObjectCreator.Encode(CKA.CKA_ENCRYPT, false), Pkcs11SecretObjectCreator.Encode(CKA.CKA_DECRYPT, false),
        Pkcs11SecretObjectCreator.Encode(CKA.CKA_SIGN, false), Pkcs11SecretObjectCreator.Encode(CKA.CKA_VERIFY, false),
        Pkcs11SecretObjectCreator.Encode(CKA.CKA_DERIVE, false), Pkcs11SecretObjectCreator.Encode(CKA.CKA_MODIFIABLE, false),
        Pkcs11SecretObjectCreator.Encode(CKA.CKA_LABEL, label), Pkcs11SecretObjectCreator.Encode(CKA.CKA_ID, id),
    };

    /// <summary>Removes the DKEK and its record (for wiping a token in the drill).</summary>
    public bool Remove()
    {
        (_proven, _listed) = (null, null);
        var d = FindDkek();
        if (d is null) return false;
        S.DestroyObject(d.Key);
        S.DestroyObject(d.Proof);
        return true;
    }

    /// <summary>Records whose DKEK object is gone (deleted with another tool): removed before a new import.</summary>
    private void RemoveOrphanRecords()
    {
        foreach (var data in Find(S, (CKA.CKA_CLASS, CKO.CKO_DATA), (CKA.CKA_APPLICATION, Pkcs11DkekBackend.ProofApplication)))
        {
            var v = Read(S, data, ValueOnly)[CKA.CKA_VALUE]?.GetValueAsByteArray();
            if (TryParseRecord(v, out _, out byte[] id, out _) && FindKeys(id).Count == 0)
                S.DestroyObject(data);
        }
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
            return S.WrapKey(Pkcs11Mechanisms.Create(CKM.CKM_AES_KEY_WRAP_PAD), dkek, probe);
        }
        finally
        {
            S.DestroyObject(probe);
        }
    }

    /// <summary>The record's CKA_VALUE: magic | kcv(8) | id length(1) | id | proof.</summary>
    internal static byte[] BuildRecord(byte[] kcv, byte[] id, byte[] proof)
    {
        var b = new List<byte>(ProofMagic);
        b.AddRange(kcv);
        b.Add((byte)id.Length);
        b.AddRange(id);
        b.AddRange(proof);
        return b.ToArray();
    }

    internal static bool TryParseRecord(byte[]? v, out byte[] kcv, out byte[] id, out byte[] proof)
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
}
