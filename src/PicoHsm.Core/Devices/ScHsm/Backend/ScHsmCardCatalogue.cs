using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>
/// The keys on the card, read from the card alone (CC kid, PRKD C4 kid, certificate / request CE kid): the
/// listing, finding a key by reference or id, and which key references are free.
/// </summary>
internal sealed class ScHsmCardCatalogue(ScHsmCard card, ScHsmCardPin pin, ScHsmCardTransactions calls, DeviceContext context)
{
    private readonly ScHsmCard _card = card;
    private readonly ScHsmCardPin _pin = pin;
    private readonly ScHsmCardTransactions _calls = calls;
    private readonly DeviceContext _context = context;

    public sealed record CardKey(byte Kid, byte[]? Prkd, ScHsmKeyDescription? Description, byte[]? Certificate);

    // The catalogue cache (issue 14 Seen 7: the cost of a restore must not grow with the keys on the card). Every
    // operation reads the card's file list (ENUMERATE OBJECTS, one APDU); the PRKD and certificate of a key are read
    // once and kept while (a) this card client has sent no command that changes the card since they were read
    // (ScHsmCard.Changes; the module's own restore and removal tell the cache what they wrote instead), and (b) the
    // key is listed with the same files (CC, C4, CE) as when it was read. So a key or file another program adds or
    // deletes is seen at once; a PRKD another program rewrites in place, while this session is open, is not (the
    // card has no change counter to ask); a new session reads everything again.
    private sealed class Cached
    {
        public ScHsmKeyEntry? Listed; // null: written by this module, adopts the next listing
        public byte[]? Prkd;
        public bool CertificateKnown;
        public byte[]? Certificate;
    }

    private readonly Dictionary<byte, Cached> _cache = new();
    private long _validAt = -1;

    private void Validate()
    {
        if (_card.Changes == _validAt) return;
        _cache.Clear();
        _validAt = _card.Changes;
    }

    /// <summary>The card's file list (ENUMERATE OBJECTS).</summary>
    public HashSet<ushort> ReadFileIds() => new(_card.EnumerateObjects());

    /// <summary>
    /// The keys with their PRKD (and, unless <paramref name="withCertificates"/> is false, their CE file), from the
    /// file list <paramref name="fids"/> (read when not given) and the catalogue cache.
    /// </summary>
    public List<CardKey> ReadCardKeys(bool withCertificates = true, ISet<ushort>? fids = null)
    {
        fids ??= ReadFileIds();
        Validate();
        var listed = _card.KeysIn(fids);
        var present = new HashSet<byte>(listed.Select(e => e.KeyReference));
        foreach (byte gone in _cache.Keys.Where(k => !present.Contains(k)).ToList()) _cache.Remove(gone);
        var list = new List<CardKey>(listed.Count);
        foreach (var e in listed)
        {
            if (!_cache.TryGetValue(e.KeyReference, out var c) || (c.Listed is not null && c.Listed != e))
            {
                c = new Cached { Listed = e, Prkd = e.HasPrivateKeyDescription ? _card.ReadPrivateKeyDescription(e.KeyReference) : null };
                if (e.HasCertificate == false) c.CertificateKnown = true;
                _cache[e.KeyReference] = c;
            }
            c.Listed ??= e;
            if (withCertificates && !c.CertificateKnown)
            {
                c.Certificate = _card.ReadCertificate(e.KeyReference) is { Length: > 0 } cert ? cert : null;
                c.CertificateKnown = true;
            }
            list.Add(Make(e.KeyReference, c.Prkd, c.CertificateKnown ? c.Certificate : null));
        }
        return list;
    }

    /// <summary>The certificate / request (CE kid) of a listed key, from the cache or read once.</summary>
    public byte[]? CertificateOf(byte kid)
    {
        Validate();
        if (_cache.TryGetValue(kid, out var c) && c.CertificateKnown) return c.Certificate;
        byte[]? cert = _card.ReadCertificate(kid) is { Length: > 0 } b ? b : null;
        if (c is not null) { c.Certificate = cert; c.CertificateKnown = true; }
        return cert;
    }

