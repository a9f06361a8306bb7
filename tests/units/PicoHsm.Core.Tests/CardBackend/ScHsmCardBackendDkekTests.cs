using System.Text;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Backend;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Core.Tests.CardBackend;

public class ScHsmCardBackendDkekTests
{
    private static SecretBytes Secret(byte[] b) => SecretBytes.CopyOf(b);

    private static int CountNested(CardHarness h) => h.Channel.NestedTransactions;

    [Fact]
    public void Token_DescribedFromTheCard_AsOpenScNamesIt()
    {
        using var h = CardHarness.Create();
        var t = h.Session.Token;
        Assert.Equal("SmartCard-HSM", t.Label);
        Assert.Equal("SmartCard-HSM version 6.0", t.Model);
        Assert.Equal("ESPICOHSMTR", t.SerialNumber); // CHR ESPICOHSMTR00001 minus the last 5 characters
        // OpenSC takes the manufacturer from EF.TokenInfo when it has one (the Pico's says "Pol Henarejos")
        Assert.Equal("Pol Henarejos", t.Manufacturer);
        Assert.Equal("Simulator 00 00", t.SlotDescription);
        Assert.Equal("", t.ModulePath);
        Assert.True(t.IsScHsmFamily);
        Assert.False(h.Session.HasPkcs11);
        Assert.Same(h.Backend, h.Session.Device);
        Assert.Equal(DeviceFamily.ScHsmCard, h.Session.DeviceFamily);
    }

    [Fact]
    public void TokenInfo_Parsed_AndDefaultsWhenAbsent()
    {
        // EF 2F03 of the Pico HSM as traced (04-p11-login-info)
        byte[] ti = Convert.FromHexString("302F020106040800000000000000000C0D506F6C2048656E6172656A6F73800D536D61727443617264" + "2D48534D03020430");
        Assert.Equal(("Pol Henarejos", "SmartCard-HSM"), ScHsmCardFiles.ReadTokenInfo(ti));
        Assert.Equal(((string?)null, (string?)null), ScHsmCardFiles.ReadTokenInfo(null));
        Assert.Equal(((string?)null, (string?)null), ScHsmCardFiles.ReadTokenInfo([0x30, 0x05, 0x01]));
    }

    [Fact]
    public void GetDkek_FreshTwoShareCard_ReportsOutstandingShares()
    {
        using var h = CardHarness.Create(shares: 2);
        var d = Assert.Single(h.Backend.GetDkek());
        Assert.False(d.Present);
        Assert.Equal(0, d.KeyDomain);
        Assert.Equal(2, d.SharesTotal);
        Assert.Equal(2, d.SharesOutstanding);
        Assert.Null(d.KeyCheckValue);
        Assert.Equal("2 of 2 shares outstanding", d.Status);
        Assert.Equal(DeviceFamily.ScHsmCard, d.DeviceFamily);
        Assert.Equal("ESPICOHSMTR", d.TokenSerial);
    }

    [Fact]
    public void GetDkek_NoDkekCard_SaysSo()
    {
        using var h = CardHarness.Create(shares: null);
        var d = Assert.Single(h.Backend.GetDkek());
        Assert.False(d.Present);
        Assert.Equal("No DKEK (initialised without --dkek-shares)", d.Status);
    }

