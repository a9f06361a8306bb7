using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Security;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace PicoHsm.CardSimulator;

/// <summary>Initial state of a <see cref="ScHsmSimulator"/>.</summary>
public sealed class ScHsmOptions
{
    /// <summary>true: the card starts initialised (as after sc-hsm-tool --initialize); false: a blank device.</summary>
    public bool Initialized { get; set; }
    /// <summary>User PIN (ASCII), used when <see cref="Initialized"/>.</summary>
    public string UserPin { get; set; } = "648219";
    /// <summary>SO-PIN / initialisation code, 8 bytes (sc-hsm-tool takes it as 16 hex digits).</summary>
    public byte[] SoPin { get; set; } = Hex.Parse("3537363231383830");
    /// <summary>User PIN retry counter.</summary>
    public int PinRetries { get; set; } = 3;
    /// <summary>Number of DKEK shares of key domain 0 when <see cref="Initialized"/>; null = no DKEK (tag 92 absent).</summary>
    public int? DkekShares { get; set; } = 2;
    /// <summary>Shares already imported into key domain 0 when <see cref="Initialized"/> (32 bytes each).</summary>
    public List<byte[]> ImportedShares { get; set; } = new();
    /// <summary>Source of random bytes (key blobs' 8 leading bytes, GET CHALLENGE). Default: a CSPRNG.</summary>
    public Func<int, byte[]>? RandomBytes { get; set; }
    /// <summary>Optional JSON file: loaded at start when it exists, saved after every state change.</summary>
    public string? StateFile { get; set; }
    /// <summary>Optional log sink (one line per APDU).</summary>
    public Action<string>? Log { get; set; }
    /// <summary>true (Pico HSM): UNWRAP KEY also writes a minimal PRKD and, for RSA/EC, a CV request; false: as a
    /// CardContact SmartCard-HSM, it stores the key alone.</summary>
    public bool UnwrapWritesDescription { get; set; } = true;
    /// <summary>Optional fault injected after a given command (see <see cref="SimulatedFault"/>); settable at any time.</summary>
    public SimulatedFault? Fault { get; set; }
}

/// <summary>
/// A SmartCard-HSM / Pico HSM v6.0 card simulator that answers command APDUs like the firmware does for
/// OpenSC 0.23 (sc-hsm driver, sc-hsm-tool, opensc-pkcs11). One instance is one card: state (PINs, key domains,
/// DKEK, keys, files) lives across <see cref="Reset"/>; the PIN session does not.
/// </summary>
public sealed class ScHsmSimulator
{
    public static readonly byte[] DefaultAtr = Hex.Parse("3BFE1800008131FE45803181544853 4D317380214081 07FA".Replace(" ", ""));
    public static readonly byte[] Aid = Hex.Parse("E82B0601040181C31F0201");

    public const ushort SW_OK = 0x9000;

    readonly object sync = new();
    readonly ScHsmOptions opts;
    readonly SecureRandom rnd = new();

    // ---- persistent card state ----
    bool initialized;
    ushort deviceOptions;
    byte[] userPin = Array.Empty<byte>();
    int userMax = 3, userLeft = 3;
    byte[] soPin = Array.Empty<byte>();
    int soMax = 15, soLeft = 15;
    List<KeyDomain> domains = new();
    readonly List<CardFile> files = new();
    CardKey deviceKey = null!;

    // ---- session state (lost on SELECT of the applet and on Reset) ----
    bool appletSelected;
    bool userAuthenticated;
    bool sessionPin;  // Pico's has_session_pin: user PIN known in this session (needed to see the KCV)
    bool soAuthenticated;
    CardFile? currentEf;

    public byte[] Atr => (byte[])DefaultAtr.Clone();

    public ScHsmSimulator() : this(new ScHsmOptions()) { }

    public ScHsmSimulator(ScHsmOptions options)
    {
        opts = options;
        if (opts.StateFile != null && File.Exists(opts.StateFile))
        {
            SimulatorState.Load(this, File.ReadAllText(opts.StateFile));
            return;
        }
        deviceKey = CardKey.GenerateEc("secp256k1", rnd);
        CreateDeviceFiles(withCertificate: false);
        if (opts.Initialized)
        {
            var tlv = new MemoryStream();
            tlv.Write(Tlv.Build(0x80, new byte[] { 0x00, 0x01 }));
            tlv.Write(Tlv.Build(0x81, Encoding.ASCII.GetBytes(opts.UserPin)));
            tlv.Write(Tlv.Build(0x82, opts.SoPin));
            tlv.Write(Tlv.Build(0x91, new[] { (byte)opts.PinRetries }));
            if (opts.DkekShares is int n) tlv.Write(Tlv.Build(0x92, new[] { (byte)n }));
            Initialize(tlv.ToArray());
            foreach (var s in opts.ImportedShares)
            {
                if (s.Length != 32) throw new ArgumentException("a DKEK share has 32 bytes");
                if (!domains[0].HasDkek || domains[0].Imported >= domains[0].Total)
                    throw new ArgumentException("more DKEK shares than announced (DkekShares)");
                ImportShare(0, s);
            }
        }
        ResetSession();
        if (opts.StateFile != null) Save();
        dirty = false;
    }

    // =====================================================================================
    //  Public API
    // =====================================================================================

    /// <summary>Power cycle: the PIN session is lost and the applet is deselected; stored state stays.</summary>
    public void Reset()
    {
        lock (sync) ResetSession();
    }

