using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Keys;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>
/// The card's key domains and their DKEK: reading their state (and KCV), putting a whole DKEK on the card,
/// importing sc-hsm-tool XOR shares.
/// </summary>
internal sealed class ScHsmCardDkek(ScHsmCard card, ScHsmCardPin pin, ScHsmCardTransactions calls, DeviceContext context)
{
    private readonly ScHsmCard _card = card;
    private readonly ScHsmCardPin _pin = pin;
    private readonly ScHsmCardTransactions _calls = calls;
    private readonly DeviceContext _context = context;

    /// <summary>
    /// The key domains; when a complete domain reads its KCV as zeros (Pico: until the PIN is verified in
    /// this card session) and a PIN copy is at hand, VERIFY and ask again.
    /// </summary>
    public IReadOnlyList<ScHsmKeyDomainStatus> ReadDomains(bool verifyForKcv = true)
    {
        var domains = _card.EnumerateKeyDomains();
        if (verifyForKcv && _pin.HasCopy && domains.Any(d => d.IsComplete && d.Kcv is null))
        {
            _pin.VerifyWithCopy();
            domains = _card.EnumerateKeyDomains();
        }
        return domains;
    }

    // The key domain list as last read in full, and the card client's KeyDomainChanges then (issue 9: a restore asked
    // every domain, and the one past the last, twice per key).
    private IReadOnlyList<ScHsmKeyDomainStatus>? _known;
    private long _knownAt = -1;

    /// <summary>
    /// The key domains for a restore's DKEK check against <paramref name="kcvHex"/>. Domain 0 is always asked (one
    /// APDU): when it is complete with that KCV and reads exactly as in the list last read in full, and this client
    /// sent nothing since that may change a key domain, that list is returned with it; otherwise every domain is asked
    /// again (<see cref="ReadDomains"/>, which also VERIFYs when the KCV reads as zeros). So the DKEK check itself is
    /// always the card's answer of this transaction; what may be older is only the state of the other domains, which
    /// serves the description of the restored key (its key domain when there is one) and, being a copy of a domain
    /// other than the one that matched, no check (a domain changed by another program since is refused by the card
    /// itself at UNWRAP: the blob's KCV and CMAC are checked under the DKEK it names).
    /// </summary>
    public IReadOnlyList<ScHsmKeyDomainStatus> ReadDomainsFor(string? kcvHex)
    {
        if (_known is { Count: > 0 } known && _knownAt == _card.KeyDomainChanges && kcvHex is not null)
        {
            var d0 = _card.GetKeyDomainStatus(0);
            if (d0.IsComplete && d0.KcvHex == kcvHex && SameStatus(d0, known[0])) return known;
        }
        var all = ReadDomains();
        _known = all;
        _knownAt = _card.KeyDomainChanges;
        return all;
    }

    private static bool SameStatus(ScHsmKeyDomainStatus a, ScHsmKeyDomainStatus b) =>
        a.KeyDomain == b.KeyDomain && a.IsConfigured == b.IsConfigured && a.TotalShares == b.TotalShares &&
        a.OutstandingShares == b.OutstandingShares && a.KcvHex == b.KcvHex && a.XkekDomainUid.AsSpan().SequenceEqual(b.XkekDomainUid);

    /// <summary>One entry per configured key domain (at least one entry).</summary>
    public IReadOnlyList<PicoDkek> GetDkek()
    {
        return _calls.Run("read the card's DKEK state", () =>
        {
            var pin = _pin.Prepare();
            if (pin.State == ScHsmPinState.NotInitialized)
                return new[] { Dkek(null, false, "Not initialised: initialise the card first (sc-hsm-tool --initialize --dkek-shares 1)") };
            var domains = ReadDomains();
            var list = new List<PicoDkek>();
            foreach (var d in domains.Where(d => d.IsConfigured))
                list.Add(Describe(d));
            if (list.Count == 0)
                list.Add(Dkek(null, false, "No DKEK: no key domain is set up on the card"));
            return (IReadOnlyList<PicoDkek>)list;
        });
    }

    private PicoDkek Dkek(int? kd, bool present, string status) => new()
    {
        Present = present, KeyDomain = kd, DeviceFamily = DeviceFamily.ScHsmCard, TokenLabel = _context.TokenLabel, TokenSerial = _context.SerialNumber, Status = status,
    };

