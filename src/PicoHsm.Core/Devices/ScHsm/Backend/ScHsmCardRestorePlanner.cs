using System.Security.Cryptography;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>Where a planned card restore goes: the key reference, the key there it replaces (or completes), and the key
/// domains the plan read (so the restored key is described without asking the card again).</summary>
internal sealed record ScHsmRestoreTarget(byte Kid, ScHsmCardCatalogue.CardKey? Replaced, IReadOnlyList<ScHsmKeyDomainStatus> Domains);

/// <summary>
/// The pre-flight of a card restore, changing nothing on the card: key reference in range, DKEK domain complete
/// and matching, key type unwrappable, and the target. The target is the key that holds the backup's id (or
/// -Id): the same key there is <see cref="RestoreAction.AlreadyPresent"/>; another key needs -Force and is then
/// replaced at its own key reference (key, PRKD and certificate together). An orphan (a key an interrupted
/// restore left without its description) that is provably this backup's key is completed (replaced) without
/// -Force. -KeyReference onto an occupied reference names the key it would destroy and needs -Force.
///
/// "The same key": RSA/EC, the SubjectPublicKeyInfo of the backup's certificate / request equals the card's;
/// when the card shows no public key, the card signs a random challenge with that key and the backup's public
/// key verifies it. AES: nothing on the card proves it (the applet has no AES operation this module uses and a
/// key blob carries fresh random bytes at every WRAP), so an AES key at the id is never "already present":
/// it is refused without -Force and replaced with it.
/// </summary>
internal sealed class ScHsmCardRestorePlanner(ScHsmCard card, DeviceContext context, ScHsmCardDkek dkek, ScHsmCardCatalogue catalogue)
{
    private readonly ScHsmCard _card = card;
    private readonly DeviceContext _context = context;
    private readonly ScHsmCardDkek _dkek = dkek;
    private readonly ScHsmCardCatalogue _catalogue = catalogue;

    /// <summary>The card's file list the last <see cref="Plan"/> that got as far as reading it planned on (else null).</summary>
    public HashSet<ushort>? LastFileIds { get; private set; }

