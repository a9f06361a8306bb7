using System.Security.Cryptography;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;
using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>
/// DKEK work on a SmartCard-HSM / Nitrokey HSM 2 / Pico HSM through the card's own commands over
/// PC/SC (no PKCS#11 module can wrap or unwrap on this card). Each operation runs in one PC/SC
/// transaction and never SELECTs the applet while it answers, so a PKCS#11 session sharing the card
/// keeps its login. The PIN copy given here is used only to VERIFY when the card says the PIN is not
/// verified; a wrong PIN drops the copy so no further tries are spent.
/// </summary>
public sealed class ScHsmCardBackend : IDeviceBackend, IScHsmDevice
{
    public const string Manufacturer = "www.CardContact.de";
    public const string TokenLabelDefault = "SmartCard-HSM";

    private readonly DeviceContext _session;
    private readonly Pkcs11Connection? _p11;
    private readonly ICardChannel _channel;
    private readonly ScHsmCard _card;
    private SecretBytes? _pin;
    private bool _disposed;

    /// <param name="pkcs11">The PKCS#11 session of the same card through OpenSC, when the connection has one;
    /// this backend owns it (logs out and closes it on dispose).</param>
    public ScHsmCardBackend(DeviceContext context, ICardChannel channel, SecretBytes? pin, Pkcs11Connection? pkcs11 = null)
    {
        _session = context ?? throw new ArgumentNullException(nameof(context));
        _p11 = pkcs11;
        _channel = channel ?? throw new ArgumentNullException(nameof(channel));
        _card = new ScHsmCard(channel);
        _pin = pin is null ? null : SecretBytes.CopyOf(pin.Span);
    }

    public DeviceFamily Family => DeviceFamily.ScHsmCard;
    public string BackupExtension => ".wky";
    public DeviceContext Context => _session;
    public bool IsOpen => !_disposed && (_p11 is null || _p11.IsOpen);
    public bool HasPkcs11 => _p11 is not null;
    public string ReaderName => _channel.ReaderName;

    /// <summary>The card's own generator is not exposed by the applet; OpenSC's C_GenerateRandom is, when there.</summary>
    public byte[]? GenerateRandom(int count)
    {
        if (_p11 is null) return null;
        lock (_session.Gate) return _p11.Session.GenerateRandom(count);
    }

    /// <summary>The card client (for tests and tools that need a command the backend does not wrap).</summary>
    public ScHsmCard Card => _card;

    public ICardChannel Channel => _channel;

    /// <summary>Whether the backend holds a PIN copy to VERIFY with.</summary>
    public bool HasPin => _pin is not null;

    // ==========================================================================================
    // Opening
    // ==========================================================================================

    /// <summary>Readers holding a SmartCard-HSM family card (by ATR; nothing is sent to any card).</summary>
    public static IReadOnlyList<string> FindReaders()
    {
        try
        {
            using var ctx = PcscContext.Establish();
            return ScHsmCard.FindReaders(ctx).Select(r => r.Reader).ToList();
        }
        catch (PcscException ex) when (ex.ErrorCode is PcscError.SCARD_E_NO_READERS_AVAILABLE or PcscError.SCARD_E_NO_SERVICE)
        {
            return Array.Empty<string>();
        }
    }

    /// <summary>
    /// Connects to <paramref name="readerName"/> (shared mode) and makes the backend of a connection
    /// that also has <paramref name="pkcs11"/> (OpenSC's module) when given; the backend owns both.
    /// </summary>
    public static ScHsmCardBackend Open(DeviceContext context, string readerName, SecretBytes? pin, Pkcs11Connection? pkcs11 = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        var channel = Connect(readerName);
        return new ScHsmCardBackend(context, channel, pin, pkcs11);
    }

    /// <summary>
    /// For a PKCS#11 session through OpenSC: the card in the reader the slot is named after (OpenSC's slot
    /// description is the PC/SC reader name). The PKCS#11 login counts for this connection too (the PIN state
    /// belongs to the card), so <paramref name="pin"/> is needed only if that login is gone.
    /// </summary>
    public static ScHsmCardBackend Open(DeviceContext context, SecretBytes? pin, Pkcs11Connection? pkcs11 = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        var session = context;
        var readers = FindReaders();
        string wanted = context.Token.SlotDescription?.Trim() ?? "";
        string? reader = readers.FirstOrDefault(r => r == wanted)
            ?? readers.FirstOrDefault(r => wanted.Length > 0 && (r.StartsWith(wanted, StringComparison.Ordinal) || wanted.StartsWith(r, StringComparison.Ordinal)))
            ?? (readers.Count == 1 ? readers[0] : null);
        if (reader is null)
            throw new PicoHsmException(PicoErrorKind.NotFound, "NoCardReader",
                readers.Count == 0
                    ? $"No PC/SC reader holds a SmartCard-HSM / Pico HSM card (session {context.SessionId}, slot '{wanted}'). Check that pcscd (or the Smart Card service) runs and sees the card."
                    : $"None of the SmartCard-HSM readers ({string.Join(", ", readers)}) matches the slot '{wanted}' of session {context.SessionId}. Connect with -Reader.", session);
        return Open(context, reader, pin, pkcs11);
    }

    /// <summary>
    /// A session to a card reached through PC/SC only (no PKCS#11 module): the token is described from
    /// the card (<see cref="ReadToken"/>), the backend is attached, and with a PIN the session is marked
    /// logged in once the card accepted it.
    /// </summary>
    public static ScHsmCardBackend ConnectCardOnly(string readerName, SecretBytes? pin)
    {
        var channel = Connect(readerName);
        ScHsmCardBackend? backend = null;
        try
        {
            var token = ReadToken(channel);
            backend = new ScHsmCardBackend(new DeviceContext(token), channel, null);
            if (pin is not null) backend.Login(pin);
            return backend;
        }
        catch
        {
            if (backend is not null) backend.Dispose();
            else channel.Dispose();
            throw;
        }
    }