    [Fact]
    public void ImportDkek_IntoOneShareDomain_CardReportsTheKcv_AndAgainIsNoOp()
    {
        using var h = CardHarness.Create(shares: 1);
        using var dkek = Secret(VectorFiles.Dkek);
        Assert.True(h.Backend.ImportDkek(dkek, "dkek", [1]));
        Assert.Equal(VectorFiles.Dkek, h.Simulator.GetDkek(0));
        var d = Assert.Single(h.Backend.GetDkek());
        Assert.True(d.Present);
        Assert.Equal(VectorFiles.KcvHex, d.KeyCheckValue);
        Assert.True(d.KcvVerified);
        Assert.Equal("Complete", d.Status);
        Assert.Equal(0, d.SharesOutstanding);

        Assert.False(h.Backend.ImportDkek(dkek, "dkek", [1]));

        using var other = Secret(Enumerable.Repeat((byte)0x42, 32).ToArray());
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.ImportDkek(other, "dkek", [1]));
        Assert.Equal("OtherDkekPresent", ex.Reason);
        Assert.Equal(PicoErrorKind.ResourceExists, ex.Kind);
        Assert.Contains(VectorFiles.KcvHex, ex.Message);
    }

    [Fact]
    public void ImportDkek_IntoTwoShareDomain_IsRefusedWithAdvice_NothingSent()
    {
        using var h = CardHarness.Create(shares: 2);
        using var dkek = Secret(VectorFiles.Dkek);
        int from = h.Channel.Sent.Count;
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.ImportDkek(dkek, "dkek", [1]));
        Assert.Equal("ShareCountMismatch", ex.Reason);
        Assert.Contains("2 sc-hsm-tool share files", ex.Message);
        Assert.Contains("--dkek-shares 1", ex.Message);
        Assert.Equal(0, h.Channel.Changes(from));
        Assert.Null(h.Simulator.GetDkek(0));
    }

    [Fact]
    public void ImportDkek_WithoutPin_IsRefusedBeforeTheShare()
    {
        using var h = CardHarness.Create(shares: 1, withPin: false);
        using var dkek = Secret(VectorFiles.Dkek);
        int from = h.Channel.Sent.Count;
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.ImportDkek(dkek, "dkek", [1]));
        Assert.Equal("PinRequired", ex.Reason);
        Assert.Equal(0, h.Channel.Changes(from));
    }

    [Fact]
    public void ImportShares_TwoXorShares_GiveTheVectorKcv()
    {
        using var h = CardHarness.Create(shares: 2);
        using var s1 = Secret(VectorFiles.Share1);
        using var s2 = Secret(VectorFiles.Share2);
        var d = h.Backend.ImportShares(new[] { s1, s2 });
        Assert.True(d.Present);
        Assert.Equal(VectorFiles.KcvHex, d.KeyCheckValue);
        Assert.Equal(VectorFiles.Dkek, h.Simulator.GetDkek(0));
        // the VERIFY after the last share (so a Pico stores the DKEK)
        Assert.True(h.Channel.Sent.Last(c => c[1] == 0x20 && c.Length > 5) is not null);
    }

    [Fact]
    public void ImportShares_OneAtATime_ThenTooMany_IsRefused()
    {
        using var h = CardHarness.Create(shares: 2);
        using var s1 = Secret(VectorFiles.Share1);
        using var s2 = Secret(VectorFiles.Share2);
        var first = h.Backend.ImportShares(new[] { s1 });
        Assert.False(first.Present);
        Assert.Equal("1 of 2 shares outstanding", first.Status);
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.ImportShares(new[] { s1, s2 }));
        Assert.Equal("TooManyShares", ex.Reason);
        var done = h.Backend.ImportShares(new[] { s2 });
        Assert.Equal(VectorFiles.KcvHex, done.KeyCheckValue);
    }

    [Fact]
    public void Kcv_IsNeverReportedAsZeros()
    {
        // The Pico reads the KCV as zeros until the PIN was verified in this card session.
        using (var noPin = CardHarness.WithVectorDkek(withPin: false))
        {
            var d = Assert.Single(noPin.Backend.GetDkek());
            Assert.True(d.Present);
            Assert.Null(d.KeyCheckValue);
            Assert.False(d.KcvVerified);
            Assert.Contains("PIN", d.Status);
            // the raw card answer really is zeros here
            var raw = noPin.Simulator.Process(Convert.FromHexString("8052000000"));
            Assert.Equal(new byte[8], raw[2..10]);
        }
        using var withPin = CardHarness.WithVectorDkek();
        var k = Assert.Single(withPin.Backend.GetDkek());
        Assert.Equal(VectorFiles.KcvHex, k.KeyCheckValue);
        Assert.True(k.KcvVerified);
        Assert.DoesNotContain(withPin.Backend.GetDkek(), x => x.KeyCheckValue == "0000000000000000");
    }

    [Fact]
    public void Initialize_ThenImportDkek_Works_AndPinCopyIsTheNewPin()
    {
        using var h = new CardHarness(new CardSimulator.ScHsmOptions { Initialized = false }, withPin: false);
        h.Backend.Initialize(Convert.FromHexString("3537363231383830"), Encoding.ASCII.GetBytes("123456"), dkekShares: 1, keyDomains: null);
        Assert.True(h.Simulator.IsInitialized);
        h.Simulator.Reset(); // a reboot: applet deselected, PIN session gone
        using var dkek = Secret(VectorFiles.Dkek);
        Assert.True(h.Backend.ImportDkek(dkek, "dkek", [1]));
        Assert.Equal(VectorFiles.KcvHex, Assert.Single(h.Backend.GetDkek()).KeyCheckValue);
    }

    [Fact]
    public void WrongPin_IsReported_AndTheCopyIsDroppedSoNoSecondTryIsSpent()
    {
        var o = new CardSimulator.ScHsmOptions { Initialized = true, DkekShares = 1, ImportedShares = { VectorFiles.Dkek } };
        var sim = new CardSimulator.ScHsmSimulator(o);
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