    /// <summary>A key as its files describe it.</summary>
    public static CardKey Make(byte kid, byte[]? prkd, byte[]? certificate)
    {
        ScHsmKeyDescription? desc = null;
        if (prkd is { Length: > 0 })
        {
            try { desc = ScHsmKeyDescription.Parse(prkd); }
            catch (ScHsmFormatException) { }
        }
        return new CardKey(kid, prkd, desc, certificate is { Length: > 0 } ? certificate : null);
    }

    /// <summary>
    /// The module wrote key <paramref name="kid"/> with these files (a restore): the cache keeps them, and stays
    /// valid when nothing else changed the card since <paramref name="changesBefore"/> (else it starts again).
    /// </summary>
    public void Wrote(byte kid, long changesBefore, byte[] prkd, byte[]? certificate)
    {
        if (_validAt != changesBefore) _cache.Clear();
        _validAt = _card.Changes;
        _cache[kid] = new Cached { Prkd = prkd, Certificate = certificate, CertificateKnown = true };
    }

    /// <summary>The module removed key <paramref name="kid"/> and its files.</summary>
    public void Removed(byte kid, long changesBefore)
    {
        if (_validAt != changesBefore) _cache.Clear();
        _validAt = _card.Changes;
        _cache.Remove(kid);
    }

    /// <summary>The keys on the card (every CC kid but the device key), read from the card alone.</summary>
    public List<PicoKey> ListKeys()
    {
        return _calls.Run("list the card's keys", () =>
        {
            _pin.Prepare();
            var domains = _card.EnumerateKeyDomains();
            return ReadCardKeys().Select(k => ToPicoKey(k, domains)).ToList();
        });
    }

    public PicoKey ToPicoKey(CardKey k, IReadOnlyList<ScHsmKeyDomainStatus> domains)
    {
        var d = k.Description;
        var pub = ScHsmCardFiles.ReadPublicKey(k.Certificate, d?.KeySizeBits);
        KeyKind kind = d?.Kind ?? pub?.Kind ?? KeyKind.Unknown;
        if (kind == KeyKind.GenericSecret) kind = KeyKind.Aes;
        bool secret = kind == KeyKind.Aes;
        bool complete = domains.Any(x => x.IsComplete);
        var configured = domains.Where(x => x.IsConfigured).ToList();
        string? curve = pub?.Curve;
        if (kind == KeyKind.Ec && curve is null && d?.KeySizeBits is int bits)
            curve = EcCurves.Known.FirstOrDefault(c => c.Bits == bits && c.Name.StartsWith("P-"))?.Name;
        int size = pub?.SizeBits ?? d?.KeySizeBits ?? 0;
        bool sign = !secret;
        return new PicoKey
        {
            Id = d?.Id is { } id ? Convert.ToHexString(id).ToLowerInvariant() : Convert.ToHexString([k.Kid]).ToLowerInvariant(),
            Label = d?.Label,
            Class = secret ? "SecretKey" : "PrivateKey",
            KeyType = kind,
            Size = size,
            Curve = kind == KeyKind.Ec ? curve : null,
            Extractable = complete,
            Sensitive = true,
            NeverExtractable = false,
            CanSign = sign,
            CanDecrypt = kind == KeyKind.Rsa || secret,
            CanEncrypt = secret,
            CanDerive = kind == KeyKind.Ec,
            HasPublicKey = pub is not null,
            HasCertificate = pub?.IsX509Certificate ?? false,
            PublicKeyInfo = pub?.SubjectPublicKeyInfo,
            PublicKeyFingerprint = pub?.Fingerprint,
            TokenLabel = _context.TokenLabel,
            TokenSerial = _context.SerialNumber,
            SessionId = _context.SessionId,
            KeyReference = k.Kid,
            KeyDomain = configured.Count == 1 ? configured[0].KeyDomain : null,
            Exportable = complete,
            ExportBlockedReason = complete ? null : "no complete DKEK in the key domain",
            Status = IsOrphan(k) ? PicoKeyStatus.Orphan : PicoKeyStatus.Complete,
            StatusReason = IsOrphan(k) ? OrphanReason(k) : null,
        };
    }

