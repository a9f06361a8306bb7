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
///
/// This class is the device surface (IDeviceBackend, IScHsmDevice), the connection's lifetime and the
/// login; each job is done by a collaborator: <see cref="ScHsmCardConnector"/> (opening),
/// <see cref="ScHsmTokenReader"/> (identity), <see cref="ScHsmCardTransactions"/> and <see cref="ScHsmCardPin"/>
/// (plumbing), <see cref="ScHsmCardDkek"/>, <see cref="ScHsmCardInitializer"/>, <see cref="ScHsmCardCatalogue"/>,
/// <see cref="ScHsmCardExport"/>, <see cref="ScHsmCardRestore"/> and <see cref="ScHsmCardRestoreTest"/>.
/// </summary>
public sealed class ScHsmCardBackend : IDeviceBackend, IScHsmDevice, IKeyRemover, IConnectionCheck
{
    public const string Manufacturer = "www.CardContact.de";
    public const string TokenLabelDefault = "SmartCard-HSM";

    private readonly DeviceContext _context;
    private readonly Pkcs11Connection? _p11;
    private readonly ICardChannel _channel;
    private readonly ScHsmCard _card;
    private readonly ScHsmCardPin _pin;
    private readonly ScHsmCardTransactions _calls;
    private readonly ScHsmCardDkek _dkek;
    private readonly ScHsmCardInitializer _initializer;
    private readonly ScHsmCardCatalogue _catalogue;
    private readonly ScHsmCardExport _export;
    private readonly ScHsmCardRestore _restore;
    private readonly ScHsmCardRestoreTest _restoreTest;
    private readonly ScHsmCardRemover _remover;

    /// <param name="pkcs11">The PKCS#11 session of the same card through OpenSC, when the connection has one;
    /// this backend owns it (logs out and closes it on dispose).</param>
    public ScHsmCardBackend(DeviceContext context, ICardChannel channel, SecretBytes? pin, Pkcs11Connection? pkcs11 = null)
    {
        _context = context ?? throw new ArgumentNullException(nameof(context));
        _p11 = pkcs11;
        _channel = channel ?? throw new ArgumentNullException(nameof(channel));
        _card = new ScHsmCard(channel);
        _pin = new ScHsmCardPin(_card, context, pin);
        _calls = new ScHsmCardTransactions(context, channel) { Gone = Dispose };
        _dkek = new ScHsmCardDkek(_card, _pin, _calls, context);
        _initializer = new ScHsmCardInitializer(_card, _pin, _calls, context);
        _catalogue = new ScHsmCardCatalogue(_card, _pin, _calls, context);
        _export = new ScHsmCardExport(_card, _pin, _calls, _catalogue);
        _restore = new ScHsmCardRestore(_card, _pin, _calls, context, _dkek, _catalogue);
        _restoreTest = new ScHsmCardRestoreTest(_card, _pin, _calls, _dkek, _catalogue, new ScHsmCardRestorePlanner(_card, context, _dkek, _catalogue));
        _remover = new ScHsmCardRemover(_card, _pin, _calls, context, _catalogue);
    }

    public DeviceFamily Family => DeviceFamily.ScHsmCard;
    public string BackupExtension => ".wky";
    public DeviceContext Context => _context;
    public bool IsOpen => !_calls.IsClosed && (_p11 is null || _p11.IsOpen);
    public bool HasPkcs11 => _p11 is not null;
    public string ReaderName => _channel.ReaderName;

    /// <summary>
    /// One SCardStatus on the card channel (no APDU, no login): false, and the connection closed (the PKCS#11
    /// session through OpenSC too), once the card it was made to left the reader or was restarted.
    /// </summary>
    public bool CheckConnection() => _calls.Check() && IsOpen;

    /// <summary>The card's own generator is not exposed by the applet; OpenSC's C_GenerateRandom is, when there.</summary>
    public byte[]? GenerateRandom(int count)
    {
        if (_p11 is null) return null;
        lock (_context.Gate) return _p11.Session.GenerateRandom(count);
    }