    private static PcscCardChannel Connect(string readerName)
    {
        ArgumentException.ThrowIfNullOrEmpty(readerName);
        try
        {
            return PcscCardChannel.Connect(readerName);
        }
        catch (PcscException ex)
        {
            throw new PicoHsmException(PicoErrorKind.ResourceUnavailable, "CardUnavailable",
                $"Cannot connect to the card in reader '{readerName}': {ex.Message} Check that the card is inserted and pcscd (or the Smart Card service) runs.", readerName, ex);
        }
    }

    /// <summary>
    /// Describes the card as a token for a card-only session, as OpenSC names it: label and manufacturer from
    /// EF.TokenInfo (2F03) when it has them, else "SmartCard-HSM" and www.CardContact.de; model
    /// "SmartCard-HSM version M.m" from the applet; serial = the device certificate's holder reference
    /// (EF 2F02) without its last 5 characters. Selects the applet only when it does not answer already.
    /// </summary>
    public static PicoHsmToken ReadToken(ICardChannel channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        var card = new ScHsmCard(channel);
        try
        {
            using var tx = channel.BeginTransaction();
            var (pin, info) = PrepareApplet(card);
            string? version = info?.Version ?? ProbeVersion(card);
            string? serial = null;
            byte[]? devCert = card.TryReadFile(0x2F02);
            string? chr = ScHsmCardFiles.ReadHolderReference(devCert);
            if (chr is { Length: > 5 }) serial = chr[..^5];
            // OpenSC takes label and manufacturer from EF.TokenInfo when it has them (Pico HSM: "Pol Henarejos").
            var (manufacturer, label) = ScHsmCardFiles.ReadTokenInfo(card.TryReadFile(0x2F03));
            return new PicoHsmToken
            {
                ModulePath = "",
                SlotId = 0,
                SlotDescription = channel.ReaderName,
                TokenPresent = true,
                Label = label ?? TokenLabelDefault,
                Model = version is null ? "SmartCard-HSM" : $"SmartCard-HSM version {version}",
                Manufacturer = manufacturer ?? Manufacturer,
                SerialNumber = serial,
                FirmwareVersion = version,
                Initialized = pin.State != ScHsmPinState.NotInitialized,
                LoginRequired = true,
                UserPinInitialized = pin.State != ScHsmPinState.NotInitialized,
                UserPinCountLow = pin.TriesLeft is int l && l < 3 && l > 0,
                UserPinFinalTry = pin.TriesLeft == 1,
                UserPinLocked = pin.State == ScHsmPinState.Blocked,
                UserPinToBeChanged = pin.State == ScHsmPinState.TransportPin,
            };
        }
        catch (ScHsmCardException ex)
        {
            throw Translate(ex, "read the card's identity", channel.ReaderName);
        }
        catch (PcscException ex)
        {
            throw Unavailable(ex, channel.ReaderName);
        }
    }

    /// <summary>
    /// Pico HSM answers INITIALIZE without data with free memory and its version (last two bytes);
    /// nothing is changed. Used only when the applet answered without a SELECT (no FCP to read).
    /// </summary>
    private static string? ProbeVersion(ScHsmCard card)
    {
        var r = card.Channel.Transmit(new CommandApdu(0x80, 0x50, 0x00, 0x00, default, 256));
        return r.IsSuccess && r.Data.Length == 7 ? $"{r.Data[5]}.{r.Data[6]}" : null;
    }

    // ==========================================================================================
    // Plumbing: transaction, applet, PIN, errors
    // ==========================================================================================

    /// <summary>
    /// Asks the PIN state (no SELECT); only when the applet does not answer (another applet, or a fresh
    /// power-up) selects it. Returns the PIN state and the FCP info when a SELECT was needed.
    /// </summary>
    private static (ScHsmPinStatus Pin, ScHsmAppletInfo? Info) PrepareApplet(ScHsmCard card)
    {
        var r = card.Channel.Transmit(new CommandApdu(0x00, 0x20, 0x00, ScHsmCard.UserPinReference));
        var status = ScHsmCard.ToPinStatus(r.SW);
        if (status is not null) return (status, null);
        var info = card.SelectApplet();
        return (card.GetPinStatus(), info);
    }

    private PicoHsmException Closed() => new(PicoErrorKind.InvalidOperation, "SessionClosed",
        $"The card connection of session {_session.SessionId} to '{_session.TokenLabel}' is closed. Connect again with Connect-PicoHsm.", _session);

    private T WithTransaction<T>(string action, Func<T> body)
    {
        if (_disposed) throw Closed();
        try
        {
            using var tx = _channel.BeginTransaction();
            return body();
        }
        catch (ScHsmCardException ex)
        {
            throw Translate(ex, action, _session);
        }
        catch (PcscException ex)
        {
            throw Unavailable(ex, _channel.ReaderName);
        }
    }

    /// <summary>Makes sure the applet answers; the PIN state (without verifying).</summary>
    private ScHsmPinStatus Prepare() => PrepareApplet(_card).Pin;