    /// <summary>Processes one command APDU; returns response data followed by SW1 SW2.</summary>
    public byte[] Process(byte[] commandApdu)
    {
        lock (sync)
        {
            if (removed) throw new CardRemovedException();
            if (opts.Fault is { Fired: false } fault && faultCountdown > 0 && --faultCountdown == 0)
            {
                fault.Fired = true;
                opts.Log?.Invoke("> " + Hex.Of(commandApdu, " ") + "\n< (injected fault: " + fault.Mode + ")");
                if (fault.Mode == FaultMode.Remove)
                {
                    removed = true;
                    ResetSession();
                    throw new CardRemovedException();
                }
                return Sw(fault.StatusWord);
            }
            byte[] r;
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            try { r = ProcessCore(commandApdu); }
            catch (Exception ex)
            {
                Console.Error.WriteLine("card simulator: internal error on " + Hex.Of(commandApdu, " ") + ": " + ex);
                r = Sw(0x6F00);
            }
            if (opts.Fault is { Fired: false } f && faultCountdown == 0 && commandApdu.Length >= 4 && commandApdu[1] == f.AfterIns && r[^2] == 0x90 && r[^1] == 0x00
                && ++faultTriggers >= f.AfterCount)
                faultCountdown = f.CommandNumber;
            if (dirty) { dirty = false; Save(); }
            // The card's own time for this command (its crypto and its state file), on a line of its own:
            // bench/Invoke-CardBench.ps1 adds these up to tell the card's share of a step from the host's.
            long micros = (System.Diagnostics.Stopwatch.GetTimestamp() - started) * 1_000_000 / System.Diagnostics.Stopwatch.Frequency;
            opts.Log?.Invoke("> " + Hex.Of(commandApdu, " ") + "\n< " + Hex.Of(r, " ") + "\n= " + micros + " us");
            return r;
        }
    }

    int faultCountdown, faultTriggers;
    bool removed;

    /// <summary>Whether a <see cref="FaultMode.Remove"/> fault took the card out of the reader.</summary>
    public bool IsRemoved { get { lock (sync) return removed; } }

    /// <summary>Puts a removed card back (power-on: the PIN session is gone, stored state stays).</summary>
    public void Reinsert()
    {
        lock (sync) { removed = false; ResetSession(); }
    }

    /// <summary>true once INITIALIZE DEVICE ran.</summary>
    public bool IsInitialized { get { lock (sync) return initialized; } }

    /// <summary>SO-PIN (reference 88) tries left, as VERIFY 00 20 00 88 without data reports them (for tests).</summary>
    public int SoPinTriesLeft { get { lock (sync) return soLeft; } }

    /// <summary>The complete DKEK of a key domain, or null (for tests).</summary>
    public byte[]? GetDkek(int domain = 0)
    {
        lock (sync)
        {
            if (domain >= domains.Count) return null;
            var d = domains[domain];
            return d.Complete ? (byte[])d.Accumulator.Clone() : null;
        }
    }

    /// <summary>The key at a key reference, or null (for tests).</summary>
    public CardKey? GetKey(byte keyRef) { lock (sync) return FindFile(KeyFid(keyRef))?.Key; }

    /// <summary>Key references in use (EF CCxx), in enumeration order.</summary>
    public IReadOnlyList<byte> KeyReferences { get { lock (sync) return EnumerateFids().Where(f => f >> 8 == 0xCC).Select(f => (byte)f).ToList(); } }

    /// <summary>Content of an EF, or null (for tests).</summary>
    public byte[]? ReadFile(ushort fid) { lock (sync) { var f = FindFile(fid); return f?.Key == null ? f?.Data?.ToArray() : null; } }

    /// <summary>JSON snapshot of the card (the --state file format).</summary>
    public string ExportState() { lock (sync) return SimulatorState.Save(this); }

    // =====================================================================================
    //  Internals
    // =====================================================================================

    internal sealed class KeyDomain
    {
        public byte Total = 0xFF, Imported = 0xFF;
        public byte[] Accumulator = new byte[32];
        public bool Complete => Total != 0 && Total != 0xFF && Imported == Total;
        public bool HasDkek => Total != 0 && Total != 0xFF;
    }

    internal sealed class CardFile
    {
        public ushort Fid;
        public byte[] Data = Array.Empty<byte>();
        public CardKey? Key;
        public bool Static;
        public byte Descriptor = 0x01;
    }

    bool dirty;

    void Save()
    {
        if (opts.StateFile == null) return;
        var tmp = opts.StateFile + ".tmp";
        File.WriteAllText(tmp, SimulatorState.Save(this));
        File.Move(tmp, opts.StateFile, true);
    }

    void ResetSession()
    {
        pendingResponse = null;
        chain = null;
        appletSelected = false;
        Logout();
        currentEf = null;
    }

    void Logout()
    {
        userAuthenticated = false;
        sessionPin = false;
        soAuthenticated = false;
    }

    byte[] Random(int n) => opts.RandomBytes?.Invoke(n) ?? RandomNumberGenerator.GetBytes(n);

    static ushort KeyFid(byte id) => (ushort)(0xCC00 | id);
    static ushort PrkdFid(byte id) => (ushort)(0xC400 | id);
    static ushort CertFid(byte id) => (ushort)(0xCE00 | id);