    /// <summary>
    /// A key without its description, as an interrupted restore leaves it: no readable PRKD, or no label and
    /// no public key, or no label and only the placeholder PRKD the firmware writes at UNWRAP (id 00 kid),
    /// which the module replaces with the backup's as the last step of a restore.
    /// </summary>
    public bool IsOrphan(CardKey k)
    {
        var d = k.Description;
        if (d is null) return true;
        if (!string.IsNullOrEmpty(d.Label)) return false;
        if (d.Id is { Length: 2 } id && id[0] == 0 && id[1] == k.Kid) return true;
        // a secret key has no public key to show; its PRKD alone describes it
        return d.Kind is not (KeyKind.Aes or KeyKind.GenericSecret) && ScHsmCardFiles.ReadPublicKey(k.Certificate, d.KeySizeBits) is null;
    }

    private static string OrphanReason(CardKey k) =>
        (k.Description is null ? "no readable private key description (PRKD)" : "no label and no description beyond what the card wrote at unwrap") +
        $" at key reference {k.Kid}, as an interrupted restore leaves it. Rerun the restore of its backup to complete it, or remove it with Remove-PicoKey.";

    /// <summary>The key reference of <paramref name="key"/>: its own, else the PRKD with its CKA_ID.</summary>
    public byte ResolveKeyReference(PicoKey key)
    {
        if (key.KeyReference is int r)
        {
            if (r is < 1 or > 255 || _card.ListKeys().All(k => k.KeyReference != r))
                throw new PicoHsmException(PicoErrorKind.NotFound, "KeyNotFound",
                    $"There is no key with reference {r} on '{_context.TokenLabel}'. List the keys again (Get-PicoKey).", key);
            return (byte)r;
        }
        var keys = ReadCardKeys(withCertificates: false);
        var matches = keys.Where(k => k.Description?.Id is { } id && Convert.ToHexString(id).Equals(key.Id, StringComparison.OrdinalIgnoreCase)).ToList();
        if (matches.Count == 0)
            matches = keys.Where(k => k.Description?.Id is null && Convert.ToHexString([k.Kid]).Equals(key.Id, StringComparison.OrdinalIgnoreCase)).ToList();
        return matches.Count switch
        {
            1 => matches[0].Kid,
            0 => throw new PicoHsmException(PicoErrorKind.NotFound, "KeyNotFound",
                $"No key with id {key.Id} on '{_context.TokenLabel}'. List the keys again (Get-PicoKey).", key),
            _ => throw new PicoHsmException(PicoErrorKind.InvalidOperation, "DuplicateId",
                $"Keys {string.Join(", ", matches.Select(m => m.Kid))} on '{_context.TokenLabel}' share id {key.Id}; export by key reference instead.", key),
        };
    }

    /// <summary>A key other than <paramref name="exceptKid"/> whose PRKD carries <paramref name="id"/>, or null.</summary>
    public CardKey? FindById(byte[] id, byte? exceptKid = null) =>
        ReadCardKeys(withCertificates: false).FirstOrDefault(k => k.Kid != exceptKid && k.Description?.Id is { } other && other.AsSpan().SequenceEqual(id));

    /// <summary>Key references in use: CC kid, C4 kid listed, or CE kid found by SELECT (Pico does not list CE files).</summary>
    public bool IsOccupied(byte kid, HashSet<ushort> fids) =>
        fids.Contains((ushort)(ScHsmCard.KeyPrefix << 8 | kid)) ||
        fids.Contains((ushort)(ScHsmCard.PrkdPrefix << 8 | kid)) ||
        fids.Contains((ushort)(ScHsmCard.CertificatePrefix << 8 | kid)) ||
        _card.FileExists((ushort)(ScHsmCard.CertificatePrefix << 8 | kid));

    /// <summary>The first key reference (1-254, from the top or the bottom) with no CC, C4 or CE file; null when all are used.</summary>
    public byte? FirstFreeReference(HashSet<ushort> fids, bool fromTop)
    {
        var order = fromTop ? Enumerable.Range(1, 254).Reverse() : Enumerable.Range(1, 254);
        foreach (int r in order)
        {
            byte kid = (byte)r;
            if (fids.Contains((ushort)(ScHsmCard.KeyPrefix << 8 | kid)) || fids.Contains((ushort)(ScHsmCard.PrkdPrefix << 8 | kid))) continue;
            if (_card.FileExists((ushort)(ScHsmCard.CertificatePrefix << 8 | kid))) continue;
            return kid;
        }
        return null;
    }
}