    /// <summary>Plans inside the caller's card transaction (PIN already prepared).</summary>
    public (RestorePlan Plan, ScHsmRestoreTarget? Target) Plan(PicoKeyBackup backup, ScHsmParsedBackup p, RestoreRequest request)
    {
        byte[]? id = request.NewId ?? p.Description?.Id;
        string idHex = id is { Length: > 0 } ? Hex(id) : "";
        string? label = request.NewLabel ?? p.Description?.Label;
        string token = _context.TokenLabel ?? "";
        var refusals = new List<PicoHsmException>();
        LastFileIds = null;

        if (request.KeyReference is int wanted && wanted is < 1 or > 254)
            refusals.Add(new PicoHsmException(PicoErrorKind.InvalidArgument, "BadKeyReference",
                $"Key reference {wanted} is out of range: use 1 to 254 (0 is the device's own key).", request.KeyReference));

        var domains = _dkek.ReadDomainsFor(p.Blob.KcvHex);
        if (!domains.Any(d => d.IsComplete && d.KcvHex == p.Blob.KcvHex))
            refusals.Add(new PicoHsmException(PicoErrorKind.InvalidOperation, "DkekMismatch",
                $"'{backup.Path}' was wrapped under the DKEK with KCV {p.Blob.KcvHex}, but the card '{token}' holds {ScHsmCardDkek.DomainKcvs(domains)}. " +
                "Import the backup's DKEK into the card first (Import-PicoDkek with its shares). Nothing was changed.", backup));
        if (!p.IsUnwrappableKeyType)
            refusals.Add(new PicoHsmException(PicoErrorKind.NotSupported, "KeyTypeNotSupported",
                $"'{backup.Path}' holds a key of type {(byte)p.Blob.KeyType:X2}, which the card cannot unwrap. Nothing was changed.", backup));
        if (refusals.Count > 0)
            return (RestorePlan.Refuse(idHex, label, $"a new key on '{token}'", refusals.ToArray()), null);

        // One ENUMERATE; PRKDs from the catalogue cache; certificates only where a decision needs them (the cost of a
        // restore must not grow with the keys on the card).
        var fids = _catalogue.ReadFileIds();
        LastFileIds = fids;
        var keys = _catalogue.ReadCardKeys(withCertificates: false, fids);
        var holder = id is { Length: > 0 } ? keys.FirstOrDefault(k => k.Description?.Id is { } other && other.AsSpan().SequenceEqual(id)) : null;
        if (holder is not null) holder = WithCertificate(holder);

        if (request.KeyReference is int r)
        {
            byte kid = (byte)r;
            string where = $"key reference {kid} on '{token}'";
            var occupant = keys.FirstOrDefault(k => k.Kid == kid) is { } o ? (o.Kid == holder?.Kid ? holder : WithCertificate(o)) : null;
            if (holder is not null && holder.Kid != kid)
                return (Refused(idHex, label, where, new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
                    $"Id {idHex} is already used by {Words(holder)} on '{token}'; a restore to key reference {kid} would give two keys that id. " +
                    "Restore under another id (-Id), or without -KeyReference and with -Force to replace that key. Nothing was changed.", backup)), null);
            if (occupant is null && !_catalogue.IsOccupied(kid, fids))
                return (new RestorePlan(RestoreAction.Create, idHex, label, where), new ScHsmRestoreTarget(kid, null, domains));
            if (occupant is not null && holder?.Kid == kid && SameKey(occupant, p) == true && !_catalogue.IsOrphan(occupant))
                return (new RestorePlan(RestoreAction.AlreadyPresent, idHex, label, where, Existing: ToKey(occupant, domains)), null);
            string victim = occupant is null ? $"the files left at key reference {kid} (no key)" : Words(occupant);
            if (!request.Force)
                return (Refused(idHex, label, where, new PicoHsmException(PicoErrorKind.ResourceExists, "KeyReferenceInUse",
                    $"Key reference {kid} on '{token}' holds {victim}: restoring there would destroy it. " +
                    "Choose a free -KeyReference, or add -Force to replace that key. Nothing was changed.", backup)), null);
            return (new RestorePlan(RestoreAction.Replace, idHex, label, where, Replaces: victim), new ScHsmRestoreTarget(kid, occupant, domains));
        }