    /// <summary>
    /// The device's own files. A blank Pico HSM (empty flash) has an empty EF.C_DevAut: its firmware writes the
    /// device certificate in INITIALIZE (pico-hsm cmd_initialize), so OpenSC's PKCS#15 bind of a blank device
    /// fails and its PKCS#11 token shows no user PIN until OpenSC reads the card again.
    /// </summary>
    void CreateDeviceFiles(bool withCertificate)
    {
        files.RemoveAll(f => f.Static);
        files.InsertRange(0, new[]
        {
            new CardFile { Fid = 0x2F00, Data = EmbeddedData.EfDir, Static = true },
            new CardFile { Fid = 0x2F02, Data = withCertificate ? EmbeddedData.DeviceCertificates : Array.Empty<byte>(), Static = true },
            new CardFile { Fid = 0x2F03, Data = EmbeddedData.TokenInfo, Static = true },
            new CardFile { Fid = 0xC400, Data = EmbeddedData.DevicePrkd, Static = true, Descriptor = 0x08 },
            new CardFile { Fid = 0xCE00, Data = EmbeddedData.DeviceRequest, Static = true, Descriptor = 0x08 },
            new CardFile { Fid = 0xCC00, Key = deviceKey, Static = true, Descriptor = 0x08 },
        });
    }

    CardFile? FindFile(ushort fid) => files.FirstOrDefault(f => f.Fid == fid);

    CardFile GetOrCreate(ushort fid)
    {
        var f = FindFile(fid);
        if (f != null) return f;
        f = new CardFile { Fid = fid };
        files.Add(f);
        return f;
    }

    void DeleteFile(CardFile f)
    {
        files.Remove(f);
        if (currentEf == f) currentEf = null;
    }

    IEnumerable<ushort> EnumerateFids()
    {
        // Pico cmd_list_keys: device PRKD and key first, then CC, C4, C8, C9 entries in creation order.
        if (FindFile(0xC400) is { Static: true }) yield return 0xC400;
        if (FindFile(0xCC00) is { Static: true }) yield return 0xCC00;
        foreach (byte prefix in new byte[] { 0xCC, 0xC4, 0xC8, 0xC9 })
            foreach (var f in files)
                if (!f.Static && f.Fid >> 8 == prefix) yield return f.Fid;
    }

    static byte[] Sw(ushort sw) => new[] { (byte)(sw >> 8), (byte)sw };
    static byte[] Ok(byte[] data) => Tlv.Concat(data, Sw(SW_OK));
    static byte[] Ok() => Sw(SW_OK);

    // response bytes not yet fetched with GET RESPONSE (answers longer than a short Le)
    byte[]? pendingResponse;
    MemoryStream? chain;

    byte[] ProcessCore(byte[] raw)
    {
        var a = CommandApdu.Parse(raw);
        if (a == null) { pendingResponse = null; return Sw(0x6700); }
        if (a.Ins == 0xC0 && a.Cla == 0x00)
        {
            if (pendingResponse == null) return Sw(0x6985);
            return Chunk(pendingResponse, a.Ne == 0 ? 256 : a.Ne);
        }
        pendingResponse = null;
        // command chaining (CLA bit 0x10), as pico-keys-sdk: collect up to 4096 bytes, then run the last part
        if ((a.Cla & 0x10) != 0)
        {
            chain ??= new MemoryStream();
            if (chain.Length + a.Data.Length >= 4096) { chain = null; return Sw(0x6E00); }
            chain.Write(a.Data);
            return Ok();
        }
        if (chain != null)
        {
            a.Data = Tlv.Concat(chain.ToArray(), a.Data);
            chain = null;
        }
        if (raw.Length == 4) a.Ne = 256; // pico-keys-sdk treats a case 1 APDU as Le = 256
        var r = Dispatch(a);
        // As pico-keys-sdk: an answer longer than Ne (0 for case 3) is sent as Ne bytes + 61xx, the rest
        // by GET RESPONSE. READ BINARY cuts at Ne itself.
        if (r.Length - 2 > a.Ne && a.Ins is not (0xB0 or 0xB1) && r[^2] == 0x90 && r[^1] == 0x00)
            return Chunk(r[..^2], a.Ne);
        return r;
    }

    byte[] Chunk(byte[] data, int ne)
    {
        int n = Math.Min(ne, data.Length);
        int left = data.Length - n;
        pendingResponse = left > 0 ? data[n..] : null;
        return left > 0 ? Tlv.Concat(data[..n], new byte[] { 0x61, (byte)Math.Min(left, 256) }) : Ok(data[..n]);
    }

    byte[] Dispatch(CommandApdu a)
    {
        if ((a.Cla & 0x0C) != 0) return Sw(0x6882); // no secure messaging
        if (a.Ins == 0xA4) return Select(a);
        if (!appletSelected) return Sw(0x6A82); // pico-keys-sdk: no current application
        switch (a.Ins)
        {
            case 0xB0: case 0xB1: return ReadBinary(a);
            case 0xD6: case 0xD7: return UpdateBinary(a);
            case 0xE4: return DeleteFileCmd(a);
            case 0x20: return Verify(a);
            case 0x24: return ChangePin(a);
            case 0x2C: return ResetRetryCounter(a);
            case 0x84: return a.Ne > 0 ? Ok(Random(Math.Min(a.Ne, 256))) : Sw(0x6700);
            case 0x22: return Ok(); // MSE: accepted, nothing to do (OpenSC never sends it)
            case 0x50 when a.Cla == 0x80: return InitializeCmd(a);
            case 0x52 when a.Cla == 0x80: return KeyDomainCmd(a);
            case 0x58 when a.Cla == 0x80: return Ok(EnumerateFids().SelectMany(f => new[] { (byte)(f >> 8), (byte)f }).ToArray());
            case 0x46: return GenerateKeyPair(a);
            case 0x68 when a.Cla == 0x80: return Sign(a);
            case 0x62 when a.Cla == 0x80: return Decipher(a);
            case 0x72 when a.Cla == 0x80: return WrapKey(a);
            case 0x74 when a.Cla == 0x80: return UnwrapKey(a);
            default: return Sw(0x6D00);
        }
    }

