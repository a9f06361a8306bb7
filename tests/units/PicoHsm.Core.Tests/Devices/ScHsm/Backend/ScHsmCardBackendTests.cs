using System.Text;
using Sim = PicoHsm.CardSimulator;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Backend;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

public sealed class ScHsmCardBackendTests
{
    private static SecretBytes Secret(byte[] b) => SecretBytes.CopyOf(b);

    private static int CountNested(CardHarness h) => h.Channel.NestedTransactions;

    [Fact]
    public void WrongPin_IsReported_AndTheCopyIsDroppedSoNoSecondTryIsSpent()
    {
        var o = new Sim.ScHsmOptions { Initialized = true, DkekShares = 1, ImportedShares = { VectorFiles.Dkek } };
        var sim = new Sim.ScHsmSimulator(o);
        var ch = new SimulatorChannel(sim);
        using var wrong = Secret(Encoding.ASCII.GetBytes("000000"));
        using var b = new ScHsmCardBackend(new DeviceContext(ScHsmCardBackend.ReadToken(ch)), ch, wrong);
        var d = Assert.Throws<PicoHsmException>(() => b.GetDkek());
        Assert.Equal("WrongPin", d.Reason);
        Assert.DoesNotContain("000000", d.Message);
        Assert.False(b.HasPin);
        int verifies = ch.Sent.Count(c => c[1] == 0x20 && c.Length > 5);
        // now it reports "unknown" instead of spending another try
        Assert.Null(Assert.Single(b.GetDkek()).KeyCheckValue);
        Assert.Equal(verifies, ch.Sent.Count(c => c[1] == 0x20 && c.Length > 5));
        // 2 tries left on the card
        Assert.Equal(new byte[] { 0x63, 0xC2 }, sim.Process(Convert.FromHexString("0020008100"))[^2..]);
    }

    [Fact]
    public void Dispose_DisposesTheChannel_AndClosesTheSession()
    {
        var h = CardHarness.Create();
        h.Session.Dispose();
        Assert.True(h.Channel.Disposed);
        Assert.False(h.Session.IsOpen);
        Assert.False(h.Session.IsLoggedIn);
        Assert.False(h.Backend.HasPin);
    }

    [Fact]
    public void EveryOperationRunsInsideOneTransaction()
    {
        using var h = CardHarness.WithVectorDkek();
        int before = h.Channel.Transactions - CountNested(h);
        h.Backend.GetDkek();
        h.Backend.ListKeys();
        h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest());
        h.Backend.Test(VectorFiles.Backup("rsa2048.wky"), restoreTest: true);
        Assert.Equal(before + 4, h.Channel.Transactions - CountNested(h));
        Assert.Equal(0, h.Channel.OpenTransactions);
        Assert.Equal(0, h.Channel.OutsideTransaction);
    }
}
