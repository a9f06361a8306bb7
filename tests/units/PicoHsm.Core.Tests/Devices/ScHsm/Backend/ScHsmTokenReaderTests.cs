using Sim = PicoHsm.CardSimulator;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Backend;
using PicoHsm.Devices.ScHsm.Card;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

public sealed class ScHsmTokenReaderTests
{
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
    public void ReadToken_AppletAlreadySelected_NoSelect_VersionFromThePico()
    {
        var sim = new Sim.ScHsmSimulator(new Sim.ScHsmOptions { Initialized = true });
        sim.Process(Convert.FromHexString("00A404000BE82B0601040181C31F020100")); // another program selected it
        var ch = new SimulatorChannel(sim);
        var token = ScHsmCardBackend.ReadToken(ch);
        Assert.Equal(0, ch.AppletSelects());
        Assert.Equal("SmartCard-HSM version 6.0", token.Model);
        Assert.Equal("ESPICOHSMTR", token.SerialNumber);
        Assert.True(token.Initialized);
    }
}
