using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// DKEK work on a generic PKCS#11 token (SoftHSM2, network HSMs): the DKEK is an AES-256
/// secret key object (sensitive, never extractable, wrap/unwrap only), keys are wrapped with
/// C_WrapKey under it and restored with C_UnwrapKey. This class is the session's
/// <see cref="IDeviceBackend"/>; the work is done by one collaborator per job, made once per
/// backend so their caches (the mechanism list) last the session: <see cref="Pkcs11DkekStore"/>,
/// <see cref="Pkcs11Mechanisms"/>, <see cref="Pkcs11KeyWrapper"/>, <see cref="Pkcs11KeyRestorer"/>,
/// <see cref="Pkcs11RestoreTest"/>.
/// </summary>
public sealed class Pkcs11DkekBackend : IDeviceBackend, IKeyGenerator, IKeyRemover, IKeyLabelSearch, IRestoreBatching
{
    public DeviceFamily Family => DeviceFamily.Pkcs11Token;
    public string BackupExtension => WrappedKeyFile.Extension;

    /// <summary>CKA_APPLICATION of the data object that records the DKEK's KCV and proof.</summary>
    public const string ProofApplication = "PicoHsm DKEK";

    private readonly DeviceContext _session;
    private readonly Pkcs11Connection _p11;
    private readonly Pkcs11Mechanisms _mechanisms;
    private readonly Pkcs11DkekStore _dkek;
    private readonly Pkcs11KeyWrapper _wrapper;
    private readonly Pkcs11KeyRestorer _restorer;
    private readonly Pkcs11RestoreTest _restoreTest;
    private readonly Pkcs11BackupMac _mac;
    private readonly Pkcs11HandleCheck _handles;

    public Pkcs11DkekBackend(DeviceContext context, Pkcs11Connection connection)
    {
        _session = context ?? throw new ArgumentNullException(nameof(context));
        _p11 = connection ?? throw new ArgumentNullException(nameof(connection));
        _mechanisms = new Pkcs11Mechanisms(connection.Slot, context);
        _handles = new Pkcs11HandleCheck(connection);
        _dkek = new Pkcs11DkekStore(context, connection, _mechanisms, _handles);
        _mac = new Pkcs11BackupMac(context, connection, _mechanisms);
        _wrapper = new Pkcs11KeyWrapper(context, connection, _mechanisms, _dkek, _mac, _handles);
        _restorer = new Pkcs11KeyRestorer(context, connection, _mechanisms, _dkek, _mac);
        _restoreTest = new Pkcs11RestoreTest(context, connection, _dkek, _restorer, PlanIndex);
    }

    public DeviceContext Context => _session;
    public bool IsOpen => _p11.IsOpen;
    public bool HasPkcs11 => true;
    public string ModulePath => _p11.ModulePath;

    /// <summary>The session's mechanism cache (for tests that check it is asked once).</summary>
    internal Pkcs11Mechanisms Mechanisms => _mechanisms;

    /// <summary>The backup MAC keys (for tests that count them: one per backup run).</summary>
    internal Pkcs11BackupMac BackupMac => _mac;

    /// <summary>The PKCS#11 session (for tests that read the objects this backend made).</summary>
    internal Pkcs11Connection Connection => _p11;

    /// <summary>The export's readers and the handle check (for tests that check Dispose releases their native buffers).</summary>
    internal bool ReadersReleased => _wrapper.Released && _handles.Released;

    /// <summary>Closes the session and releases the native buffers of the one-call readers (export, handle check).</summary>
    public void Dispose()
    {
        lock (_session.Gate)
        {
            _wrapper.Dispose();
            _handles.Dispose();
        }
        _p11.Dispose();
    }

    private ISession S => _p11.Session;

    public byte[]? GenerateRandom(int count)
    {
        lock (_session.Gate) return S.GenerateRandom(count);
    }

    public PicoKey GenerateKey(KeyKind kind, int size, string? curve, byte[] id, string label, bool extractable)
    {
        lock (_session.Gate)
        {
            // Check and create as one step for every process of this host (see TokenLock).
            using var tokenLock = TokenLock.Acquire(_session.Token, CancellationToken.None);
            var refusals = CheckGenerate(kind, size, curve, id);
            if (refusals.Count > 0) throw refusals[0];
            return Pkcs11KeyGenerator.Generate(_session, S, kind, size, curve, id, label, extractable);
        }
    }

    /// <summary>Why <see cref="GenerateKey"/> would refuse, changing nothing: the id held by any object (the DKEK named), the key type.</summary>
    public IReadOnlyList<PicoHsmException> CheckGenerate(KeyKind kind, int size, string? curve, byte[] id)
    {
        lock (_session.Gate)
        {
            try { return Pkcs11KeyGenerator.Check(_session, S, _mechanisms, kind, id, _dkek.FindDkek()); }
            catch (Pkcs11Exception ex) { throw Pkcs11Errors.Translate(ex, "check the new key's id", _session); }
        }
    }

    // ---------- DKEK ----------