    public PicoDkek Describe(ScHsmKeyDomainStatus d)
    {
        string status;
        if (d.IsXkekDomain) status = "XKEK key domain (keys are exchanged under a key agreement, not a DKEK)";
        else if (!d.HasDkek) status = d.TotalShares == 0 ? "No DKEK (initialised without --dkek-shares)" : "No DKEK";
        else if (d.IsComplete)
            status = d.Kcv is null
                ? "Complete; KCV unknown: the card shows it only after the user PIN was verified in this card session (connect with the PIN)"
                : "Complete";
        else status = $"{d.OutstandingShares} of {d.TotalShares} shares outstanding";
        return new PicoDkek
        {
            Present = d.IsComplete,
            KeyDomain = d.KeyDomain,
            SharesTotal = d.HasDkek ? d.TotalShares : null,
            SharesOutstanding = d.HasDkek ? d.OutstandingShares : null,
            KeyCheckValue = d.IsComplete ? d.KcvHex : null,
            KcvVerified = d.IsComplete && d.Kcv is not null,
            DeviceFamily = DeviceFamily.ScHsmCard,
            TokenLabel = _context.TokenLabel,
            TokenSerial = _context.SerialNumber,
            Status = status,
        };
    }

    /// <summary>
    /// Puts a whole DKEK (rebuilt by the module from its n-of-m shares) on the card: only into a key domain
    /// announced with exactly one share, imported as that share. False: the card already holds this DKEK.
    /// <paramref name="label"/> and <paramref name="id"/> are not used (the card keeps no label for its DKEK).
    /// </summary>
    public bool ImportDkek(SecretBytes dkek, string label, byte[] id)
    {
        ArgumentNullException.ThrowIfNull(dkek);
        if (dkek.Length != 32) throw new ArgumentException("A DKEK is 32 bytes.", nameof(dkek));
        byte[] kcv = KeyCheckValue.Compute(dkek.Span);
        string kcvHex = KeyCheckValue.ToHex(kcv);
        return _calls.Run("import the DKEK", () =>
        {
            _pin.RequireInitialised(_pin.Prepare());
            var domains = ReadDomains();
            var complete = domains.Where(d => d.IsComplete).ToList();
            if (complete.Any(d => d.KcvHex == kcvHex)) return false;
            if (complete.Any(d => d.Kcv is null))
                throw PinNeededForKcv();
            var open = domains.FirstOrDefault(d => d.HasDkek && d.OutstandingShares > 0);
            if (open is null)
            {
                if (complete.Count > 0)
                    throw new PicoHsmException(PicoErrorKind.ResourceExists, "OtherDkekPresent",
                        $"The card '{_context.TokenLabel}' already holds a DKEK with KCV {complete[0].KcvHex} (key domain {complete[0].KeyDomain}), not {kcvHex}. " +
                        "Keys backed up under one DKEK cannot be restored under another; use the shares of the card's DKEK, or re-initialise the card (erases its keys).", _context);
                throw new PicoHsmException(PicoErrorKind.InvalidOperation, "NoDkekDomain",
                    $"The card '{_context.TokenLabel}' was initialised without a DKEK (no --dkek-shares), so it cannot take one. Re-initialise it with --dkek-shares 1 (this erases its keys), then import the DKEK.", _context);
            }
            if (open.TotalShares != 1 || open.OutstandingShares != 1)
                throw new PicoHsmException(PicoErrorKind.InvalidOperation, "ShareCountMismatch",
                    $"Key domain {open.KeyDomain} of '{_context.TokenLabel}' was initialised for {open.TotalShares} DKEK shares ({open.OutstandingShares} outstanding), " +
                    $"so a whole DKEK cannot be imported as one share. Import the {open.TotalShares} sc-hsm-tool share files (.pbe) instead (ImportShares), " +
                    "or re-initialise the card with --dkek-shares 1 (this erases its keys).", _context);
            if (!_pin.HasCopy)
                throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinRequired",
                    $"Importing a DKEK into '{_context.TokenLabel}' ends with a PIN VERIFY (the Pico HSM stores the DKEK only then). Connect with the user PIN.", _context);
            if (open.KeyDomain != 0) _pin.EnsureVerified();
            _card.ImportDkekShare(open.KeyDomain, dkek.Span);
            _pin.VerifyWithCopy();
            var after = _card.GetKeyDomainStatus(open.KeyDomain);
            CheckImportedKcv(after, kcvHex);
            return true;
        });
    }

    private void CheckImportedKcv(ScHsmKeyDomainStatus after, string expected)
    {
        if (!after.IsComplete)
            throw new PicoHsmException(PicoErrorKind.DeviceError, "DkekIncomplete",
                $"After the import, key domain {after.KeyDomain} still reports {after.OutstandingShares} of {after.TotalShares} shares outstanding. Check with Get-PicoDkek.", _context);
        if (after.Kcv is null)
            throw new PicoHsmException(PicoErrorKind.DeviceError, "KcvUnknown",
                $"The card took the DKEK but does not report its KCV after the PIN VERIFY (expected {expected}). Check with Get-PicoDkek after reconnecting.", _context);
        if (after.KcvHex != expected)
            throw new PicoHsmException(PicoErrorKind.DeviceError, "KcvMismatch",
                $"The card reports KCV {after.KcvHex} for key domain {after.KeyDomain}, but the imported DKEK has KCV {expected}. " +
                "Shares were imported into this domain before; delete its DKEK (or re-initialise) and import again.", _context);
    }

    private PicoHsmException PinNeededForKcv() => new(PicoErrorKind.AuthenticationFailed, "PinRequired",
        $"The card '{_context.TokenLabel}' shows its DKEK's KCV only after the user PIN was verified in this card session. Connect with the user PIN.", _context);

    /// <summary>
    /// Imports k XOR shares (sc-hsm-tool .pbe files, decrypted) into <paramref name="keyDomain"/> with IMPORT DKEK
    /// SHARE. When these shares complete the domain, VERIFY the PIN (so the Pico stores the DKEK) and check the KCV
    /// the card reports against SHA-256(XOR of the shares) (when the domain had no share before). Refuses more
    /// shares than outstanding. A domain already complete with the same DKEK is left alone.
    /// </summary>
    public PicoDkek ImportShares(IReadOnlyList<SecretBytes> shares, int keyDomain = 0)
    {
        ArgumentNullException.ThrowIfNull(shares);
        if (shares.Count == 0) throw new ArgumentException("Give at least one share.", nameof(shares));
        if (shares.Any(s => s is null || s.Length != ScHsmCard.DkekShareLength))
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "BadShare", "A DKEK share is 32 bytes (a decrypted sc-hsm-tool .pbe file).", null);
        if (keyDomain is < 0 or > 255) throw new ArgumentOutOfRangeException(nameof(keyDomain));
        byte kd = (byte)keyDomain;
        using var xor = new SecretBytes(32);
        foreach (var s in shares)
            for (int i = 0; i < 32; i++) xor.Span[i] ^= s.Span[i];
        string expected = KeyCheckValue.ToHex(KeyCheckValue.Compute(xor.Span));
        return _calls.Run($"import DKEK shares into key domain {kd}", () =>
        {
            _pin.RequireInitialised(_pin.Prepare());
            if (kd != 0) _pin.EnsureVerified();
            var d = _card.GetKeyDomainStatus(kd);
            if (!d.HasDkek)
                throw new PicoHsmException(PicoErrorKind.InvalidOperation, "NoDkekDomain",
                    $"Key domain {kd} of '{_context.TokenLabel}' takes no DKEK shares (initialised without --dkek-shares, or not set up). Re-initialise with --dkek-shares N.", _context);
            if (d.IsComplete)
            {
                if (d.Kcv is null && _pin.HasCopy) { _pin.VerifyWithCopy(); d = _card.GetKeyDomainStatus(kd); }
                if (d.KcvHex == expected) return Describe(d); // these shares are already in
                throw new PicoHsmException(PicoErrorKind.ResourceExists, "OtherDkekPresent",
                    $"Key domain {kd} of '{_context.TokenLabel}' already holds a complete DKEK (KCV {d.KcvHex ?? "unknown"}); no shares are outstanding. " +
                    "To replace it, re-initialise the card (this erases its keys).", _context);
            }
            if (shares.Count > d.OutstandingShares)
                throw new PicoHsmException(PicoErrorKind.InvalidArgument, "TooManyShares",
                    $"Key domain {kd} of '{_context.TokenLabel}' has {d.OutstandingShares} of {d.TotalShares} shares outstanding; {shares.Count} were given. Give only the missing shares.", _context);
            bool wholeSet = d.ImportedShares == 0 && shares.Count == d.TotalShares;
            bool completes = shares.Count == d.OutstandingShares;
            if (completes && !_pin.HasCopy)
                throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinRequired",
                    $"The last DKEK share must be followed by a PIN VERIFY (the Pico HSM stores the DKEK only then). Connect to '{_context.TokenLabel}' with the user PIN.", _context);
            ScHsmKeyDomainStatus after = d;
            foreach (var s in shares) after = _card.ImportDkekShare(kd, s.Span);
            if (!completes) return Describe(after);
            _pin.VerifyWithCopy();
            after = _card.GetKeyDomainStatus(kd);
            if (wholeSet) CheckImportedKcv(after, expected);
            return Describe(after);
        });
    }

    /// <summary>The KCVs of the complete domains (or what is missing), for messages.</summary>
    public static string DomainKcvs(IReadOnlyList<ScHsmKeyDomainStatus> domains)
    {
        var complete = domains.Where(d => d.IsComplete).ToList();
        if (complete.Count == 0)
        {
            var partial = domains.FirstOrDefault(d => d.HasDkek);
            return partial is null ? "no DKEK" : $"no complete DKEK ({partial.OutstandingShares} of {partial.TotalShares} shares outstanding)";
        }
        return string.Join(", ", complete.Select(d => $"{d.KcvHex ?? "unknown (PIN not verified)"} in key domain {d.KeyDomain}"));
    }
}
