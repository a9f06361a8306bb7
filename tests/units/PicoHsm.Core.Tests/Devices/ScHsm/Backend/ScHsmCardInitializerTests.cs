using System.Text;
using Sim = PicoHsm.CardSimulator;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Backend;
using PicoHsm.PcSc;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

public sealed class ScHsmCardInitializerTests
{
    private static SecretBytes Secret(byte[] b) => SecretBytes.CopyOf(b);

    [Fact]
    public void Initialize_ThenImportDkek_Works_AndPinCopyIsTheNewPin()
    {
        using var h = new CardHarness(new Sim.ScHsmOptions { Initialized = false }, withPin: false);
        h.Backend.Initialize(Convert.FromHexString("3537363231383830"), Encoding.ASCII.GetBytes("123456"), dkekShares: 1, keyDomains: null);
        Assert.True(h.Simulator.IsInitialized);
        h.Simulator.Reset(); // a reboot: applet deselected, PIN session gone
        using var dkek = Secret(VectorFiles.Dkek);
        Assert.True(h.Backend.ImportDkek(dkek, "dkek", [1]));
        Assert.Equal(VectorFiles.KcvHex, Assert.Single(h.Backend.GetDkek()).KeyCheckValue);
    }

    /// <summary>A channel that loses the card once after INITIALIZE (the Pico reboots) until reconnected.</summary>
    private sealed class RebootingChannel(Sim.ScHsmSimulator sim) : ICardChannel
    {
        private bool _gone;
        public int Reconnects { get; private set; }
        public string ReaderName => "Rebooting";
        public byte[] Atr => sim.Atr;
        public byte[] Transmit(ReadOnlySpan<byte> apdu)
        {
            if (_gone) throw new PcscException(PcscError.SCARD_W_REMOVED_CARD, "SCardTransmit", ReaderName);
            byte[] r = sim.Process(apdu.ToArray());
            if (apdu.Length > 5 && apdu[0] == 0x80 && apdu[1] == 0x50) { _gone = true; sim.Reset(); }
            return r;
        }
        public IDisposable BeginTransaction() => new Nothing();
        public void Reconnect(bool reset) { _gone = false; Reconnects++; }
        public void Dispose() { }
        private sealed class Nothing : IDisposable { public void Dispose() { } }
    }

    [Fact]
    public void Initialize_DeviceReboots_BackendReconnects()
    {
        var sim = new Sim.ScHsmSimulator(new Sim.ScHsmOptions { Initialized = true, DkekShares = 2 });
        var ch = new RebootingChannel(sim);
        using var b = new ScHsmCardBackend(new DeviceContext(ScHsmCardBackend.ReadToken(ch)), ch, null);
        b.Initialize(Convert.FromHexString("3537363231383830"), Encoding.ASCII.GetBytes("654321"), dkekShares: 1, keyDomains: null);
        Assert.Equal(1, ch.Reconnects);
        Assert.True(b.HasPin);
        using var dkek = SecretBytes.CopyOf(VectorFiles.Dkek);
        Assert.True(b.ImportDkek(dkek, "d", [1]));
        Assert.Equal(VectorFiles.KcvHex, Assert.Single(b.GetDkek()).KeyCheckValue);
    }
}