    IReadOnlyList<PicoDkek> IDeviceBackend.GetDkek() => new[] { GetDkek() };

    public PicoDkek GetDkek()
    {
        lock (_session.Gate)
        {
            try { return _dkek.Describe(); }
            catch (Pkcs11Exception ex) { throw Pkcs11Errors.Translate(ex, "read the token's DKEK", _session); }
        }
    }

    /// <summary>
    /// Puts the DKEK on the token. A token that holds another DKEK is refused; the same DKEK is a
    /// no-op (returns false so the caller can warn).
    /// </summary>
    public bool ImportDkek(SecretBytes dkek, string label, byte[] id)
    {
        lock (_session.Gate)
        {
            using var tokenLock = TokenLock.Acquire(_session.Token, CancellationToken.None);
            try { return _dkek.Import(dkek, label, id); }
            catch (Pkcs11Exception ex) { throw Pkcs11Errors.Translate(ex, "import the DKEK", _session); }
        }
    }

    /// <summary>Removes the DKEK and its record (for wiping a token in the drill).</summary>
    public bool RemoveDkek()
    {
        lock (_session.Gate) return _dkek.Remove();
    }

    // ---------- mechanisms ----------

    public bool Supports(CKM m) => _mechanisms.Supports(m);

    /// <summary>The best wrap mechanism the token lists: RFC 5649 (any key length) first.</summary>
    public CKM ChooseWrapMechanism(string keyClass) => _mechanisms.ChooseWrapMechanism(keyClass);

    // ---------- keys and export ----------

    /// <summary>
    /// The key catalogue. The DKEK is recognised from the listing's own pass over the token (its record
    /// names its id) and left out; it is listed by Get-PicoDkek. Only when several records name a key
    /// is it looked up (and proven) as Get-PicoDkek does.
    /// </summary>
    public List<PicoKey> ListKeys()
    {
        lock (_session.Gate)
        {
            // A listing starts an operation: exports after it see the token as it is now, objects
            // other tools added included. The wrapper's object index and DKEK proof start afresh, from
            // the listing's own pass: the keys and certificates it read, and the proof kept only if
            // that pass found the very DKEK objects proven before (else the first export proves it).
            var objects = new Pkcs11ObjectCatalogue();
            List<PicoKey> keys;
            DkekObjects? listedDkek;
            try { keys = Pkcs11KeyStore.List(_session, S, () => _dkek.FindDkek()?.Id, objects, out listedDkek); }
            catch
            {
                _wrapper.Reset(); // a failed listing still starts afresh
                throw;
            }
            _wrapper.StartFrom(objects, listedDkek);
            return keys;
        }
    }

    /// <summary>The keys of exactly that label (see <see cref="IKeyLabelSearch"/>); the DKEK is looked up only if a secret key is found.</summary>
    public List<PicoKey> ListKeysByLabel(string label)
    {
        lock (_session.Gate)
        {
            _wrapper.Reset();
            byte[]? dkekId = null;
            bool looked = false;
            bool IsDkek(byte[] id)
            {
                if (!looked)
                {
                    looked = true;
                    try { dkekId = _session.IsLoggedIn ? _dkek.FindDkek()?.Id : null; }
                    catch (Pkcs11Exception ex) { throw Pkcs11Errors.Translate(ex, "list the token's keys", _session); }
                }
                return dkekId is not null && dkekId.AsSpan().SequenceEqual(id);
            }
            return Pkcs11KeyStore.ListByLabel(_session, S, label, IsDkek);
        }
    }

    public PicoKeyBackup Export(PicoKey key, string path, bool overwrite) =>
        BackupFiles.Write(path, overwrite, () => WrapForExport(key));

    public WrappedKeyBytes WrapForExport(PicoKey key)
    {
        var file = Wrap(key);
        byte[] bytes = file.ToBytes();
        return new WrappedKeyBytes(bytes, p => BackupFiles.Describe(p, file, bytes));
    }

    public WrappedKeyFile Wrap(PicoKey key) => _wrapper.Wrap(key);

    // ---------- compatibility and restore ----------

    /// <summary>
    /// The pre-flight of a restore (see <see cref="Pkcs11KeyRestorer.Plan"/>): the DKEK found and proven once,
    /// mechanism, key type and size, and every object at the target id. Changes nothing.
    /// </summary>
    public RestorePlan PlanRestore(PicoKeyBackup backup, RestoreRequest request)
    {
        ArgumentNullException.ThrowIfNull(backup);
        ArgumentNullException.ThrowIfNull(request);
        string idHex = request.NewId is null ? backup.Id ?? "" : Convert.ToHexString(request.NewId).ToLowerInvariant();
        if (backup.Content is null)
            return RestorePlan.Refuse(idHex, request.NewLabel ?? backup.Label, $"id {idHex} on '{Context.TokenLabel}'", NotPkb(backup));
        return Plan(backup.Content, request.NewId, request.NewLabel, request.Force);
    }