    // ---------------------------------------------------------------- SELECT
    static readonly byte[] AppletFcpHead = Hex.Parse("6222810200008201018302000084 0B2B0601040181C31F02013 08A0105".Replace(" ", ""));

    byte[] AppletFcp()
    {
        var fcp = Tlv.Concat(AppletFcpHead, new byte[] { 0x85, 0x05, (byte)(deviceOptions >> 8), (byte)deviceOptions, 0xFF, 0x06, 0x00 });
        fcp[1] = (byte)(fcp.Length - 2);
        return fcp;
    }

    static byte[] Fcp(CardFile f)
    {
        int size = f.Key != null ? 0 : f.Data.Length;
        return Hex.Parse($"620E8102{size:X4}8201{f.Descriptor:X2}8302{f.Fid:X4}8A0105");
    }

    byte[] Select(CommandApdu a)
    {
        if (a.P1 == 0x04)
        {
            if (a.Data.Length == 0 || a.Data.Length > Aid.Length || !Aid.AsSpan(0, a.Data.Length).SequenceEqual(a.Data))
                return Sw(0x6A82);
            // P2 other than 00/04 is not an application selection for pico-keys-sdk: the applet's own
            // SELECT answers 6A86 (no logout), and without a selected applet there is nobody to ask
            if (a.P2 != 0x00 && a.P2 != 0x04) return Sw(appletSelected ? (ushort)0x6A86 : (ushort)0x6A82);
            // selecting the applet logs out (OpenSC's sc_hsm_logout relies on it)
            appletSelected = true;
            Logout();
            currentEf = null;
            return Ok(AppletFcp());
        }
        if (!appletSelected) return Sw(0x6A82);
        if ((a.P2 & 0xFC) != 0x00 && (a.P2 & 0xFC) != 0x04) return Sw(0x6A86);
        ushort fid;
        switch (a.P1)
        {
            case 0x00:
            case 0x02:
                if (a.Data.Length == 0) { currentEf = null; return Ok(Hex.Parse("620A82013883023F008A0105")); }
                if (a.Data.Length != 2) return Sw(0x6A87);
                fid = (ushort)((a.Data[0] << 8) | a.Data[1]);
                break;
            case 0x08:
            case 0x09:
            {
                if (a.Data.Length == 0 || a.Data.Length % 2 != 0) return Sw(0x6A87);
                var path = Enumerable.Range(0, a.Data.Length / 2).Select(i => (ushort)((a.Data[2 * i] << 8) | a.Data[2 * i + 1])).ToList();
                if (path[0] == 0x3F00) path.RemoveAt(0);
                if (path.Count != 1) return Sw(0x6A82); // only EFs directly under the MF/applet exist
                fid = path[0];
                break;
            }
            default: return Sw(0x6A86);
        }
        if (fid == 0x3F00) { currentEf = null; return Ok(Hex.Parse("620A82013883023F008A0105")); }
        var f = FindFile(fid);
        if (f == null) return Sw(0x6A82);
        currentEf = f;
        return Ok(Fcp(f));
    }

    // ---------------------------------------------------------------- READ / UPDATE / DELETE
    static int OffsetFrom(byte[] data)
    {
        var t = Tlv.Parse(data).FirstOrDefault(x => x.Tag == 0x54) ?? throw new FormatException("no offset");
        int o = 0;
        foreach (var b in t.Value) o = (o << 8) | b;
        return o;
    }

    byte[] ReadBinary(CommandApdu a)
    {
        CardFile? f;
        int offset;
        if (a.Ins == 0xB0)
        {
            if ((a.P1 & 0x80) != 0) return Sw(0x6A82); // no short EF identifiers here
            f = currentEf;
            offset = ((a.P1 << 8) | a.P2) & 0x7FFF;
        }
        else
        {
            ushort fid = (ushort)((a.P1 << 8) | a.P2);
            f = fid == 0 ? currentEf : FindFile(fid);
            if (f == null) return Sw(fid == 0 ? (ushort)0x6986 : (ushort)0x6A82);
            try { offset = OffsetFrom(a.Data); } catch (FormatException) { return Sw(0x6A80); }
        }
        if (f == null) return Sw(0x6986);
        if (f.Key != null) return Sw(0x6982);
        if (offset > f.Data.Length) return Sw(0x6B00);
        // Pico: the rest of the file is the answer, cut at Le with SW 61xx (xx = bytes left, 00 for 256 or
        // more; GET RESPONSE would deliver them); 9000 with no data at EOF
        return Chunk(f.Data[offset..], a.Ne == 0 ? 256 : a.Ne);
    }

