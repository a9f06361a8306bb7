using System.Security.Cryptography;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// Restore: checks that a backup fits the token (same DKEK, mechanism, key type and size, free id)
/// before anything changes, then unwraps it with C_UnwrapKey and recreates its public key and
/// certificate from the <see cref="Pkcs11RestoreTemplates"/>.
/// </summary>
internal sealed class Pkcs11KeyRestorer
{
    private readonly DeviceContext _context;
    private readonly Pkcs11Connection _p11;
    private readonly Pkcs11Mechanisms _mechanisms;
    private readonly Pkcs11DkekStore _dkek;

    public Pkcs11KeyRestorer(DeviceContext context, Pkcs11Connection connection, Pkcs11Mechanisms mechanisms, Pkcs11DkekStore dkek)
    {
        _context = context;
        _p11 = connection;
        _mechanisms = mechanisms;
        _dkek = dkek;
    }

    private ISession S => _p11.Session;

    /// <summary>Everything that stops a restore, checked before anything on the token changes. Empty: compatible.</summary>
    public List<string> CheckCompatibility(WrappedKeyFile backup, byte[]? targetId, bool force, out bool dkekMatches)
    {
        var problems = new List<string>();
        dkekMatches = false;
        lock (_context.Gate)
        {
            var d = _dkek.FindDkek();
            if (d is null)
                problems.Add($"The token '{_context.TokenLabel}' has no DKEK; import it from its shares first (Import-PicoDkek).");
            else if (!d.Kcv.AsSpan().SequenceEqual(backup.WrappingKeyKcv))
                problems.Add($"The backup was made under DKEK {KeyCheckValue.ToHex(backup.WrappingKeyKcv)}, but the token's DKEK is {KeyCheckValue.ToHex(d.Kcv)}.");
            else if (!_dkek.Verify(d))
                problems.Add($"The token's DKEK object does not match its recorded KCV {KeyCheckValue.ToHex(d.Kcv)}.");
            else
                dkekMatches = true;

            if (!Enum.TryParse(backup.WrapMechanism, out CKM mech) || !_mechanisms.Supports(mech))
                problems.Add($"The token does not offer {backup.WrapMechanism}, the mechanism the key was wrapped with.");

            var (gen, unit) = backup.KeyKind switch
            {
                KeyKind.Rsa => (CKM.CKM_RSA_PKCS_KEY_PAIR_GEN, "bits"),
                KeyKind.Ec => (CKM.CKM_EC_KEY_PAIR_GEN, "bits"),
                KeyKind.Aes => (CKM.CKM_AES_KEY_GEN, "bytes"),
                KeyKind.GenericSecret => (CKM.CKM_GENERIC_SECRET_KEY_GEN, "bits"),
                _ => (CKM.CKM_VENDOR_DEFINED, ""),
            };
            if (gen == CKM.CKM_VENDOR_DEFINED || !_mechanisms.Supports(gen))
                problems.Add($"The token does not support {backup.KeyKind} keys.");
            else if (_mechanisms.Info(gen) is { } info) // no size information: let the unwrap decide
            {
                ulong size = backup.KeyKind == KeyKind.Aes && unit == "bytes" ? (ulong)(backup.SizeBits / 8) : (ulong)backup.SizeBits;
                // Modules disagree on units (SoftHSM2 gives AES in bytes, others bits): accept either reading.
                ulong alt = backup.KeyKind == KeyKind.Aes ? (ulong)backup.SizeBits : size;
                bool inRange(ulong v) => (info.MinKeySize == 0 || v >= info.MinKeySize) && (info.MaxKeySize == 0 || v <= info.MaxKeySize);
                if (backup.SizeBits > 0 && !inRange(size) && !inRange(alt))
                    problems.Add($"The token supports {backup.KeyKind} keys of {info.MinKeySize}-{info.MaxKeySize} {unit}, not {backup.SizeBits} bits.");
            }

            byte[] id = targetId ?? backup.Id;
            if (Find(S, (CKA.CKA_CLASS, Pkcs11RestoreTemplates.ObjectClass(backup)), (CKA.CKA_ID, id)).Count > 0 && !force)
                problems.Add($"Id {IdHex(id)} is already used by a key on '{_context.TokenLabel}'. Restore with -Id <another id>, or -Force to replace that key.");
        }
        return problems;
    }

    /// <summary>Restores a key. Checks compatibility first; with <paramref name="force"/> an occupied id is replaced only after the new key exists.</summary>
    public PicoKey Restore(WrappedKeyFile b, byte[]? newId, string? newLabel, bool force)
    {
        var problems = CheckCompatibility(b, newId, force, out _);
        if (problems.Count > 0)
            throw new PicoHsmException(problems[0].Contains("already used") ? PicoErrorKind.ResourceExists : PicoErrorKind.InvalidOperation,
                problems[0].Contains("already used") ? "IdInUse" : problems[0].Contains("DKEK") ? "DkekMismatch" : "Incompatible",
                string.Join(" ", problems), b);
        byte[] id = newId ?? b.Id;
        string? label = newLabel ?? b.Label;
        lock (_context.Gate)
        {
            IObjectHandle handle;
            try
            {
                var dkek = _dkek.RequireVerified();
                var cko = Pkcs11RestoreTemplates.ObjectClass(b);
                var old = Find(S, (CKA.CKA_CLASS, cko), (CKA.CKA_ID, id));
                var oldPublic = Find(S, (CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY), (CKA.CKA_ID, id));
                var oldCert = Find(S, (CKA.CKA_CLASS, CKO.CKO_CERTIFICATE), (CKA.CKA_ID, id));
                if (old.Count > 0 && !force)
                    throw new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
                        $"Id {IdHex(id)} is already used by a key on '{_context.TokenLabel}'. Restore with -Id <another id>, or -Force to replace that key.", b);
                // Unwrap under a temporary id while an old key still holds the target id, so that
                // there is never a moment with neither key on the token.
                byte[] unwrapId = old.Count > 0 ? RandomNumberGenerator.GetBytes(16) : id;
                var mech = Enum.Parse<CKM>(b.WrapMechanism);
                handle = S.UnwrapKey(Pkcs11Mechanisms.Create(mech), dkek.Key, b.WrappedKey,
                    Pkcs11RestoreTemplates.Unwrap(b, unwrapId, label, onToken: true, forTest: false));
                var created = new List<IObjectHandle> { handle };
                try
                {
                    if (b.KeyClass == KeyClass.Private && b.PublicKeyInfo is not null)
                        created.Add(S.CreateObject(Pkcs11RestoreTemplates.PublicKey(b, unwrapId, label)));
                    if (b.Certificate is not null)
                        created.Add(S.CreateObject(Pkcs11RestoreTemplates.Certificate(b, unwrapId)));
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
                    foreach (var h in old) S.DestroyObject(h);
                    foreach (var h in oldPublic) S.DestroyObject(h);
                    foreach (var h in oldCert) S.DestroyObject(h);
                }
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, $"restore key {IdHex(id)}", b);
            }
            // The restored key read by its handle: a listing per restored key would make a
            // Restore-PicoHsm of n keys quadratic in n.
            var restored = Pkcs11KeyStore.Describe(_context, S, handle, secret: b.KeyClass == KeyClass.Secret);
            return restored.Size == 0 ? restored with { Size = b.SizeBits } : restored;
        }
    }
}
