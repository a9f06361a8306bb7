using System.Security.Cryptography;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Backup;
using PicoHsm.Keys;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// Test-PicoKeyBackup on a generic token: the compatibility check, and with -RestoreTest a proof
/// that the backup unwraps under the DKEK into a key that works and is the key that was backed up.
/// </summary>
internal sealed class Pkcs11RestoreTest
{
    private readonly DeviceContext _context;
    private readonly Pkcs11Connection _p11;
    private readonly Pkcs11DkekStore _dkek;
    private readonly Pkcs11KeyRestorer _restorer;

    private readonly Func<Pkcs11IdIndex?> _planIndex;

    /// <param name="planIndex">The index an open planning scope or restore batch plans from (null: a search per plan).</param>
    public Pkcs11RestoreTest(DeviceContext context, Pkcs11Connection connection, Pkcs11DkekStore dkek, Pkcs11KeyRestorer restorer, Func<Pkcs11IdIndex?> planIndex)
    {
        _planIndex = planIndex;
        _context = context;
        _p11 = connection;
        _dkek = dkek;
        _restorer = restorer;
    }

    private ISession S => _p11.Session;

    public PicoBackupTestResult Test(PicoKeyBackup b, bool restoreTest)
    {
        if (b.Content is null)
            return new PicoBackupTestResult
            {
                Path = b.Path, Id = b.Id, Label = b.Label, Kcv = b.Kcv, Valid = true, Compatible = false, Restorable = restoreTest ? false : null,
                Problems = new[] { "An sc-hsm-tool backup restores only onto a SmartCard-HSM / Pico HSM, not onto this PKCS#11 token." },
            };
        // The restore's own pre-flight: what Restore-PicoHsm and Import-PicoWrappedKey would refuse is a
        // problem here too. The very key already at its id is not (the plan says AlreadyPresent).
        RestorePlan plan;
        lock (_context.Gate)
        {
            try { plan = _restorer.Plan(b.Content, null, null, force: false, _planIndex()).Plan; }
            catch (Pkcs11Exception ex) { throw Pkcs11Errors.Translate(ex, "check the backup against the token", b); }
        }
        var problems = plan.Refusals.Select(r => r.Message).ToList();
        bool tampered = plan.Refusals.Any(r => r.Reason == "BackupTampered");
        bool match = !plan.Refusals.Any(r => r.Reason is "NoDkek" or "DkekMismatch");
        bool? restorable = null;
        string? detail = null;
        if (restoreTest)
        {
            // An occupied id does not stop the proof: it unwraps into a session object, not at that id.
            if (match && !tampered && plan.Refusals.All(r => r.Kind == PicoHsm.Common.PicoErrorKind.ResourceExists))
            {
                (bool ok, detail) = Run(b.Content);
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
            Path = b.Path, Id = b.Id, Label = b.Label, Kcv = b.Kcv, Valid = !tampered, DkekMatch = match, Compatible = !plan.IsRefused,
            Restorable = restorable, Problems = problems.ToArray(), Detail = detail,
            Warnings = b.AuthenticationWarning is { } w ? new[] { w } : Array.Empty<string>(),
        };
    }

    /// <summary>
    /// Unwraps the backup into a session object (gone when the session closes, destroyed here at
    /// once), proves it is the key that was backed up, and reports what it proved.
    /// </summary>
    public (bool Restorable, string Detail) Run(WrappedKeyFile b)
    {
        lock (_context.Gate)
        {
            IObjectHandle? h = null;
            try
            {
                var dkek = _dkek.RequireVerified();
                h = S.UnwrapKey(Pkcs11Mechanisms.Create(Enum.Parse<CKM>(b.WrapMechanism)), dkek.Key, b.WrappedKey,
                    Pkcs11RestoreTemplates.Unwrap(b, RandomNumberGenerator.GetBytes(8), "PicoHsm restore test", onToken: false, forTest: true));
                byte[] message = RandomNumberGenerator.GetBytes(64);
                switch (b.KeyKind)
                {
                    case KeyKind.Rsa when b.PublicKeyInfo is not null:
                    {
                        byte[] sig = S.Sign(Pkcs11Mechanisms.Create(CKM.CKM_SHA256_RSA_PKCS), h, message);
                        using var rsa = RSA.Create();
                        rsa.ImportSubjectPublicKeyInfo(b.PublicKeyInfo, out _);
                        return rsa.VerifyData(message, sig, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
                            ? (true, "Signed with the restored key; the signature verifies with the backed-up public key.")
                            : (false, "The restored key's signature does not verify with the backed-up public key.");
                    }
                    case KeyKind.Ec when b.PublicKeyInfo is not null:
                    {
                        byte[] hash = SHA256.HashData(message);
                        byte[] sig = S.Sign(Pkcs11Mechanisms.Create(CKM.CKM_ECDSA), h, hash);
                        using var ec = ECDsa.Create();
                        ec.ImportSubjectPublicKeyInfo(b.PublicKeyInfo, out _);
                        return ec.VerifyHash(hash, sig, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)
                            ? (true, "Signed with the restored key; the signature verifies with the backed-up public key.")
                            : (false, "The restored key's signature does not verify with the backed-up public key.");
                    }
                    case KeyKind.Aes:
                    {
                        byte[] block = RandomNumberGenerator.GetBytes(16);
                        byte[] enc = S.Encrypt(Pkcs11Mechanisms.Create(CKM.CKM_AES_ECB), h, block);
                        byte[] dec = S.Decrypt(Pkcs11Mechanisms.Create(CKM.CKM_AES_ECB), h, enc);
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