    /// <summary>The card client (for tests and tools that need a command the backend does not wrap).</summary>
    public ScHsmCard Card => _card;

    public ICardChannel Channel => _channel;

    /// <summary>Whether the backend holds a PIN copy to VERIFY with.</summary>
    public bool HasPin => _pin.HasCopy;

    // Opening and identity ---------------------------------------------------------------------

    /// <summary>Readers holding a SmartCard-HSM family card (by ATR; nothing is sent to any card).</summary>
    public static IReadOnlyList<string> FindReaders() => ScHsmCardConnector.FindReaders();

    /// <summary>
    /// Connects to <paramref name="readerName"/> (shared mode) and makes the backend of a connection
    /// that also has <paramref name="pkcs11"/> (OpenSC's module) when given; the backend owns both.
    /// </summary>
    public static ScHsmCardBackend Open(DeviceContext context, string readerName, SecretBytes? pin, Pkcs11Connection? pkcs11 = null)
        => ScHsmCardConnector.Open(context, readerName, pin, pkcs11);

    /// <summary>
    /// For a PKCS#11 session through OpenSC: the card in the reader the slot is named after (OpenSC's slot
    /// description is the PC/SC reader name). The PKCS#11 login counts for this connection too (the PIN state
    /// belongs to the card), so <paramref name="pin"/> is needed only if that login is gone.
    /// </summary>
    public static ScHsmCardBackend Open(DeviceContext context, SecretBytes? pin, Pkcs11Connection? pkcs11 = null)
        => ScHsmCardConnector.Open(context, pin, pkcs11);

    /// <summary>
    /// A session to a card reached through PC/SC only (no PKCS#11 module): the token is described from
    /// the card (<see cref="ReadToken"/>), the backend is attached, and with a PIN the session is marked
    /// logged in once the card accepted it.
    /// </summary>
    public static ScHsmCardBackend ConnectCardOnly(string readerName, SecretBytes? pin) => ScHsmCardConnector.ConnectCardOnly(readerName, pin);

    /// <summary>The card described as a token, as OpenSC names it (see <see cref="ScHsmTokenReader"/>).</summary>
    public static PicoHsmToken ReadToken(ICardChannel channel) => ScHsmTokenReader.ReadToken(channel);

    // Key domains, the DKEK, INITIALIZE ----------------------------------------------------------

    IReadOnlyList<PicoDkek> IDeviceBackend.GetDkek() => GetDkek();

    /// <summary>One entry per configured key domain (at least one entry).</summary>
    public IReadOnlyList<PicoDkek> GetDkek() => _dkek.GetDkek();

    /// <summary>
    /// Puts a whole DKEK (rebuilt by the module from its n-of-m shares) on the card: only into a key domain
    /// announced with exactly one share, imported as that share. False: the card already holds this DKEK.
    /// <paramref name="label"/> and <paramref name="id"/> are not used (the card keeps no label for its DKEK).
    /// </summary>
    public bool ImportDkek(SecretBytes dkek, string label, byte[] id) => _dkek.ImportDkek(dkek, label, id);

    /// <summary>
    /// Imports k XOR shares (sc-hsm-tool .pbe files, decrypted) into <paramref name="keyDomain"/> with IMPORT DKEK
    /// SHARE; when they complete the domain, VERIFY the PIN and check the KCV (see <see cref="ScHsmCardDkek.ImportShares"/>).
    /// </summary>
    public PicoDkek ImportShares(IReadOnlyList<SecretBytes> shares, int keyDomain = 0) => _dkek.ImportShares(shares, keyDomain);