    byte[] UpdateBinary(CommandApdu a)
    {
        if (!userAuthenticated) return Sw(0x6982);
        CardFile? f;
        int offset;
        byte[] data;
        if (a.Ins == 0xD6)
        {
            f = currentEf;
            if (f == null) return Sw(0x6986);
            offset = ((a.P1 << 8) | a.P2) & 0x7FFF;
            data = a.Data;
        }
        else
        {
            ushort fid = (ushort)((a.P1 << 8) | a.P2);
            if (fid >> 8 == 0xCC) return Sw(0x6982);
            List<Tlv> tlvs;
            try { tlvs = Tlv.Parse(a.Data); } catch (FormatException) { return Sw(0x6A80); }
            var t53 = tlvs.FirstOrDefault(t => t.Tag == 0x53);
            var t54 = tlvs.FirstOrDefault(t => t.Tag == 0x54);
            if (t53 == null) return Sw(0x6A80);
            offset = 0;
            if (t54 != null) foreach (var b in t54.Value) offset = (offset << 8) | b;
            data = t53.Value;
            if (fid == 0) f = currentEf;
            else { f = GetOrCreate(fid); currentEf = f; dirty = true; }
            if (f == null) return Sw(0x6986);
        }
        if (f.Key != null) return Sw(0x6982);
        if (offset == 0) f.Data = data;
        else
        {
            var nd = new byte[Math.Max(f.Data.Length, offset + data.Length)];
            Buffer.BlockCopy(f.Data, 0, nd, 0, f.Data.Length);
            Buffer.BlockCopy(data, 0, nd, offset, data.Length);
            f.Data = nd;
        }
        dirty = true;
        return Ok();
    }

    byte[] DeleteFileCmd(CommandApdu a)
    {
        if (!userAuthenticated) return Sw(0x6982);
        ushort fid = a.Data.Length == 2 ? (ushort)((a.Data[0] << 8) | a.Data[1]) : (ushort)((a.P1 << 8) | a.P2);
        var f = FindFile(fid);
        if (f == null || f.Static) return Sw(0x6A82);
        DeleteFile(f);
        dirty = true;
        return Ok();
    }

    // ---------------------------------------------------------------- PINs
    byte[] Verify(CommandApdu a)
    {
        if (a.P1 != 0x00) return Sw(0x6B00);
        if (a.P2 == 0x85 || a.P2 == 0x86) return Sw(0x6A88);
        if (a.P2 != 0x81 && a.P2 != 0x88) return Sw(0x6A88);
        // never initialised: no PIN object (sc-hsm-tool then says "has never been initialized")
        if (!initialized) return Sw(0x6A88);
        bool so = a.P2 == 0x88;
        int left = so ? soLeft : userLeft;
        if (a.Data.Length == 0)
        {
            if (left == 0) return Sw(0x6983);
            bool auth = so ? soAuthenticated : userAuthenticated;
            return auth ? Ok() : Sw((ushort)(0x63C0 | Math.Min(left, 15)));
        }
        if (left == 0) return Sw(0x6983);
        var expected = so ? soPin : userPin;
        if (!CryptographicOperations.FixedTimeEquals(expected, a.Data))
        {
            left--;
            if (so) { soLeft = left; soAuthenticated = false; }
            else { userLeft = left; userAuthenticated = false; sessionPin = false; }
            dirty = true;
            return left == 0 ? Sw(0x6983) : Sw((ushort)(0x63C0 | Math.Min(left, 15)));
        }
        if (so) { soLeft = soMax; soAuthenticated = true; }
        else
        {
            userLeft = userMax;
            userAuthenticated = true;
            // Pico: the MKEK (and with it a DKEK completed without PIN) becomes usable with the session PIN
            sessionPin = true;
        }
        dirty = true;
        return Ok();
    }

    byte[] ChangePin(CommandApdu a)
    {
        if (!initialized) return Sw(0x6984);
        if (a.P1 != 0x00 || (a.P2 != 0x81 && a.P2 != 0x88)) return Sw(0x6A86);
        bool so = a.P2 == 0x88;
        var current = so ? soPin : userPin;
        int left = so ? soLeft : userLeft;
        if (left == 0) return Sw(0x6983);
        if (a.Data.Length <= current.Length) return Sw(0x6700);
        if (!CryptographicOperations.FixedTimeEquals(current, a.Data.AsSpan(0, current.Length)))
        {
            left--;
            if (so) soLeft = left; else { userLeft = left; userAuthenticated = false; }
            dirty = true;
            return left == 0 ? Sw(0x6983) : Sw((ushort)(0x63C0 | Math.Min(left, 15)));
        }
        var nw = a.Data[current.Length..];
        if (so) { soPin = nw; soLeft = soMax; }
        else { userPin = nw; userLeft = userMax; userAuthenticated = true; sessionPin = true; }
        dirty = true;
        return Ok();
    }

    byte[] ResetRetryCounter(CommandApdu a)
    {
        if (!initialized) return Sw(0x6984);
        if (a.P2 != 0x81 || (a.P1 != 0x00 && a.P1 != 0x01)) return Sw(0x6A86);
        if (soLeft == 0) return Sw(0x6983);
        if (a.Data.Length < 8 || (a.P1 == 0x01 && a.Data.Length != 8)) return Sw(0x6700);
        if (!CryptographicOperations.FixedTimeEquals(soPin, a.Data.AsSpan(0, 8)))
        {
            soLeft--;
            dirty = true;
            return soLeft == 0 ? Sw(0x6983) : Sw((ushort)(0x63C0 | Math.Min(soLeft, 15)));
        }
        soLeft = soMax;
        if (a.P1 == 0x00) userPin = a.Data[8..];
        userLeft = userMax;
        dirty = true;
        return Ok();
    }

