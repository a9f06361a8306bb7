using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Card;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

public sealed class ScHsmCardDkekTests
{
    private static SecretBytes Secret(byte[] b) => SecretBytes.CopyOf(b);

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
    public void ImportShares_SameSharesAgain_IsANoOp_OtherShareIsRefused()
    {
        using var h = CardHarness.Create(2, new[] { VectorFiles.Share1, VectorFiles.Share2 });
        using var s1 = SecretBytes.CopyOf(VectorFiles.Share1);
        using var s2 = SecretBytes.CopyOf(VectorFiles.Share2);
        int from = h.Channel.Sent.Count;
        Assert.Equal(VectorFiles.KcvHex, h.Backend.ImportShares(new[] { s1, s2 }).KeyCheckValue);
        Assert.Equal(0, h.Channel.Changes(from));
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.ImportShares(new[] { s1 }));
        Assert.Equal("OtherDkekPresent", ex.Reason);
    }
}
