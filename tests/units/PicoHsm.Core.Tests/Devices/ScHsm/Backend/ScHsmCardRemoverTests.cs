using Sim = PicoHsm.CardSimulator;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

/// <summary>Remove-PicoKey on the card (issue 14 "there is no way in the module to remove a key"): key, PRKD and certificate; orphans; never the device key.</summary>
public sealed class ScHsmCardRemoverTests : CardKeyTestBase
{
    [Fact]
    public void RemoveKey_DeletesTheKeyItsPrkdAndCertificate_AndLeavesTheOthers()
    {
        using var h = CardHarness.WithVectorDkek();
        IKeyRemover remover = h.Backend;
        var ec = h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(KeyReference: 4));
        var rsa = h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(KeyReference: 5));
        string words = remover.RemoveKey(ec);
        Assert.Contains("key reference 4", words);
        Assert.Equal(new byte[] { 5 }, UserKeys(h));
        Assert.Null(h.Simulator.ReadFile(0xC404));
        Assert.Null(h.Simulator.ReadFile(0xCE04));
        Assert.NotNull(h.Simulator.ReadFile(0xCE05));
        Assert.Equal(rsa.Id, Assert.Single(h.Backend.ListKeys()).Id);
        // the reference is free again: a restore there needs no -Force
        Assert.Equal(RestoreAction.Create, h.Backend.PlanRestore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(KeyReference: 4)).Action);
    }

    [Fact]
    public void RemoveKey_RemovesAnOrphan()
    {
        var o = new Sim.ScHsmOptions { Initialized = true, DkekShares = 1, Fault = new Sim.SimulatedFault { CommandNumber = 1, Mode = Sim.FaultMode.Remove } };
        o.ImportedShares.Add(VectorFiles.Dkek);
        using var h = new CardHarness(o);
        Assert.Throws<PicoHsmException>(() => h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest()));
        h.Simulator.Reinsert();
        var orphan = Assert.Single(h.Backend.ListKeys());
        Assert.True(orphan.IsOrphan);
        h.Backend.RemoveKey(orphan);
        Assert.Empty(UserKeys(h));
        Assert.Empty(h.Backend.ListKeys());
    }

    [Fact]
    public void RemoveKey_NeverTheDeviceKey_AndAMissingKeyIsNotFound()
    {
        using var h = CardHarness.WithVectorDkek();
        var device = new PicoKey { Id = "00", Class = "PrivateKey", KeyReference = 0 };
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.RemoveKey(device));
        Assert.Equal("DeviceKeyNotRemovable", ex.Reason);
        Assert.NotNull(h.Simulator.GetKey(0));
        var missing = Assert.Throws<PicoHsmException>(() => h.Backend.RemoveKey(new PicoKey { Id = "42", Class = "PrivateKey" }));
        Assert.Equal("KeyNotFound", missing.Reason);
    }
}