    /// <summary>Verifies the user PIN only when the card says it is not verified.</summary>
    private void EnsurePin()
    {
        var status = Prepare();
        switch (status.State)
        {
            case ScHsmPinState.Verified:
                _session.SetLoggedIn(true);
                return;
            case ScHsmPinState.NotVerified:
                VerifyWithCopy();
                return;
            case ScHsmPinState.Blocked:
                throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinLocked",
                    $"The user PIN of the card in '{_channel.ReaderName}' is blocked. Unblock it with the SO-PIN (sc-hsm-tool --unlock-pin), then connect again.", _session);
            case ScHsmPinState.NotInitialized:
                throw new PicoHsmException(PicoErrorKind.InvalidOperation, "NotInitialized",
                    $"The card in '{_channel.ReaderName}' is not initialised. Initialise it first (sc-hsm-tool --initialize --dkek-shares 1, or ScHsmCardBackend.Initialize).", _session);
            default:
                throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "TransportPin",
                    $"The card in '{_channel.ReaderName}' still has a transport PIN. Change the user PIN first (pkcs11-tool --change-pin).", _session);
        }
    }

    /// <summary>VERIFY with the PIN copy (no state check: the Pico stores a new DKEK / shows its KCV only at a VERIFY).</summary>
    private void VerifyWithCopy()
    {
        if (_pin is null)
            throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinRequired",
                $"The user PIN of the card in '{_channel.ReaderName}' is not verified, and this session has no PIN to verify it with. Connect again with the PIN.", _session);
        try
        {
            _card.VerifyPin(_pin.Span);
            _session.SetLoggedIn(true);
        }
        catch (ScHsmCardException ex) when (ex.Error is ScHsmError.WrongPin or ScHsmError.PinBlocked)
        {
            // Never spend another try with a PIN the card refused.
            _pin.Dispose();
            _pin = null;
            _session.SetLoggedIn(false);
            throw;
        }
    }

    internal static PicoHsmException Translate(ScHsmCardException ex, string action, object? target)
    {
        var (kind, reason) = ex.Error switch
        {
            ScHsmError.PinNotVerified => (PicoErrorKind.AuthenticationFailed, "PinNotVerified"),
            ScHsmError.WrongPin => (PicoErrorKind.AuthenticationFailed, "WrongPin"),
            ScHsmError.PinBlocked => (PicoErrorKind.AuthenticationFailed, "PinLocked"),
            ScHsmError.NotInitialized => (PicoErrorKind.InvalidOperation, "NotInitialized"),
            ScHsmError.NoDkek => (PicoErrorKind.InvalidOperation, "NoDkek"),
            ScHsmError.WrapNotAllowed => (PicoErrorKind.PermissionDenied, "KeyNotExportable"),
            ScHsmError.DkekMismatch => (PicoErrorKind.InvalidData, "DkekMismatch"),
            ScHsmError.NotFound => (PicoErrorKind.NotFound, "NotFound"),
            ScHsmError.NoSuchKeyDomain => (PicoErrorKind.InvalidArgument, "NoSuchKeyDomain"),
            ScHsmError.NotSupported => (PicoErrorKind.NotSupported, "CommandNotSupported"),
            _ => (PicoErrorKind.DeviceError, "CardError"),
        };
        return new PicoHsmException(kind, reason, $"Could not {action}: {ex.Message}", target, ex);
    }

    private static PicoHsmException Unavailable(PcscException ex, string reader) =>
        new(PicoErrorKind.ResourceUnavailable, "CardUnavailable",
            $"The card in '{reader}' did not answer: {ex.Message} Check that it is still inserted, then connect again.", reader, ex);

    // ==========================================================================================
    // Key domains and the DKEK
    // ==========================================================================================

    /// <summary>
    /// The key domains; when a complete domain reads its KCV as zeros (Pico: until the PIN is verified in
    /// this card session) and a PIN copy is at hand, VERIFY and ask again.
    /// </summary>
    private IReadOnlyList<ScHsmKeyDomainStatus> ReadDomains(bool verifyForKcv = true)
    {
        var domains = _card.EnumerateKeyDomains();
        if (verifyForKcv && _pin is not null && domains.Any(d => d.IsComplete && d.Kcv is null))
        {
            VerifyWithCopy();
            domains = _card.EnumerateKeyDomains();
        }
        return domains;
    }

    IReadOnlyList<PicoDkek> IDeviceBackend.GetDkek() => GetDkek();

    /// <summary>One entry per configured key domain (at least one entry).</summary>
    public IReadOnlyList<PicoDkek> GetDkek()
    {
        lock (_session.Gate)
        {
            return WithTransaction("read the card's DKEK state", () =>
            {
                var pin = Prepare();
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
    }

    private PicoDkek Dkek(int? kd, bool present, string status) => new()
    {
        Present = present, KeyDomain = kd, DeviceFamily = DeviceFamily.ScHsmCard, TokenLabel = _session.TokenLabel, TokenSerial = _session.SerialNumber, Status = status,
    };

    private PicoDkek Describe(ScHsmKeyDomainStatus d)
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
            TokenLabel = _session.TokenLabel,
            TokenSerial = _session.SerialNumber,
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
        lock (_session.Gate)
        {
            return WithTransaction("import the DKEK", () =>
            {
                RequireInitialised(Prepare());
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
                            $"The card '{_session.TokenLabel}' already holds a DKEK with KCV {complete[0].KcvHex} (key domain {complete[0].KeyDomain}), not {kcvHex}. " +
                            "Keys backed up under one DKEK cannot be restored under another; use the shares of the card's DKEK, or re-initialise the card (erases its keys).", _session);
                    throw new PicoHsmException(PicoErrorKind.InvalidOperation, "NoDkekDomain",
                        $"The card '{_session.TokenLabel}' was initialised without a DKEK (no --dkek-shares), so it cannot take one. Re-initialise it with --dkek-shares 1 (this erases its keys), then import the DKEK.", _session);
                }
                if (open.TotalShares != 1 || open.OutstandingShares != 1)
                    throw new PicoHsmException(PicoErrorKind.InvalidOperation, "ShareCountMismatch",
                        $"Key domain {open.KeyDomain} of '{_session.TokenLabel}' was initialised for {open.TotalShares} DKEK shares ({open.OutstandingShares} outstanding), " +
                        $"so a whole DKEK cannot be imported as one share. Import the {open.TotalShares} sc-hsm-tool share files (.pbe) instead (ImportShares), " +
                        "or re-initialise the card with --dkek-shares 1 (this erases its keys).", _session);
                if (_pin is null)
                    throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinRequired",
                        $"Importing a DKEK into '{_session.TokenLabel}' ends with a PIN VERIFY (the Pico HSM stores the DKEK only then). Connect with the user PIN.", _session);
                if (open.KeyDomain != 0) EnsurePin();
                _card.ImportDkekShare(open.KeyDomain, dkek.Span);
                VerifyWithCopy();
                var after = _card.GetKeyDomainStatus(open.KeyDomain);
                CheckImportedKcv(after, kcvHex);
                return true;
            });
        }
    }

    private void CheckImportedKcv(ScHsmKeyDomainStatus after, string expected)
    {
        if (!after.IsComplete)
            throw new PicoHsmException(PicoErrorKind.DeviceError, "DkekIncomplete",
                $"After the import, key domain {after.KeyDomain} still reports {after.OutstandingShares} of {after.TotalShares} shares outstanding. Check with Get-PicoDkek.", _session);
        if (after.Kcv is null)
            throw new PicoHsmException(PicoErrorKind.DeviceError, "KcvUnknown",
                $"The card took the DKEK but does not report its KCV after the PIN VERIFY (expected {expected}). Check with Get-PicoDkek after reconnecting.", _session);
        if (after.KcvHex != expected)
            throw new PicoHsmException(PicoErrorKind.DeviceError, "KcvMismatch",
                $"The card reports KCV {after.KcvHex} for key domain {after.KeyDomain}, but the imported DKEK has KCV {expected}. " +
                "Shares were imported into this domain before; delete its DKEK (or re-initialise) and import again.", _session);
    }

    private PicoHsmException PinNeededForKcv() => new(PicoErrorKind.AuthenticationFailed, "PinRequired",
        $"The card '{_session.TokenLabel}' shows its DKEK's KCV only after the user PIN was verified in this card session. Connect with the user PIN.", _session);

    private void RequireInitialised(ScHsmPinStatus pin)
    {
        if (pin.State == ScHsmPinState.NotInitialized)
            throw new PicoHsmException(PicoErrorKind.InvalidOperation, "NotInitialized",
                $"The card in '{_channel.ReaderName}' is not initialised. Initialise it first (sc-hsm-tool --initialize --dkek-shares N).", _session);
    }

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
        lock (_session.Gate)
        {
            return WithTransaction($"import DKEK shares into key domain {kd}", () =>
            {
                RequireInitialised(Prepare());
                if (kd != 0) EnsurePin();
                var d = _card.GetKeyDomainStatus(kd);
                if (!d.HasDkek)
                    throw new PicoHsmException(PicoErrorKind.InvalidOperation, "NoDkekDomain",
                        $"Key domain {kd} of '{_session.TokenLabel}' takes no DKEK shares (initialised without --dkek-shares, or not set up). Re-initialise with --dkek-shares N.", _session);
                if (d.IsComplete)
                {
                    if (d.Kcv is null && _pin is not null) { VerifyWithCopy(); d = _card.GetKeyDomainStatus(kd); }
                    if (d.KcvHex == expected) return Describe(d); // these shares are already in
                    throw new PicoHsmException(PicoErrorKind.ResourceExists, "OtherDkekPresent",
                        $"Key domain {kd} of '{_session.TokenLabel}' already holds a complete DKEK (KCV {d.KcvHex ?? "unknown"}); no shares are outstanding. " +
                        "To replace it, re-initialise the card (this erases its keys).", _session);
                }
                if (shares.Count > d.OutstandingShares)
                    throw new PicoHsmException(PicoErrorKind.InvalidArgument, "TooManyShares",
                        $"Key domain {kd} of '{_session.TokenLabel}' has {d.OutstandingShares} of {d.TotalShares} shares outstanding; {shares.Count} were given. Give only the missing shares.", _session);
                bool wholeSet = d.ImportedShares == 0 && shares.Count == d.TotalShares;
                bool completes = shares.Count == d.OutstandingShares;
                if (completes && _pin is null)
                    throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinRequired",
                        $"The last DKEK share must be followed by a PIN VERIFY (the Pico HSM stores the DKEK only then). Connect to '{_session.TokenLabel}' with the user PIN.", _session);
                ScHsmKeyDomainStatus after = d;
                foreach (var s in shares) after = _card.ImportDkekShare(kd, s.Span);
                if (!completes) return Describe(after);
                VerifyWithCopy();
                after = _card.GetKeyDomainStatus(kd);
                if (wholeSet) CheckImportedKcv(after, expected);
                return Describe(after);
            });
        }
    }

    /// <summary>
    /// INITIALIZE DEVICE: erases every key. <paramref name="dkekShares"/>: number of DKEK shares to announce
    /// (0 = a random DKEK made on the device, no backup possible; negative = no DKEK at all).
    /// <paramref name="keyDomains"/>: number of key domains (Pico). Reconnects when the device reboots.
    /// The backend's PIN copy becomes <paramref name="userPin"/>.
    /// </summary>
    public void Initialize(ReadOnlySpan<byte> soPin8, ReadOnlySpan<byte> userPin, int dkekShares, int? keyDomains, byte retries = 3)
    {
        if (soPin8.Length != ScHsmCard.SoPinLength)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "BadSoPin", "The SO-PIN is 8 bytes (16 hex digits).", null);
        if (dkekShares > 255) throw new ArgumentOutOfRangeException(nameof(dkekShares));
        if (keyDomains is < 0 or > 255) throw new ArgumentOutOfRangeException(nameof(keyDomains));
        if (_disposed) throw Closed();
        lock (_session.Gate)
        {
            try
            {
                using (_channel.BeginTransaction())
                {
                    Prepare();
                    _card.InitializeDevice(soPin8, userPin, retries, dkekShares < 0 ? null : (byte)dkekShares, keyDomains is int k ? (byte)k : null);
                }
            }
            catch (ScHsmCardException ex) when (ex.StatusWord == 0x6982 || ex.PinTriesLeft is not null || ex.StatusWord == 0x6983)
            {
                throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "WrongSoPin",
                    $"The card refused the SO-PIN (SW {ex.StatusWord:X4}{(ex.PinTriesLeft is int left ? $", {left} tries left" : "")}). Check the SO-PIN (16 hex digits); nothing was erased.", _session, ex);
            }
            catch (ScHsmCardException ex)
            {
                throw Translate(ex, "initialise the card", _session);
            }
            catch (PcscException ex)
            {
                throw Unavailable(ex, _channel.ReaderName);
            }
            _pin?.Dispose();
            _pin = SecretBytes.CopyOf(userPin);
            // A Pico HSM may reboot after INITIALIZE: reconnect when the card went away, then select the applet.
            try
            {
                try
                {
                    using (_channel.BeginTransaction()) Prepare();
                }
                catch (PcscException)
                {
                    _channel.Reconnect(reset: false);
                    using (_channel.BeginTransaction()) Prepare();
                }
            }
            catch (PcscException ex)
            {
                throw Unavailable(ex, _channel.ReaderName);
            }
            catch (ScHsmCardException ex)
            {
                throw Translate(ex, "reach the card after initialising it", _session);
            }
        }
    }

    // ==========================================================================================
    // Keys
    // ==========================================================================================

    private sealed record CardKey(byte Kid, byte[]? Prkd, ScHsmKeyDescription? Description, byte[]? Certificate);

    /// <summary>The keys with their PRKD (and, unless <paramref name="withCertificates"/> is false, their CE file).</summary>
    private List<CardKey> ReadCardKeys(bool withCertificates = true)
    {
        var list = new List<CardKey>();
        foreach (var e in _card.ListKeys())
        {
            byte[]? prkd = e.HasPrivateKeyDescription ? _card.ReadPrivateKeyDescription(e.KeyReference) : null;
            ScHsmKeyDescription? desc = null;
            if (prkd is { Length: > 0 })
            {
                try { desc = ScHsmKeyDescription.Parse(prkd); }
                catch (ScHsmFormatException) { }
            }
            byte[]? cert = e.HasCertificate == false || !withCertificates ? null : _card.ReadCertificate(e.KeyReference);
            list.Add(new CardKey(e.KeyReference, prkd, desc, cert is { Length: > 0 } ? cert : null));
        }
        return list;
    }

    /// <summary>The keys on the card (every CC kid but the device key), read from the card alone.</summary>
    public List<PicoKey> ListKeys()
    {
        lock (_session.Gate)
        {
            return WithTransaction("list the card's keys", () =>
            {
                Prepare();
                var domains = _card.EnumerateKeyDomains();
                return ReadCardKeys().Select(k => ToPicoKey(k, domains)).ToList();
            });
        }
    }

    private PicoKey ToPicoKey(CardKey k, IReadOnlyList<ScHsmKeyDomainStatus> domains)
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
            TokenLabel = _session.TokenLabel,
            TokenSerial = _session.SerialNumber,
            SessionId = _session.SessionId,
            KeyReference = k.Kid,
            KeyDomain = configured.Count == 1 ? configured[0].KeyDomain : null,
            Exportable = complete,
            ExportBlockedReason = complete ? null : "no complete DKEK in the key domain",
        };
    }

    /// <summary>The key reference of <paramref name="key"/>: its own, else the PRKD with its CKA_ID.</summary>
    private byte ResolveKeyReference(PicoKey key)
    {
        if (key.KeyReference is int r)
        {
            if (r is < 1 or > 255 || _card.ListKeys().All(k => k.KeyReference != r))
                throw new PicoHsmException(PicoErrorKind.NotFound, "KeyNotFound",
                    $"There is no key with reference {r} on '{_session.TokenLabel}'. List the keys again (Get-PicoKey).", key);
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
                $"No key with id {key.Id} on '{_session.TokenLabel}'. List the keys again (Get-PicoKey).", key),
            _ => throw new PicoHsmException(PicoErrorKind.InvalidOperation, "DuplicateId",
                $"Keys {string.Join(", ", matches.Select(m => m.Kid))} on '{_session.TokenLabel}' share id {key.Id}; export by key reference instead.", key),
        };
    }

    // ==========================================================================================
    // Export
    // ==========================================================================================

    /// <summary>WRAP KEY, then the key's PRKD and CE file: the file sc-hsm-tool --wrap-key writes.</summary>
    public PicoKeyBackup Export(PicoKey key, string path, bool overwrite)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!overwrite && File.Exists(path))
            throw FileExists(path);
        var file = Wrap(key);
        byte[] bytes = file.ToArray();
        try
        {
            AtomicFile.WriteAllBytes(path, bytes, overwrite);
        }
        catch (IOException) when (!overwrite && File.Exists(path))
        {
            throw FileExists(path);
        }
        return BackupFiles.DescribeScHsm(path, bytes);
    }

    private static PicoHsmException FileExists(string path) => new(PicoErrorKind.ResourceExists, "FileExists",
        $"'{path}' already exists. Choose another path, or use -Force to replace it.", path);

    /// <summary>The wrapped-key file for <paramref name="key"/>, in memory.</summary>
    public ScHsmWrappedKeyFile Wrap(PicoKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_session.Gate)
        {
            return WithTransaction($"wrap key {key.Id} '{key.Label}'", () =>
            {
                EnsurePin();
                byte kid = ResolveKeyReference(key);
                byte[] blob;
                try
                {
                    blob = _card.WrapKey(kid);
                }
                catch (ScHsmCardException ex) when (ex.StatusWord == 0x6A88)
                {
                    var domains = _card.EnumerateKeyDomains();
                    string why = domains.Any(d => d.IsComplete)
                        ? $"the key's key domain has no complete DKEK (complete: {string.Join(", ", domains.Where(d => d.IsComplete).Select(d => d.KeyDomain))})"
                        : "the card has no complete DKEK (import all DKEK shares, then verify the PIN)";
                    throw new PicoHsmException(PicoErrorKind.InvalidOperation, "NoDkek",
                        $"Key {key.Id} '{key.Label}' (reference {kid}) cannot be wrapped: {why}.", key, ex);
                }
                catch (ScHsmCardException ex) when (ex.StatusWord == 0x6985)
                {
                    throw new PicoHsmException(PicoErrorKind.PermissionDenied, "KeyNotExportable",
                        $"Key {key.Id} '{key.Label}' (reference {kid}) was generated with an algorithm list that does not allow wrapping (0x92), so the card will not export it under the DKEK. It cannot be backed up.", key, ex);
                }
                // What sc-hsm-tool --wrap-key adds: the PRKD (C4 kid) and the certificate / request (CE kid).
                byte[]? prkd = _card.ReadPrivateKeyDescription(kid);
                byte[]? cert = _card.ReadCertificate(kid);
                if (prkd is not { Length: > 0 } || !IsSingleElement(prkd)) prkd = null;
                if (cert is not { Length: > 0 } || !IsSingleElement(cert)) cert = null;
                return new ScHsmWrappedKeyFile(blob, prkd, cert);
            });
        }
    }

    private static bool IsSingleElement(byte[] b)
    {
        try { return DerElement.Read(b, "an element").Encoded.Length == b.Length; }
        catch (ScHsmFormatException) { return false; }
    }

    // ==========================================================================================
    // Restore
    // ==========================================================================================

    private sealed record Parsed(ScHsmWrappedKeyFile File, ScHsmKeyBlob Blob, ScHsmKeyDescription? Description, ScHsmPublicKey? PublicKey);

    private static Parsed ParseBackup(PicoKeyBackup backup)
    {
        var raw = backup.ScHsmFile ?? throw new PicoHsmException(PicoErrorKind.NotSupported, "FormatNotSupported",
            $"'{backup.Path}' is a PicoHsm (.pkb) backup for generic PKCS#11 tokens; a SmartCard-HSM / Pico HSM restores sc-hsm-tool wrapped-key files (.wky) only. Restore it to a generic token.", backup.Path);
        try
        {
            var file = ScHsmWrappedKeyFile.Read(raw);
            var blob = file.ParseKeyBlob();
            var desc = file.ParseDescription();
            return new Parsed(file, blob, desc, ScHsmCardFiles.ReadPublicKey(file.Certificate, desc?.KeySizeBits));
        }
        catch (Exception ex) when (ex is ScHsmFormatException or FormatException or ArgumentException)
        {
            throw new PicoHsmException(PicoErrorKind.InvalidData, "BackupCorrupt",
                $"'{backup.Path}' is not a readable sc-hsm-tool wrapped-key file: {ex.Message}", backup.Path, ex);
        }
    }

    private static string DomainKcvs(IReadOnlyList<ScHsmKeyDomainStatus> domains)
    {
        var complete = domains.Where(d => d.IsComplete).ToList();
        if (complete.Count == 0)
        {
            var partial = domains.FirstOrDefault(d => d.HasDkek);
            return partial is null ? "no DKEK" : $"no complete DKEK ({partial.OutstandingShares} of {partial.TotalShares} shares outstanding)";
        }
        return string.Join(", ", complete.Select(d => $"{d.KcvHex ?? "unknown (PIN not verified)"} in key domain {d.KeyDomain}"));
    }

    /// <summary>Key references in use: CC kid, C4 kid listed, or CE kid found by SELECT (Pico does not list CE files).</summary>
    private bool IsOccupied(byte kid, HashSet<ushort> fids) =>
        fids.Contains((ushort)(ScHsmCard.KeyPrefix << 8 | kid)) ||
        fids.Contains((ushort)(ScHsmCard.PrkdPrefix << 8 | kid)) ||
        fids.Contains((ushort)(ScHsmCard.CertificatePrefix << 8 | kid)) ||
        _card.FileExists((ushort)(ScHsmCard.CertificatePrefix << 8 | kid));

    private byte? FirstFreeReference(HashSet<ushort> fids, bool fromTop)
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

    /// <summary>
    /// Restores an sc-hsm-tool file: DKEK, key type, key reference and id are checked before anything on the
    /// card changes; then UNWRAP KEY, the PRKD to C4 kid and the certificate / request to CE kid.
    /// </summary>
    public PicoKey Restore(PicoKeyBackup backup, RestoreRequest request)
    {
        ArgumentNullException.ThrowIfNull(backup);
        ArgumentNullException.ThrowIfNull(request);
        var p = ParseBackup(backup);
        if (request.KeyReference is int wanted && wanted is < 1 or > 254)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "BadKeyReference",
                $"Key reference {wanted} is out of range: use 1 to 254 (0 is the device's own key).", request.KeyReference);
        lock (_session.Gate)
        {
            return WithTransaction($"restore '{backup.Path}'", () =>
            {
                EnsurePin();
                var domains = ReadDomains();
                if (!domains.Any(d => d.IsComplete && d.KcvHex == p.Blob.KcvHex))
                    throw new PicoHsmException(PicoErrorKind.InvalidOperation, "DkekMismatch",
                        $"'{backup.Path}' was wrapped under the DKEK with KCV {p.Blob.KcvHex}, but the card '{_session.TokenLabel}' holds {DomainKcvs(domains)}. " +
                        "Import the backup's DKEK into the card first (Import-PicoDkek with its shares). Nothing was changed.", backup);
                if (p.Blob.KeyType is not (ScHsmKeyType.Rsa or ScHsmKeyType.RsaCrt or ScHsmKeyType.Ec or ScHsmKeyType.Aes))
                    throw new PicoHsmException(PicoErrorKind.NotSupported, "KeyTypeNotSupported",
                        $"'{backup.Path}' holds a key of type {(byte)p.Blob.KeyType:X2}, which the card cannot unwrap.", backup);

                var fids = new HashSet<ushort>(_card.EnumerateObjects());
                byte target;
                if (request.KeyReference is int r)
                {
                    target = (byte)r;
                    if (IsOccupied(target, fids) && !request.Force)
                        throw new PicoHsmException(PicoErrorKind.ResourceExists, "KeyReferenceInUse",
                            $"Key reference {r} on '{_session.TokenLabel}' is in use (the card would overwrite it silently). Choose a free -KeyReference, or use -Force to replace that key.", backup);
                }
                else
                {
                    target = FirstFreeReference(fids, fromTop: false) ?? throw new PicoHsmException(PicoErrorKind.ResourceUnavailable, "NoFreeKeyReference",
                        $"Every key reference (1-254) on '{_session.TokenLabel}' is in use. Delete a key, or restore with -KeyReference and -Force.", backup);
                }

                byte[]? id = request.NewId ?? p.Description?.Id;
                if (id is { Length: > 0 })
                {
                    var clash = ReadCardKeys(withCertificates: false).FirstOrDefault(k => k.Kid != target && k.Description?.Id is { } other && other.AsSpan().SequenceEqual(id));
                    if (clash is not null)
                        throw new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
                            $"Id {Convert.ToHexString(id).ToLowerInvariant()} is already used by key reference {clash.Kid} ('{clash.Description?.Label}') on '{_session.TokenLabel}'. " +
                            "Restore with -Id <another id>. Nothing was changed.", backup);
                }

                // Changes start here.
                try
                {
                    _card.UnwrapKey(target, p.File.KeyBlob);
                }
                catch (ScHsmCardException ex) when (ex.Error == ScHsmError.DkekMismatch)
                {
                    throw new PicoHsmException(PicoErrorKind.InvalidData, "BlobRejected",
                        $"The card refused the key blob of '{backup.Path}' (SW {ex.StatusWord:X4}): its CMAC does not verify under the card's DKEK {p.Blob.KcvHex}, so the file was altered or damaged.", backup, ex);
                }
                WriteCompanionFiles(target, p, request);
                var restored = ReadCardKeys().First(k => k.Kid == target);
                return ToPicoKey(restored, _card.EnumerateKeyDomains());
            });
        }
    }

    private void WriteCompanionFiles(byte kid, Parsed p, RestoreRequest request)
    {
        ushort c4 = (ushort)(ScHsmCard.PrkdPrefix << 8 | kid);
        ushort ce = (ushort)(ScHsmCard.CertificatePrefix << 8 | kid);
        if (p.File.Certificate is { } cert)
            _card.WriteFile(ce, cert);
        else if (p.Blob.Kind == KeyKind.Aes && _card.FileExists(ce))
            _card.DeleteFile(ce); // a stale certificate of a key this one replaced

        byte[]? prkd = null;
        var d = p.Description;
        if (request.NewId is not null || request.NewLabel is not null || d is null)
        {
            string label = request.NewLabel ?? d?.Label ?? "";
            byte[] id = request.NewId ?? d?.Id ?? [kid];
            int size = d?.KeySizeBits ?? p.PublicKey?.SizeBits ?? 0;
            if (size == 0)
            {
                // Pico writes a request (RSA/EC) and a minimal PRKD with the size at unwrap: read the size from them.
                var own = _card.ReadCertificate(kid);
                size = ScHsmCardFiles.ReadPublicKey(own)?.SizeBits ?? 0;
                if (size == 0 && _card.ReadPrivateKeyDescription(kid) is { Length: > 0 } ownPrkd)
                {
                    try { size = ScHsmKeyDescription.Parse(ownPrkd).KeySizeBits ?? 0; } catch (ScHsmFormatException) { }
                }
            }
            if (d is null && request.NewId is null && request.NewLabel is null)
                prkd = null; // nothing to say beyond what the card wrote itself
            else
                prkd = p.Blob.Kind switch
                {
                    KeyKind.Rsa => ScHsmKeyDescription.BuildRsa(label, id, kid, size, d?.Usage, d?.Flags, d?.AuthId).Encoded,
                    KeyKind.Ec => ScHsmKeyDescription.BuildEc(label, id, kid, size, d?.Usage, d?.Flags, d?.AuthId).Encoded,
                    _ => ScHsmKeyDescription.BuildAes(label, id, size, d?.KeyReference is null ? null : kid, d?.Usage).Encoded,
                };
        }
        else if (p.File.PrivateKeyDescription is { } original)
        {
            prkd = ScHsmCardFiles.WithKeyReference(original, kid);
        }
        if (prkd is not null) _card.WriteFile(c4, prkd);
    }

    // ==========================================================================================
    // Test
    // ==========================================================================================

    /// <summary>
    /// DKEK match and compatibility; with <paramref name="restoreTest"/> the key is unwrapped into a free key
    /// reference, used (a signature verified against the backup's public key; AES: the card's CMAC check at
    /// unwrap), and deleted again whatever happened.
    /// </summary>
    public PicoBackupTestResult Test(PicoKeyBackup backup, bool restoreTest)
    {
        ArgumentNullException.ThrowIfNull(backup);
        Parsed p;
        try
        {
            p = ParseBackup(backup);
        }
        catch (PicoHsmException ex)
        {
            bool isPkb = ex.Reason == "FormatNotSupported";
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
        lock (_session.Gate)
        {
            try
            {
                WithTransaction($"test '{backup.Path}'", () =>
                {
                    var pin = Prepare();
                    RequireInitialised(pin);
                    if (pin.State == ScHsmPinState.NotVerified && _pin is not null) VerifyWithCopy();
                    var domains = ReadDomains();
                    var complete = domains.Where(d => d.IsComplete).ToList();
                    if (complete.Any(d => d.KcvHex == p.Blob.KcvHex)) dkekMatch = true;
                    else if (complete.Any(d => d.Kcv is null))
                        problems.Add($"The card's DKEK KCV is unknown until the user PIN is verified; connect with the PIN to compare it with the backup's {p.Blob.KcvHex}.");
                    else
                    {
                        dkekMatch = false;
                        problems.Add($"The backup was wrapped under the DKEK with KCV {p.Blob.KcvHex}, but the card holds {DomainKcvs(domains)}.");
                    }
                    if (p.Blob.KeyType is not (ScHsmKeyType.Rsa or ScHsmKeyType.RsaCrt or ScHsmKeyType.Ec or ScHsmKeyType.Aes))
                    {
                        compatible = false;
                        problems.Add($"Key type {(byte)p.Blob.KeyType:X2} cannot be unwrapped by the card.");
                    }
                    if (!p.Blob.HasPicoDefaultAlgorithm)
                        details.Add("The blob's default algorithm is not the one the Pico HSM firmware expects; a Pico HSM may refuse it (a CardContact SmartCard-HSM accepts it).");
                    var fids = new HashSet<ushort>(_card.EnumerateObjects());
                    byte? free = FirstFreeReference(fids, fromTop: true);
                    if (free is null)
                    {
                        compatible = false;
                        problems.Add("Every key reference on the card is in use; there is no room to restore the key.");
                    }
                    if (p.Description?.Id is { } id && ReadCardKeys(withCertificates: false).FirstOrDefault(k => k.Description?.Id is { } o && o.AsSpan().SequenceEqual(id)) is { } clash)
                        details.Add($"Id {Convert.ToHexString(id).ToLowerInvariant()} is in use by key reference {clash.Kid}: restore with a new id, or -Force onto that reference.");

                    if (restoreTest && dkekMatch == true && compatible && free is byte tmp)
                    {
                        EnsurePin();
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
                    return 0;
                });
            }
            catch (PicoHsmException ex)
            {
                problems.Add(ex.Message);
                if (restoreTest) restorable ??= false;
            }
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
    private (bool Ok, string Detail) RestoreTest(byte kid, Parsed p, List<string> problems)
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

    // ==========================================================================================

    /// <summary>The card's user PIN state, read without spending a try (for Connect-PicoHsm's checks).</summary>
    public ScHsmPinStatus ReadPinStatus()
    {
        lock (_session.Gate) return WithTransaction("read the PIN state", Prepare);
    }

    /// <summary>
    /// Logs a card-only session in: the PIN given is always verified (the card may already be
    /// verified by another session, which must not make any PIN look right), then kept for later.
    /// </summary>
    public void Login(SecretBytes pin)
    {
        lock (_session.Gate)
        {
            _pin?.Dispose();
            _pin = SecretBytes.CopyOf(pin.Span);
            WithTransaction("verify the user PIN", () => { Prepare(); VerifyWithCopy(); return 0; });
        }
    }

    /// <summary>Logs the card out as OpenSC does (re-selecting the applet ends the PIN session).</summary>
    public void Logout()
    {
        lock (_session.Gate)
        {
            try { using (_channel.BeginTransaction()) _card.SelectApplet(); }
            catch (Exception ex) when (ex is PcscException or ScHsmCardException) { /* card gone: nothing to log out of */ }
        }
    }

    /// <summary>
    /// Ends the connection: a card-only login is ended on the card (as OpenSC does), a PKCS#11
    /// session through OpenSC is logged out and closed, and the PIN copy is zeroed.
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        if (_p11 is null && _session.IsLoggedIn) Logout();
        _disposed = true;
        _p11?.Dispose();
        _session.SetLoggedIn(false);
        _pin?.Dispose();
        _pin = null;
        try { _channel.Dispose(); } catch (PcscException) { }
    }
}