        if (holder is not null)
        {
            string where = $"id {idHex} at key reference {holder.Kid} on '{token}'";
            bool? same = SameKey(holder, p);
            bool orphan = _catalogue.IsOrphan(holder);
            if (same == true && !orphan)
                return (new RestorePlan(RestoreAction.AlreadyPresent, idHex, label, where, Existing: ToKey(holder, domains)), null);
            if (same == true)
                return (new RestorePlan(RestoreAction.Replace, idHex, label, where, Replaces: $"the incomplete copy of this key ({Words(holder)})"),
                    new ScHsmRestoreTarget(holder.Kid, holder, domains));
            if (!request.Force)
            {
                string proof = same is null ? " (a secret key's material cannot be compared on the card, so it counts as another key)" : " (another key)";
                return (Refused(idHex, label, where, new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
                    $"Id {idHex} is already used by {Words(holder)} on '{token}'{proof}. " +
                    "Restore under another id (-Id <another id>), or use -Force to replace that key (its key, PRKD and certificate). Nothing was changed.", backup)), null);
            }
            return (new RestorePlan(RestoreAction.Replace, idHex, label, where, Replaces: Words(holder)), new ScHsmRestoreTarget(holder.Kid, holder, domains));
        }

        // No key has the id: an orphan of this very key (an interrupted restore) is completed where it is.
        foreach (var orphan in keys.Where(k => string.IsNullOrEmpty(k.Description?.Label)).Select(WithCertificate).Where(_catalogue.IsOrphan))
        {
            if (SameKey(orphan, p) != true) continue;
            string where = $"key reference {orphan.Kid} on '{token}'";
            return (new RestorePlan(RestoreAction.Replace, idHex, label, where, Replaces: $"the incomplete copy of this key ({Words(orphan)})"),
                new ScHsmRestoreTarget(orphan.Kid, orphan, domains));
        }

        byte? free = _catalogue.FirstFreeReference(fids, fromTop: false);
        if (free is not byte f)
            return (Refused(idHex, label, $"a new key on '{token}'", new PicoHsmException(PicoErrorKind.ResourceUnavailable, "NoFreeKeyReference",
                $"Every key reference (1-254) on '{token}' is in use. Delete a key (Remove-PicoKey), or restore with -KeyReference and -Force. Nothing was changed.", backup)), null);
        return (new RestorePlan(RestoreAction.Create, idHex, label, $"{(idHex.Length > 0 ? "id " + idHex + " at " : "")}key reference {f} on '{token}'"),
            new ScHsmRestoreTarget(f, null, domains));
    }

    /// <summary>"key reference 2 (id 02, 'rsa-a')", and "an orphan" when it lacks its description.</summary>
    public string Words(ScHsmCardCatalogue.CardKey k)
    {
        var d = k.Description;
        string id = d?.Id is { } i ? $"id {Hex(i)}" : "no id";
        string label = string.IsNullOrEmpty(d?.Label) ? "no label" : $"'{d!.Label}'";
        return $"key reference {k.Kid} ({id}, {label}{(_catalogue.IsOrphan(k) ? ", an orphan without its description" : "")})";
    }

    /// <summary>True: provably the backup's key; false: provably another; null: nothing to compare (AES, no public key in the backup).</summary>
    public bool? SameKey(ScHsmCardCatalogue.CardKey k, ScHsmParsedBackup p)
    {
        KeyKind cardKind = k.Description?.Kind is KeyKind.GenericSecret ? KeyKind.Aes : k.Description?.Kind ?? KeyKind.Unknown;
        if (cardKind != KeyKind.Unknown && cardKind != p.Blob.Kind) return false;
        if (p.Blob.Kind is not (KeyKind.Rsa or KeyKind.Ec)) return null;
        byte[]? backupSpki = p.PublicKey?.SubjectPublicKeyInfo;
        if (backupSpki is null) return null;
        var cardPub = ScHsmCardFiles.ReadPublicKey(k.Certificate, k.Description?.KeySizeBits);
        if (cardPub is not null) return cardPub.SubjectPublicKeyInfo.AsSpan().SequenceEqual(backupSpki);
        return SignProof(k.Kid, p.Blob.Kind, backupSpki);
    }

    /// <summary>The card signs a random challenge with <paramref name="kid"/>; the backup's public key verifies it (or not).</summary>
    private bool? SignProof(byte kid, KeyKind kind, byte[] spki)
    {
        byte[] challenge = RandomNumberGenerator.GetBytes(32);
        byte[] sig;
        try
        {
            sig = _card.Sign(kid, kind == KeyKind.Ec ? ScHsmCard.AlgorithmEcdsaSha256 : ScHsmCard.AlgorithmRsaPkcs1Sha256, challenge);
        }
        catch (ScHsmCardException)
        {
            return null; // the key does not sign (another type, or a usage that forbids it): no proof either way
        }
        try
        {
            if (kind == KeyKind.Ec)
            {
                using var ec = ECDsa.Create();
                ec.ImportSubjectPublicKeyInfo(spki, out _);
                return ec.VerifyData(challenge, sig, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
            }
            using var rsa = RSA.Create();
            rsa.ImportSubjectPublicKeyInfo(spki, out _);
            return rsa.VerifyData(challenge, sig, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    private ScHsmCardCatalogue.CardKey WithCertificate(ScHsmCardCatalogue.CardKey k) =>
        k.Certificate is not null ? k : k with { Certificate = _catalogue.CertificateOf(k.Kid) };

    private PicoKey ToKey(ScHsmCardCatalogue.CardKey k, IReadOnlyList<ScHsmKeyDomainStatus> domains) => _catalogue.ToPicoKey(k, domains);

    private static RestorePlan Refused(string idHex, string? label, string where, PicoHsmException ex) => RestorePlan.Refuse(idHex, label, where, ex);

    private static string Hex(byte[] b) => Convert.ToHexString(b).ToLowerInvariant();
}