    // ---------------------------------------------------------------- INITIALIZE / key domains
    byte[] InitializeCmd(CommandApdu a)
    {
        if (a.Data.Length == 0)
            return Ok(Hex.Parse("00100000000600")); // free memory + version, as the Pico answers
        try { Initialize(a.Data); }
        catch (FormatException) { return Sw(0x6A80); }
        return Ok();
    }

    void Initialize(byte[] data)
    {
        var tlvs = Tlv.Parse(data);
        // wipe everything but the device identity
        files.RemoveAll(f => !f.Static);
        CreateDeviceFiles(withCertificate: true);
        currentEf = null;
        deviceOptions = 0;
        userPin = Array.Empty<byte>();
        soPin = Array.Empty<byte>();
        userMax = userLeft = 3;
        soMax = soLeft = 15;
        domains = new List<KeyDomain> { new KeyDomain { Total = 0, Imported = 0 } };
        bool gotPin = false;
        foreach (var t in tlvs)
        {
            switch (t.Tag)
            {
                case 0x80: if (t.Value.Length >= 2) deviceOptions = (ushort)((t.Value[0] << 8) | t.Value[1]); break;
                case 0x81: userPin = t.Value; gotPin = true; break;
                case 0x82: soPin = t.Value; break;
                case 0x91: if (t.Value.Length > 0) userMax = userLeft = t.Value[0]; break;
                case 0x92:
                    if (t.Value.Length > 0 && t.Value[0] > 0) domains[0] = new KeyDomain { Total = t.Value[0], Imported = 0 };
                    else domains[0] = new KeyDomain { Total = 1, Imported = 1, Accumulator = Random(32) };
                    break;
                case 0x97:
                {
                    int k = Math.Min(t.Value.Length > 0 ? t.Value[0] : 0, 16);
                    domains = Enumerable.Range(0, k).Select(_ => new KeyDomain()).ToList();
                    break;
                }
            }
        }
        initialized = true;
        // Pico: "When initialized, it has all credentials"
        userAuthenticated = gotPin;
        sessionPin = gotPin;
        dirty = true;
    }

    internal void ImportShare(int kd, byte[] share)
    {
        var d = domains[kd];
        for (int i = 0; i < 32; i++) d.Accumulator[i] ^= share[i];
        d.Imported++;
        dirty = true;
    }

    byte[] KeyDomainStatus(int kd)
    {
        var d = domains[kd];
        var r = new byte[10];
        r[0] = d.Total;
        r[1] = (byte)(d.Total > d.Imported && d.Total != 0xFF ? d.Total - d.Imported : 0);
        // Pico quirk: the DKEK is kept under a PIN-derived key; without the session PIN the KCV reads as zeros
        if (d.HasDkek && sessionPin) Buffer.BlockCopy(DkekBlob.Kcv(d.Accumulator), 0, r, 2, 8);
        return Ok(r);
    }

    byte[] KeyDomainCmd(CommandApdu a)
    {
        int kd = a.P2;
        if (a.Data.Length > 0 && !(a.P1 == 0 && kd == 0) && !(userAuthenticated && sessionPin)) return Sw(0x6985);
        if (kd >= 16 || domains.Count == 0) return Sw(0x6B00);
        if (kd >= domains.Count) return Sw(0x6A86);
        var d = domains[kd];
        switch (a.P1)
        {
            case 0x00:
                if (a.Data.Length > 0)
                {
                    if (a.Data.Length < 32) return Sw(0x6700);
                    if (d.Imported == d.Total) return Sw(0x6986);
                    ImportShare(kd, a.Data.AsSpan(0, 32).ToArray());
                }
                else if (d.Total == 0xFF && d.Imported == 0xFF) return Sw(0x6A88);
                return KeyDomainStatus(kd);
            case 0x01:
                if (a.Data.Length != 1) return Sw(0x6700);
                if (d.Total != 0xFF || d.Imported != 0xFF) return Sw(0x6A86);
                domains[kd] = new KeyDomain { Total = a.Data[0], Imported = 0 };
                dirty = true;
                return KeyDomainStatus(kd);
            case 0x03:
                if (files.Any(f => f.Key != null && !f.Static && f.Key.KeyDomain == kd)) return Sw(0x6A89);
                if (d.Total == 0xFF && d.Imported == 0xFF) return Sw(0x6A86);
                domains[kd] = new KeyDomain();
                dirty = true;
                return Sw(0x6A88);
            case 0x04:
                d.Imported = 0;
                d.Accumulator = new byte[32];
                dirty = true;
                return KeyDomainStatus(kd);
            default:
                return Sw(0x6A86);
        }
    }

    // ---------------------------------------------------------------- keys
    static readonly byte[] OidRsaPrefix = Hex.Parse("04007F000702020201");
    static readonly byte[] OidEcPrefix = Hex.Parse("04007F000702020202");

    void StoreKey(byte id, CardKey key)
    {
        var f = FindFile(KeyFid(id));
        if (f == null || f.Static)
        {
            if (f != null) files.Remove(f);
            f = new CardFile { Fid = KeyFid(id) };
            files.Add(f);
        }
        f.Key = key;
        f.Data = Array.Empty<byte>();
        dirty = true;
    }

    void WriteFile(ushort fid, byte[] data)
    {
        var f = FindFile(fid);
        if (f != null && f.Static) files.Remove(f);
        if (f == null || f.Static) { f = new CardFile { Fid = fid }; files.Add(f); }
        f.Data = data;
        dirty = true;
    }

