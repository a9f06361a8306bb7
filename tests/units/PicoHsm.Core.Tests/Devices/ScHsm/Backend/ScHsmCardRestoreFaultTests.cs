using Sim = PicoHsm.CardSimulator;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

/// <summary>
/// Issue 14 Seen 2: a card restore is all or nothing. Faults are injected by the simulator into the N-th command
/// after UNWRAP KEY: an error answer (the card stays reachable: what was written is removed) or the card leaving
/// the reader (the key stays as an orphan, listed as such; after the card is back a rerun completes it).
/// </summary>
public sealed class ScHsmCardRestoreFaultTests : CardKeyTestBase
{
    private static CardHarness WithFault(Sim.SimulatedFault fault)
    {
        var o = new Sim.ScHsmOptions { Initialized = true, DkekShares = 1, Fault = fault };
        o.ImportedShares.Add(VectorFiles.Dkek);
        return new CardHarness(o);
    }

    // After UNWRAP an EC restore sends 3 commands (the request in 2 UPDATE BINARY pieces, the PRKD; written by file id,
    // without the SELECTs it sent before issue 9): n = 1..3 fails each of them.
    [Theory]
    [InlineData("ec256.wky", 1)]
    [InlineData("ec256.wky", 2)]
    [InlineData("ec256.wky", 3)]
    [InlineData("rsa2048.wky", 3)]
    [InlineData("aes256.wky", 2)]
    public void ErrorAfterUnwrap_CardReachable_NothingIsLeft(string wky, int n)
    {
        var fault = new Sim.SimulatedFault { CommandNumber = n, Mode = Sim.FaultMode.Error };
        using var h = WithFault(fault);
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Restore(VectorFiles.Backup(wky), new RestoreRequest()));
        Assert.True(fault.Fired);
        Assert.Contains("removed again", ex.Message);
        Assert.Empty(UserKeys(h));
        Assert.Null(h.Simulator.ReadFile(0xC401));
        Assert.Null(h.Simulator.ReadFile(0xCE01));
        Assert.Empty(h.Backend.ListKeys());

        // and the rerun restores it
        var key = h.Backend.Restore(VectorFiles.Backup(wky), new RestoreRequest());
        Assert.False(key.IsOrphan);
        Assert.Single(UserKeys(h));
    }

    [Theory]
    [InlineData("ec256.wky", "ec256.pub.der", KeyKind.Ec, 1)]
    [InlineData("ec256.wky", "ec256.pub.der", KeyKind.Ec, 2)]
    [InlineData("ec256.wky", "ec256.pub.der", KeyKind.Ec, 3)]
    [InlineData("rsa2048.wky", "rsa2048.pub.der", KeyKind.Rsa, 2)]
    [InlineData("rsa2048.wky", "rsa2048.pub.der", KeyKind.Rsa, 3)]
    public void CardGoneAfterUnwrap_TheKeyIsListedAsAnOrphan_AndARerunCompletesIt(string wky, string pub, KeyKind kind, int n)
    {
        var fault = new Sim.SimulatedFault { CommandNumber = n, Mode = Sim.FaultMode.Remove };
        using var h = WithFault(fault);
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Restore(VectorFiles.Backup(wky), new RestoreRequest()));
        Assert.True(fault.Fired);
        Assert.Equal("CardUnavailable", ex.Reason);
        Assert.Contains("orphan", ex.Message);
        Assert.Contains("Rerun the restore", ex.Message);

        h.Simulator.Reinsert();
        var listed = Assert.Single(h.Backend.ListKeys());
        Assert.True(listed.IsOrphan, $"after a fault at command {n}: {listed}");
        Assert.Equal(PicoKeyStatus.Orphan, listed.Status);
        Assert.Contains("Remove-PicoKey", listed.StatusReason);

        var plan = h.Backend.PlanRestore(VectorFiles.Backup(wky), new RestoreRequest());
        Assert.Equal(RestoreAction.Replace, plan.Action); // completes the orphan, no -Force needed: it is provably this key
        Assert.Contains("incomplete copy", plan.Replaces);
        var key = h.Backend.Restore(VectorFiles.Backup(wky), new RestoreRequest());
        Assert.False(key.IsOrphan);
        Assert.Equal(listed.KeyReference, key.KeyReference);
        Assert.Equal(UserKeys(h), new[] { (byte)key.KeyReference!.Value });
        Assert.NotNull(key.Label);
        Assert.False(Assert.Single(h.Backend.ListKeys()).IsOrphan);
        AssertSignatureVerifies(h.Backend, key.KeyReference!.Value, kind, pub);

        // a further rerun: already present
        Assert.Equal(RestoreAction.AlreadyPresent, h.Backend.PlanRestore(VectorFiles.Backup(wky), new RestoreRequest()).Action);
    }

    /// <summary>An orphan that is not this backup's key is left alone: the restore goes to a free reference.</summary>
    [Fact]
    public void AnOrphanOfAnotherKey_IsNotTaken()
    {
        var fault = new Sim.SimulatedFault { CommandNumber = 1, Mode = Sim.FaultMode.Remove };
        using var h = WithFault(fault);
        Assert.Throws<PicoHsmException>(() => h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest()));
        h.Simulator.Reinsert();
        var key = h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest());
        Assert.Equal(2, key.KeyReference);
        Assert.Equal(2, h.Backend.ListKeys().Count(k => !k.IsOrphan) + h.Backend.ListKeys().Count(k => k.IsOrphan));
        Assert.True(h.Backend.ListKeys().Single(k => k.KeyReference == 1).IsOrphan);
    }

    /// <summary>The fault can follow the K-th WRAP KEY, so a backup is interrupted at its K-th key (--fault after72x3:1:remove).</summary>
    [Fact]
    public void AFaultAfterTheThirdWrap_TakesTheCardAwayAtTheThirdKey()
    {
        var f = Sim.SimulatedFault.Parse("after72x3:1:remove");
        Assert.Equal((0x72, 3, 1, Sim.FaultMode.Remove), (f.AfterIns, f.AfterCount, f.CommandNumber, f.Mode));
        Assert.Equal(1, Sim.SimulatedFault.Parse("after74:2").AfterCount);
        Assert.Throws<ArgumentException>(() => Sim.SimulatedFault.Parse("after72x0:1"));

        using var h = WithFault(f);
        for (int i = 1; i <= 4; i++)
            h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(NewId: [(byte)i], NewLabel: $"k{i}"));
        var keys = h.Backend.ListKeys();
        h.Backend.Wrap(keys[0]);
        h.Backend.Wrap(keys[1]);
        Assert.False(f.Fired);
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Wrap(keys[2]));
        Assert.True(f.Fired);
        Assert.Equal("CardUnavailable", ex.Reason);
        Assert.True(h.Simulator.IsRemoved);
    }
}