    /// <summary>
    /// INITIALIZE DEVICE: erases every key. <paramref name="dkekShares"/>: number of DKEK shares to announce
    /// (0 = a random DKEK made on the device, no backup possible; negative = no DKEK at all).
    /// <paramref name="keyDomains"/>: number of key domains (Pico). Reconnects when the device reboots.
    /// The backend's PIN copy becomes <paramref name="userPin"/>.
    /// </summary>
    public void Initialize(ReadOnlySpan<byte> soPin8, ReadOnlySpan<byte> userPin, int dkekShares, int? keyDomains, byte retries = 3)
        => _initializer.Initialize(soPin8, userPin, dkekShares, keyDomains, retries);

    // Keys -------------------------------------------------------------------------------------

    /// <summary>The keys on the card (every CC kid but the device key), read from the card alone.</summary>
    public List<PicoKey> ListKeys() => _catalogue.ListKeys();

    /// <summary>WRAP KEY, then the key's PRKD and CE file: the file sc-hsm-tool --wrap-key writes.</summary>
    public PicoKeyBackup Export(PicoKey key, string path, bool overwrite) => _export.Export(key, path, overwrite);

    public WrappedKeyBytes WrapForExport(PicoKey key) => _export.WrapForExport(key);

    /// <summary>The wrapped-key file for <paramref name="key"/>, in memory.</summary>
    public ScHsmWrappedKeyFile Wrap(PicoKey key) => _export.Wrap(key);

    /// <summary>
    /// The pre-flight of a restore, changing nothing: DKEK domain complete and matching, key type, and the target
    /// (the key holding the backup's id, replaced only with -Force; the same key: already present; an orphan of
    /// this key: completed). See <see cref="ScHsmCardRestorePlanner"/>.
    /// </summary>
    public RestorePlan PlanRestore(PicoKeyBackup backup, RestoreRequest request) => _restore.Plan(backup, request);

    /// <summary>
    /// Restores an sc-hsm-tool file: plans again (<see cref="PlanRestore"/>) and acts on that plan, all or nothing:
    /// UNWRAP KEY, the certificate / request to CE kid, the PRKD to C4 kid; undone when a later step fails.
    /// </summary>
    public PicoKey Restore(PicoKeyBackup backup, RestoreRequest request) => _restore.Restore(backup, request);

    /// <summary>
    /// DKEK match and compatibility; with <paramref name="restoreTest"/> the key is unwrapped into a free key
    /// reference, used, and deleted again whatever happened.
    /// </summary>
    public PicoBackupTestResult Test(PicoKeyBackup backup, bool restoreTest) => _restoreTest.Test(backup, restoreTest);

    /// <summary>Remove-PicoKey: the key file, its PRKD and certificate (orphans too); never the device key.</summary>
    public string RemoveKey(PicoKey key) => _remover.Remove(key);

    // PIN status, login, logout, dispose ----------------------------------------------------------

    /// <summary>The card's user PIN state, read without spending a try (for Connect-PicoHsm's checks).</summary>
    public ScHsmPinStatus ReadPinStatus() => _calls.Run("read the PIN state", _pin.Prepare);

    /// <summary>
    /// Logs a card-only session in: the PIN given is always verified (the card may already be
    /// verified by another session, which must not make any PIN look right), then kept for later.
    /// </summary>
    public void Login(SecretBytes pin)
    {
        lock (_context.Gate)
        {
            _pin.Replace(pin.Span);
            _calls.Run("verify the user PIN", () => { _pin.Prepare(); _pin.VerifyWithCopy(); return 0; });
        }
    }

    /// <summary>Logs the card out as OpenSC does (re-selecting the applet ends the PIN session).</summary>
    public void Logout()
    {
        lock (_context.Gate)
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
        if (_calls.IsClosed) return;
        if (_p11 is null && _context.IsLoggedIn) Logout();
        _calls.Close();
        _p11?.Dispose();
        _context.SetLoggedIn(false);
        _pin.Dispose();
        try { _channel.Dispose(); } catch (PcscException) { }
    }
}