    /// <summary>The pre-flight for a backup already read.</summary>
    public RestorePlan Plan(WrappedKeyFile b, byte[]? newId, string? newLabel, bool force)
    {
        lock (_session.Gate)
        {
            try { return _restorer.Plan(b, newId, newLabel, force, PlanIndex()).Plan; }
            catch (Pkcs11Exception ex) { throw Pkcs11Errors.Translate(ex, $"check the restore of key {Pkcs11KeyStore.IdHex(newId ?? b.Id)}", b); }
        }
    }

    private static PicoHsmException NotPkb(PicoKeyBackup backup) => new(PicoErrorKind.NotSupported, "FormatNotSupported",
        $"'{backup.Path}' is an sc-hsm-tool file for a SmartCard-HSM / Pico HSM; a generic PKCS#11 token restores PicoHsm (.pkb) backups only.", backup.Path);

    /// <summary>
    /// Restores a key: plans again under the gate and acts on that plan. Refused: its first refusal is
    /// thrown and nothing changed. Already present: the key there is returned (its missing public key or
    /// certificate added). With <see cref="RestoreRequest.Force"/> another key of the same class is replaced
    /// only after the new key exists; the DKEK never.
    /// </summary>
    public PicoKey Restore(PicoKeyBackup backup, RestoreRequest request)
    {
        ArgumentNullException.ThrowIfNull(backup);
        ArgumentNullException.ThrowIfNull(request);
        var content = backup.Content ?? throw NotPkb(backup);
        return Restore(content, request.NewId, request.NewLabel, request.Force);
    }

    public PicoKey Restore(WrappedKeyFile b, byte[]? newId, string? newLabel, bool force)
    {
        lock (_session.Gate)
        {
            if (_batch is { } batch)
            {
                // The batch holds the token lock (a second flock of this process would wait for itself).
                var key = _restorer.Restore(b, newId, newLabel, force, batch.Index);
                batch.Restored(newId ?? b.Id);
                return key;
            }
            // Plan and create as one step for every process of this host: of two restores racing for an
            // id, the second finds the first's key and reports it as already present (see TokenLock).
            using var tokenLock = TokenLock.Acquire(_session.Token, CancellationToken.None);
            return _restorer.Restore(b, newId, newLabel, force);
        }
    }

    // ---------- restore batches (IRestoreBatching) ----------

    private bool _planning;
    private Pkcs11IdIndex? _planIndex;
    private Pkcs11RestoreBatch? _batch;

    /// <summary>The index plans read: the restore batch's, else the planning scope's snapshot (taken at its first plan), else none (a search per plan).</summary>
    private Pkcs11IdIndex? PlanIndex() =>
        _batch?.Index ?? (_planning ? _planIndex ??= Pkcs11IdIndex.Take(S, _p11.ModulePath) : null);

    public IDisposable BeginPlanning()
    {
        lock (_session.Gate)
        {
            if (_planning || _batch is not null) return new PlanningScope(null);
            _planning = true;
            return new PlanningScope(this);
        }
    }

    private sealed class PlanningScope(Pkcs11DkekBackend? owner) : IDisposable
    {
        private Pkcs11DkekBackend? _owner = owner;
        public void Dispose()
        {
            if (_owner is not { } o) return;
            lock (o._session.Gate)
            {
                o._planning = false;
                o._planIndex = null;
            }
            _owner = null;
        }
    }

    public IRestoreBatch BeginRestoring(CancellationToken cancellation) =>
        TryBeginRestoring(cancellation) ?? throw new InvalidOperationException("A restore batch is already open on this session; finish it first.");

    public IRestoreBatch? TryBeginRestoring(CancellationToken cancellation)
    {
        lock (_session.Gate)
        {
            if (_batch is not null) return null;
            var tokenLock = TokenLock.Acquire(_session.Token, cancellation);
            try
            {
                var index = Pkcs11IdIndex.Take(S, _p11.ModulePath);
                return _batch = new Pkcs11RestoreBatch(_session, _p11, tokenLock, index, () => _batch = null);
            }
            catch (Pkcs11Exception ex)
            {
                tokenLock.Dispose();
                throw Pkcs11Errors.Translate(ex, "read the token's objects for the restore", Context.TokenLabel);
            }
            catch
            {
                tokenLock.Dispose();
                throw;
            }
        }
    }

    // ---------- restore test ----------

    public PicoBackupTestResult Test(PicoKeyBackup b, bool restoreTest) => _restoreTest.Test(b, restoreTest);

    /// <summary>
    /// Unwraps the backup into a session object (gone when the session closes, destroyed here at
    /// once), proves it is the key that was backed up, and reports what it proved.
    /// </summary>
    public (bool Restorable, string Detail) RestoreTest(WrappedKeyFile b) => _restoreTest.Run(b);

    /// <summary>Remove-PicoKey: the key, its public key and certificate; never the DKEK (see <see cref="Pkcs11KeyRemover"/>).</summary>
    public string RemoveKey(PicoKey key) => new Pkcs11KeyRemover(_session, _p11, _dkek).Remove(key);
}
