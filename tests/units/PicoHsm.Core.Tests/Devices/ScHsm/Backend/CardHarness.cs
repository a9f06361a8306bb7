using System.Text;
using Sim = PicoHsm.CardSimulator;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Backend;
using PicoHsm.PcSc;
using PicoHsm.Session;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

/// <summary>An ICardChannel onto the in-process card simulator, logging every command.</summary>
public sealed class SimulatorChannel : ICardChannel
{
    public SimulatorChannel(Sim.ScHsmSimulator card) => Card = card;

    public Sim.ScHsmSimulator Card { get; }

    public List<byte[]> Sent { get; } = new();

    public int Transactions { get; private set; }

    public int OpenTransactions { get; private set; }

    /// <summary>Commands sent while no transaction was open.</summary>
    public int OutsideTransaction { get; private set; }

    public bool Disposed { get; private set; }

    public string ReaderName => "Simulator 00 00";

    public byte[] Atr => Card.Atr;

    public byte[] Transmit(ReadOnlySpan<byte> apdu)
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        byte[] cmd = apdu.ToArray();
        Sent.Add(cmd);
        if (OpenTransactions == 0) OutsideTransaction++;
        try { return Card.Process(cmd); }
        catch (Sim.CardRemovedException ex) { throw new PcscException(ex.Message); } // as SCardTransmit reports a removed card

    }

    /// <summary>Transactions begun while another was open (the card client nests them).</summary>
    public int NestedTransactions { get; private set; }

    public IDisposable BeginTransaction()
    {
        if (OpenTransactions > 0) NestedTransactions++;
        Transactions++;
        OpenTransactions++;
        return new End(this);
    }

    public void Reconnect(bool reset)
    {
        if (reset) Card.Reset();
    }

    public void Dispose() => Disposed = true;

    /// <summary>Commands sent since <paramref name="from"/> with this INS (CLA ignored).</summary>
    public IEnumerable<byte[]> SentWithIns(byte ins, int from = 0) => Sent.Skip(from).Where(c => c.Length >= 4 && c[1] == ins);

    /// <summary>SELECT of the SmartCard-HSM applet (00 A4 04 ..).</summary>
    public int AppletSelects(int from = 0) => Sent.Skip(from).Count(c => c.Length >= 4 && c[1] == 0xA4 && c[2] == 0x04);

    /// <summary>Commands that change the card: UNWRAP, UPDATE BINARY, DELETE, IMPORT share (with data), GENERATE, INITIALIZE.</summary>
    public int Changes(int from = 0) => Sent.Skip(from).Count(c => c.Length >= 4 &&
        (c[1] is 0x74 or 0xD7 or 0xD6 or 0xE4 or 0x46 || (c[1] is 0x50 or 0x52 && c.Length > 5 && c[0] == 0x80 && c[4] != 0x00)));

    private sealed class End(SimulatorChannel owner) : IDisposable
    {
        private bool _done;
        public void Dispose()
        {
            if (_done) return;
            _done = true;
            owner.OpenTransactions--;
        }
    }
}

/// <summary>A simulated card with a backend on a card-only session.</summary>
public sealed class CardHarness : IDisposable
{
    public const string Pin = "648219";

    public CardHarness(Sim.ScHsmOptions options, bool withPin = true)
    {
        Simulator = new Sim.ScHsmSimulator(options);
        Channel = new SimulatorChannel(Simulator);
        var token = ScHsmCardBackend.ReadToken(Channel);
        using var pin = withPin ? SecretBytes.CopyOf(Encoding.ASCII.GetBytes(Pin)) : null;
        Backend = new ScHsmCardBackend(new DeviceContext(token), Channel, pin);
        Session = new PicoHsmSession(Backend);
    }

    /// <summary>Initialised, one key domain with <paramref name="shares"/> shares announced, <paramref name="imported"/> imported.</summary>
    public static CardHarness Create(int? shares = 1, IEnumerable<byte[]>? imported = null, bool withPin = true)
    {
        var o = new Sim.ScHsmOptions { Initialized = true, DkekShares = shares };
        if (imported is not null) o.ImportedShares.AddRange(imported);
        return new CardHarness(o, withPin);
    }

    /// <summary>A card whose key domain 0 holds the vectors' DKEK (as one share).</summary>
    public static CardHarness WithVectorDkek(bool withPin = true) => Create(1, new[] { VectorFiles.Dkek }, withPin);

    public Sim.ScHsmSimulator Simulator { get; }
    public SimulatorChannel Channel { get; }
    public PicoHsmSession Session { get; }
    public ScHsmCardBackend Backend { get; }

    public void Dispose() => Session.Dispose();
}

/// <summary>The interoperability vectors (real firmware, tests/vectors) and their MANIFEST.md values.</summary>
public static class VectorFiles
{
    public const string KcvHex = "d5c1a339cd295797";
    public static readonly byte[] Share1 = Convert.FromHexString("50996a884581fd3cb5d836f12f071a192ad4a18ccc42518f2da80ebafd3375e6");
    public static readonly byte[] Share2 = Convert.FromHexString("3ab0ffc72d26db6ea3cdab7dd3df3ae3f03c9ac65cef2d7ad33e4fbcbb61fa32");
    public static readonly byte[] Dkek = Convert.FromHexString("6a29954f68a7265216159d8cfcd820fadae83b4a90ad7cf5fe96410646528fd4");

    /// <summary>tests/vectors, located by <see cref="TestData"/>.</summary>
    public static string VectorsDir => TestData.VectorsDir;

    public static string PathOf(string name) => TestData.Vector(name);

    public static byte[] Read(string name) => File.ReadAllBytes(PathOf(name));

    public static PicoKeyBackup Backup(string name) => BackupFiles.Read(PathOf(name));

    public static readonly string[] Wrapped = { "rsa2048.wky", "ec256.wky", "aes256.wky", "offline-rsa2048-crt.wky" };
}
