using System.Security.Cryptography;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;
using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>
/// Whether a backup fits the card (DKEK, key type, room, id) and, with a restore test, whether the key
/// really comes back: unwrapped into a free reference, used, and deleted again.
/// </summary>
internal sealed class ScHsmCardRestoreTest(ScHsmCard card, ScHsmCardPin pin, ScHsmCardTransactions calls, ScHsmCardDkek dkek, ScHsmCardCatalogue catalogue, ScHsmCardRestorePlanner planner)
{
    private readonly ScHsmCardRestorePlanner _planner = planner;
    private readonly ScHsmCard _card = card;
    private readonly ScHsmCardPin _pin = pin;
    private readonly ScHsmCardTransactions _calls = calls;
    private readonly ScHsmCardDkek _dkek = dkek;
    private readonly ScHsmCardCatalogue _catalogue = catalogue;

    /// <summary>
    /// DKEK match and compatibility; with <paramref name="restoreTest"/> the key is unwrapped into a free key
    /// reference, used (a signature verified against the backup's public key; AES: the card's CMAC check at
    /// unwrap), and deleted again whatever happened.
    /// </summary>
    public PicoBackupTestResult Test(PicoKeyBackup backup, bool restoreTest)
    {
        ArgumentNullException.ThrowIfNull(backup);
        ScHsmParsedBackup p;
        try
        {
            p = ScHsmParsedBackup.Parse(backup);
        }
        catch (PicoHsmException ex)
        {
            // A .pkb backup is a valid file for generic tokens, only not one this card restores.
            bool isPkb = backup.ScHsmFile is null;
            return new PicoBackupTestResult
            {
                Path = backup.Path, Id = backup.Id, Label = backup.Label, Kcv = backup.Kcv, Valid = isPkb, Compatible = false,
                Problems = new[] { ex.Message },
            };
        }
        var problems = new List<string>();
        var details = new List<string>();
        bool? dkekMatch = null;
        bool compatible = true;
        bool? restorable = null;
        try
        {
            _calls.Run($"test '{backup.Path}'", () =>
            {
                var pin = _pin.Prepare();
                _pin.RequireInitialised(pin);
                if (pin.State == ScHsmPinState.NotVerified && _pin.HasCopy) _pin.VerifyWithCopy();
                var domains = _dkek.ReadDomains();
                var complete = domains.Where(d => d.IsComplete).ToList();
                if (complete.Any(d => d.KcvHex == p.Blob.KcvHex)) dkekMatch = true;
                else if (complete.Any(d => d.Kcv is null))
                    problems.Add($"The card's DKEK KCV is unknown until the user PIN is verified; connect with the PIN to compare it with the backup's {p.Blob.KcvHex}.");
                else
                {
                    dkekMatch = false;
                    problems.Add($"The backup was wrapped under the DKEK with KCV {p.Blob.KcvHex}, but the card holds {ScHsmCardDkek.DomainKcvs(domains)}.");
                }
                if (!p.IsUnwrappableKeyType)
                {
                    compatible = false;
                    problems.Add($"Key type {(byte)p.Blob.KeyType:X2} cannot be unwrapped by the card.");
                }
                if (!p.Blob.HasPicoDefaultAlgorithm)
                    details.Add("The blob's default algorithm is not the one the Pico HSM firmware expects; a Pico HSM may refuse it (a CardContact SmartCard-HSM accepts it).");
                var fids = new HashSet<ushort>(_card.EnumerateObjects());
                byte? free = _catalogue.FirstFreeReference(fids, fromTop: true);
                if (free is null)
                {
                    compatible = false;
                    problems.Add("Every key reference on the card is in use; there is no room to restore the key.");
                }
                // The restore's own pre-flight: what a plain restore would refuse is a problem here too (the DKEK and
                // key type are reported above). The same key already on the card is no problem: a restore has nothing to do.
                // The restore test below still runs: it proves the file itself, at a free reference, whatever the id.
                bool targetRefused = false;
                if (dkekMatch == true && compatible && (pin.State == ScHsmPinState.Verified || _pin.HasCopy))
                {
                    var (plan, _) = _planner.Plan(backup, p, new RestoreRequest());
                    foreach (var refusal in plan.Refusals.Where(r => r.Reason is not ("DkekMismatch" or "KeyTypeNotSupported" or "NoFreeKeyReference")))
                    {
                        targetRefused = true;
                        problems.Add(refusal.Message);
                    }
                    if (plan.Action == RestoreAction.AlreadyPresent)
                        details.Add($"The key is already on the card ({plan.Target}): a restore has nothing to do.");
                }

                if (restoreTest && dkekMatch == true && compatible && free is byte tmp)
                {
                    _pin.EnsureVerified();
                    var (ok, detail) = RestoreTest(tmp, p, problems);
                    restorable = ok;
                    details.Add(detail);
                }
                else if (restoreTest)
                {
                    restorable = false;
                    problems.Add(dkekMatch is null
                        ? "The restore test was not run: the card's DKEK could not be compared (verify the user PIN)."
                        : "The restore test was not run: the DKEK does not match, or the key cannot be restored here.");
                }
                if (targetRefused) compatible = false;
                return 0;
            });
        }
        catch (PicoHsmException ex)
        {
            problems.Add(ex.Message);
            if (restoreTest) restorable ??= false;
        }
        return new PicoBackupTestResult
        {
            Path = backup.Path,
            Id = p.Description?.Id is { } i ? Convert.ToHexString(i).ToLowerInvariant() : backup.Id,
            Label = p.Description?.Label ?? backup.Label,
            Kcv = p.Blob.KcvHex,
            Valid = true,
            DkekMatch = dkekMatch,
            Compatible = compatible,
            Restorable = restorable,
            Problems = problems.ToArray(),
            Detail = details.Count == 0 ? null : string.Join(" ", details),
        };
    }