    byte[] GenerateKeyPair(CommandApdu a)
    {
        if (!userAuthenticated) return Sw(0x6982);
        byte id = a.P1;
        List<Tlv> tlvs;
        try { tlvs = Tlv.Parse(a.Data); } catch (FormatException) { return Sw(0x6A80); }
        var pk = tlvs.FirstOrDefault(t => t.Tag == 0x7F49);
        if (pk == null) return Sw(0x6A80);
        var pkc = pk.Children();
        var oid = pkc.FirstOrDefault(t => t.Tag == 0x06)?.Value;
        if (oid == null || oid.Length < 10) return Sw(0x6A80);
        CardKey key;
        if (oid.AsSpan(0, 9).SequenceEqual(OidRsaPrefix))
        {
            var e = pkc.FirstOrDefault(t => t.Tag == 0x82)?.Value;
            var bits = pkc.FirstOrDefault(t => t.Tag == 0x02)?.Value;
            int nbits = bits == null ? 2048 : bits.Aggregate(0, (x, b) => (x << 8) | b);
            if (nbits < 1024 || nbits > 4096 || nbits % 8 != 0) return Sw(0x6A80);
            key = CardKey.GenerateRsa(nbits, e == null || e.Length == 0 ? BigInteger.ValueOf(65537) : new BigInteger(1, e), rnd);
        }
        else if (oid.AsSpan(0, 9).SequenceEqual(OidEcPrefix))
        {
            var prime = pkc.FirstOrDefault(t => t.Tag == 0x81)?.Value;
            if (prime == null) return Sw(0x6A80);
            var curve = CardKey.CurveFromPrime(prime);
            if (curve == null) return Sw(0x6A81);
            key = CardKey.GenerateEc(curve, rnd);
        }
        else return Sw(0x6A80);

        var allowed = tlvs.FirstOrDefault(t => t.Tag == 0x91)?.Value;
        if (allowed is { Length: > 0 }) key.AllowedAlgorithms = allowed;
        var kdTlv = tlvs.FirstOrDefault(t => t.Tag == 0x92)?.Value;
        if (kdTlv is { Length: > 0 }) key.KeyDomain = kdTlv[0];

        var cpi = tlvs.FirstOrDefault(t => t.Tag == 0x5F29)?.Value ?? new byte[] { 0 };
        var car = tlvs.FirstOrDefault(t => t.Tag == 0x42)?.Value ?? Encoding.ASCII.GetBytes("UTCA00001");
        var chr = tlvs.FirstOrDefault(t => t.Tag == 0x5F20)?.Value ?? Encoding.ASCII.GetBytes(EmbeddedData.DeviceChr);
        var req = CardCrypto.BuildRequest(key, oid, cpi, car, chr, deviceKey, Encoding.ASCII.GetBytes(EmbeddedData.DeviceChr), rnd);

        StoreKey(id, key);
        // Pico v6.0 pre-creates a minimal PRKD (28 bytes EC / 27 bytes RSA observed) and stores the request as CExx
        WriteFile(PrkdFid(id), CardCrypto.BuildPrkd(key.Kind, Array.Empty<byte>(), new[] { id }, key.SizeBits));
        WriteFile(CertFid(id), req);
        return Ok(req);
    }

    CardKey? UsableKey(byte id) => FindFile(KeyFid(id))?.Key;

    static bool Allows(CardKey k, byte alg) => k.AllowedAlgorithms == null || k.AllowedAlgorithms.Contains(alg);

    byte[] Sign(CommandApdu a)
    {
        if (!userAuthenticated) return Sw(0x6982);
        var key = UsableKey(a.P1);
        if (key == null) return Sw(0x6A88);
        byte alg = a.P2;
        if (!Allows(key, alg)) return Sw(0x6985);
        try
        {
            if (key.Kind == CardKeyKind.Ec && alg >= 0x70 && alg <= 0x75)
            {
                var d = CardCrypto.DigestFor(alg & 0x0F);
                var hash = d == null ? a.Data : CardCrypto.Hash(d, a.Data);
                return Ok(CardCrypto.EcdsaDer(CardCrypto.EcdsaSign(key, hash, rnd)));
            }
            if (key.Kind == CardKeyKind.Rsa)
            {
                switch (alg)
                {
                    case 0x20:
                        if (a.Data.Length != (key.N!.BitLength + 7) / 8) return Sw(0x6A80);
                        return Ok(CardCrypto.RsaRaw(key, a.Data));
                    case 0x30: return Ok(CardCrypto.RsaPkcs1(key, a.Data));
                    case >= 0x31 and <= 0x35: return Ok(CardCrypto.RsaPkcs1WithHash(key, CardCrypto.DigestFor(alg & 0x0F)!, a.Data));
                    case 0x40:
                    {
                        // OpenSC sends a DigestInfo for PSS; a bare hash is taken by its length
                        var (digest, hash) = CardCrypto.SplitDigestInfo(a.Data);
                        return Ok(CardCrypto.RsaPss(key, digest, hash, true, rnd));
                    }
                    case >= 0x41 and <= 0x45: return Ok(CardCrypto.RsaPss(key, CardCrypto.DigestFor(alg & 0x0F)!, a.Data, false, rnd));
                }
            }
            return Sw(0x6A80);
        }
        catch (Exception ex) when (ex is ArgumentException or Org.BouncyCastle.Crypto.CryptoException or InvalidOperationException)
        {
            return Sw(0x6A80);
        }
    }

