using System.Text;
using Sim = PicoHsm.CardSimulator;
using PicoHsm.Devices;
using PicoHsm.Common;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

/// <summary>Issue 14, Seen 5: Initialize proves the SO-PIN (reference 88) on an initialised card before the wipe.</summary>
public sealed class ScHsmCardSoPinTests
{
    private const string RightSoPinHex = "3537363231383830"; // the simulator's SO-PIN (ScHsmOptions.SoPin)
    private const string WrongSoPinHex = "0000000000000000";

    private static byte[] NewPin => Encoding.ASCII.GetBytes("654321");

    private static CardHarness WithKeys()
    {
        var h = CardHarness.WithVectorDkek();
        h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(KeyReference: 4));
        h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(KeyReference: 5));
        return h;
    }

    [Fact]
    public void WrongSoPin_OnInitialisedCardWithKeys_IsRefused_KeysStay_OneTrySpent()
    {
        using var h = WithKeys();
        var keysBefore = h.Simulator.KeyReferences.ToArray();
        int triesBefore = h.Simulator.SoPinTriesLeft;
        int from = h.Channel.Sent.Count;

        var ex = Assert.Throws<PicoHsmException>(() =>
            h.Backend.Initialize(Convert.FromHexString(WrongSoPinHex), NewPin, dkekShares: 1, keyDomains: null));

        Assert.Equal("WrongSoPin", ex.Reason);
        Assert.Equal(PicoErrorKind.AuthenticationFailed, ex.Kind);
        Assert.Equal(triesBefore - 1, h.Simulator.SoPinTriesLeft);
        Assert.Contains($"{triesBefore - 1} SO-PIN tries left", ex.Message);
        Assert.DoesNotContain(WrongSoPinHex, ex.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(RightSoPinHex, ex.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("654321", ex.Message);
        Assert.Equal(keysBefore, h.Simulator.KeyReferences.ToArray());
        Assert.Contains((byte)4, h.Simulator.KeyReferences);
        Assert.Contains((byte)5, h.Simulator.KeyReferences);
        Assert.Equal(VectorFiles.Dkek, h.Simulator.GetDkek());
        // no INITIALIZE with data was sent, and exactly one VERIFY of reference 88 carried a value
        Assert.DoesNotContain(h.Channel.SentWithIns(0x50, from), c => c.Length > 5);
        Assert.Single(h.Channel.SentWithIns(0x20, from), c => c[3] == 0x88 && c.Length > 5);
    }

    [Fact]
    public void RightSoPin_OnInitialisedCardWithKeys_Wipes_AndTriesAreFull()
    {
        using var h = WithKeys();
        h.Backend.Initialize(Convert.FromHexString(RightSoPinHex), NewPin, dkekShares: 1, keyDomains: null);
        Assert.DoesNotContain((byte)4, h.Simulator.KeyReferences);
        Assert.DoesNotContain((byte)5, h.Simulator.KeyReferences);
        Assert.Null(h.Simulator.GetDkek());
        Assert.Equal(15, h.Simulator.SoPinTriesLeft);
    }

    [Fact]
    public void BlockedSoPin_IsRefused_WithoutAnyTry()
    {
        using var h = WithKeys();
        while (h.Simulator.SoPinTriesLeft > 0)
            h.Simulator.Process(Convert.FromHexString("0020008808" + WrongSoPinHex));
        int from = h.Channel.Sent.Count;
        var ex = Assert.Throws<PicoHsmException>(() =>
            h.Backend.Initialize(Convert.FromHexString(RightSoPinHex), NewPin, dkekShares: 1, keyDomains: null));
        Assert.Equal("SoPinLocked", ex.Reason);
        Assert.Contains("0 tries left", ex.Message);
        Assert.Contains((byte)4, h.Simulator.KeyReferences);
        Assert.DoesNotContain(h.Channel.SentWithIns(0x20, from), c => c[3] == 0x88 && c.Length > 5);
    }

    [Fact]
    public void BlankCard_NeedsNoSoPinProof()
    {
        using var h = new CardHarness(new Sim.ScHsmOptions { Initialized = false }, withPin: false);
        h.Backend.Initialize(Convert.FromHexString(WrongSoPinHex), NewPin, dkekShares: 1, keyDomains: null);
        Assert.True(h.Simulator.IsInitialized);
        Assert.DoesNotContain(h.Channel.Sent, c => c.Length > 5 && c[1] == 0x20 && c[3] == 0x88);
    }
}