    /// <summary>Unwraps into <paramref name="kid"/>, proves the key, deletes it (always).</summary>
    private (bool Ok, string Detail) RestoreTest(byte kid, ScHsmParsedBackup p, List<string> problems)
    {
        bool unwrapped = false;
        try
        {
            try
            {
                _card.UnwrapKey(kid, p.File.KeyBlob);
                unwrapped = true;
            }
            catch (ScHsmCardException ex)
            {
                // Pico may have created nothing, but make sure.
                unwrapped = true;
                return (false, $"The card refused to unwrap the key (SW {ex.StatusWord:X4}): {ScHsmCardException.Describe(ScHsmCommands.UnwrapKey, ex.StatusWord)}");
            }
            if (p.Blob.Kind == KeyKind.Aes)
                return (true, "Unwrapped on the card under the DKEK (the card checked the blob's CMAC), then deleted.");

            var pub = p.PublicKey;
            string against = "the backup's public key";
            if (pub is null)
            {
                pub = ScHsmCardFiles.ReadPublicKey(_card.ReadCertificate(kid));
                against = "the public key the card derived (the backup carries none)";
            }
            if (pub is null)
                return (true, "Unwrapped on the card under the DKEK (CMAC checked); no public key to prove a signature against.");
            byte[] message = RandomNumberGenerator.GetBytes(32);
            bool ec = p.Blob.Kind == KeyKind.Ec;
            byte[] sig;
            try
            {
                sig = _card.Sign(kid, ec ? ScHsmCard.AlgorithmEcdsaSha256 : ScHsmCard.AlgorithmRsaPkcs1Sha256, message);
            }
            catch (ScHsmCardException ex)
            {
                return (false, $"The restored key did not sign (SW {ex.StatusWord:X4}).");
            }
            bool verified;
            try
            {
                if (ec)
                {
                    using var e = ECDsa.Create();
                    e.ImportSubjectPublicKeyInfo(pub.SubjectPublicKeyInfo, out _);
                    verified = e.VerifyData(message, sig, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
                }
                else
                {
                    using var r = RSA.Create();
                    r.ImportSubjectPublicKeyInfo(pub.SubjectPublicKeyInfo, out _);
                    verified = r.VerifyData(message, sig, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
                }
            }
            catch (CryptographicException)
            {
                verified = false;
            }
            return verified
                ? (true, $"Unwrapped on the card, signed a random message, and the signature verifies with {against}; the temporary key was deleted.")
                : (false, $"The restored key's signature does not verify with {against}.");
        }
        finally
        {
            if (unwrapped) DeleteTemporaryKey(kid, problems);
        }
    }

    private void DeleteTemporaryKey(byte kid, List<string> problems)
    {
        foreach (ushort fid in new[] { (ushort)(ScHsmCard.KeyPrefix << 8 | kid), (ushort)(ScHsmCard.PrkdPrefix << 8 | kid), (ushort)(ScHsmCard.CertificatePrefix << 8 | kid) })
        {
            try
            {
                if (_card.FileExists(fid)) _card.DeleteFile(fid);
            }
            catch (Exception ex) when (ex is ScHsmCardException or PcscException)
            {
                problems.Add($"The temporary file {fid:X4} of the restore test could not be deleted ({ex.Message}). Delete it by hand (sc-hsm-tool / pkcs15-tool --delete-objects, or DELETE FILE 00 E4 02 00 02 {fid >> 8:X2} {fid & 0xFF:X2}).");
            }
        }
    }
}