    byte[] Decipher(CommandApdu a)
    {
        if (!userAuthenticated) return Sw(0x6982);
        var key = UsableKey(a.P1);
        if (key == null) return Sw(0x6A88);
        if (!Allows(key, a.P2)) return Sw(0x6985);
        try
        {
            if (key.Kind == CardKeyKind.Rsa && a.P2 is 0x21 or 0x22 or 0x23)
                return Ok(CardCrypto.RsaDecrypt(key, a.P2, a.Data));
            if (key.Kind == CardKeyKind.Ec && a.P2 == 0x80)
            {
                var c = key.Curve();
                var pt = c.Curve.DecodePoint(a.Data).Multiply(key.EcD).Normalize();
                return Ok(pt.GetEncoded(false));
            }
            return Sw(0x6A80);
        }
        catch (Exception ex) when (ex is ArgumentException or Org.BouncyCastle.Crypto.CryptoException or InvalidOperationException)
        {
            return Sw(0x6A80);
        }
    }

    // ---------------------------------------------------------------- WRAP / UNWRAP
    byte[] WrapKey(CommandApdu a)
    {
        if (a.P2 != 0x92) return Sw(0x6B00);
        if (!userAuthenticated) return Sw(0x6982);
        var key = UsableKey(a.P1);
        if (key == null) return Sw(0x6A88);
        int kd = key.KeyDomain;
        if (kd >= domains.Count || !domains[kd].Complete) return Sw(0x6A88);
        if (!Allows(key, 0x92)) return Sw(0x6985);
        return Ok(DkekBlob.Encode(domains[kd].Accumulator, key, Random(8)));
    }

    byte[] UnwrapKey(CommandApdu a)
    {
        if (a.P2 != 0x93) return Sw(0x6B00);
        if (!userAuthenticated) return Sw(0x6982);
        var blob = a.Data;
        CardFile? staged = null;
        if (blob.Length == 0)
        {
            staged = FindFile(0x2F10);
            if (staged == null || staged.Data.Length == 0) return Sw(0x6A80);
            blob = staged.Data;
        }
        byte type = DkekBlob.KeyTypeOf(blob);
        if (type is not (DkekBlob.TypeRsa or DkekBlob.TypeRsaCrt or DkekBlob.TypeEc or DkekBlob.TypeAes)) return Sw(0x6984);
        DkekBlob.Decoded? dec = null;
        int kd = -1;
        bool anyDomain = false;
        for (int i = 0; i < domains.Count && dec == null; i++)
        {
            if (!domains[i].Complete) continue;
            anyDomain = true;
            try { dec = DkekBlob.Decode(domains[i].Accumulator, blob); kd = i; }
            catch (BlobException ex) when (ex.Error == BlobError.WrongKcv) { }
            catch (BlobException) { return Sw(0x6400); }
        }
        if (!anyDomain) return Sw(0x6A88);
        if (dec == null) return Sw(0x6400); // no domain's KCV matches: Pico answers 6400 (CardContact 6A80)
        var key = dec.Key;
        key.KeyDomain = (byte)kd;
        byte id = a.P1;
        StoreKey(id, key);
        // Pico writes a minimal PRKD (29 bytes for EC observed) and, for RSA/EC, a CV request as CExx
        if (!opts.UnwrapWritesDescription) { if (staged != null) DeleteFile(staged); return Ok(); }
        WriteFile(PrkdFid(id), CardCrypto.BuildPrkd(key.Kind, Array.Empty<byte>(), new byte[] { 0x00, id }, key.SizeBits));
        if (key.Kind != CardKeyKind.Aes)
        {
            var chr = Encoding.ASCII.GetBytes(EmbeddedData.DeviceChr);
            var oid = key.Kind == CardKeyKind.Rsa ? DkekBlob.OidRsa : DkekBlob.OidEc;
            WriteFile(CertFid(id), CardCrypto.BuildRequest(key, oid, new byte[] { 0 }, chr, chr, deviceKey, chr, rnd));
        }
        if (staged != null) DeleteFile(staged);
        return Ok();
    }

    // ---------------------------------------------------------------- state (de)serialisation access
    internal sealed class Snapshot
    {
        public bool Initialized;
        public ushort Options;
        public byte[] UserPin = Array.Empty<byte>(), SoPin = Array.Empty<byte>();
        public int UserMax, UserLeft, SoMax, SoLeft;
        public List<KeyDomain> Domains = new();
        public List<CardFile> Files = new();
        public CardKey DeviceKey = null!;
    }

    internal Snapshot TakeSnapshot() => new()
    {
        Initialized = initialized, Options = deviceOptions, UserPin = userPin, SoPin = soPin,
        UserMax = userMax, UserLeft = userLeft, SoMax = soMax, SoLeft = soLeft,
        Domains = domains, Files = files, DeviceKey = deviceKey,
    };

    internal void Restore(Snapshot s)
    {
        initialized = s.Initialized; deviceOptions = s.Options; userPin = s.UserPin; soPin = s.SoPin;
        userMax = s.UserMax; userLeft = s.UserLeft; soMax = s.SoMax; soLeft = s.SoLeft;
        domains = s.Domains; deviceKey = s.DeviceKey;
        files.Clear();
        files.AddRange(s.Files);
        var dev = files.FirstOrDefault(f => f.Fid == 0xCC00 && f.Static);
        if (dev != null) dev.Key = deviceKey;
        ResetSession();
    }
}
