using System.Text;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.Pkcs11;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Session;

namespace PicoHsm.Core.Tests.Session;

[Collection(SoftHsmCollection.Name)]
public sealed class SessionConnectorTests
{
    private readonly SoftHsmTokens _hsm;

    public SessionConnectorTests(SoftHsmTokens hsm) => _hsm = hsm;

    [SoftHsmFact]
    public void Connect_RightPin_LogsInToTheNamedToken_WithAGenericTokenBackend()
    {
        using var s = SoftHsmTokens.Connect("core-session");
        Assert.True(s.IsLoggedIn);
        Assert.True(s.IsOpen);
        Assert.Equal("core-session", s.TokenLabel);
        Assert.Equal(DeviceFamily.Pkcs11Token, s.DeviceFamily);
        Assert.Equal(SoftHsmTokens.Module, s.ModulePath);
        Assert.IsAssignableFrom<IKeyGenerator>(s.Device);
        s.Dispose();
        Assert.False(s.IsOpen);
        Assert.False(s.IsLoggedIn);
    }

    [SoftHsmFact]
    public void Connect_WithoutPin_OpensASessionThatIsNotLoggedIn()
    {
        using var s = SessionConnector.Connect(new ConnectOptions { ModulePath = SoftHsmTokens.Module, TokenLabel = "core-session" });
        Assert.True(s.IsOpen);
        Assert.False(s.IsLoggedIn);
    }

    [SoftHsmFact]
    public void Connect_WrongPin_IsAuthenticationFailed_AndTheMessageDoesNotContainThePin()
    {
        const string wrong = "917353";
        byte[]? given = null;
        var e = Assert.Throws<PicoHsmException>(() => SessionConnector.Connect(new ConnectOptions
        {
            ModulePath = SoftHsmTokens.Module,
            TokenLabel = "core-wrong-pin",
            PinSource = _ => given = Encoding.UTF8.GetBytes(wrong),
        }));
        Assert.Equal(PicoErrorKind.AuthenticationFailed, e.Kind);
        Assert.Equal("WrongPin", e.Reason);
        Assert.Contains("core-wrong-pin", e.Message);
        Assert.DoesNotContain(wrong, e.Message);
        Assert.IsType<PicoHsmToken>(e.Target);
        // The connector zeroes the PIN bytes it was handed, whatever the outcome.
        Assert.NotNull(given);
        Assert.All(given!, b => Assert.Equal(0, b));
    }

    [SoftHsmFact]
    public void Connect_UnknownLabel_NamesTheModuleAndTheLabelsFound()
    {
        var e = Assert.Throws<PicoHsmException>(() => SoftHsmTokens.Connect("no-such-token"));
        Assert.Equal(PicoErrorKind.NotFound, e.Kind);
        Assert.Equal("TokenNotFound", e.Reason);
        Assert.Equal(SoftHsmTokens.Module, e.Target);
        Assert.Contains("no-such-token", e.Message);
        foreach (string label in SoftHsmTokens.Labels) Assert.Contains($"'{label}'", e.Message);
    }

    [SoftHsmFact]
    public void Connect_MissingModule_IsModuleNotFound()
    {
        var e = Assert.Throws<PicoHsmException>(() => SoftHsmTokens.Connect("core-session", module: "/nonexistent/libnothing.so"));
        Assert.Equal("ModuleNotFound", e.Reason);
        Assert.Contains("/nonexistent/libnothing.so", e.Message);
    }

    [SoftHsmFact]
    public void SlotFilter_ListsTheSpareUninitialisedSlot_ButNeverConnectsToIt()
    {
        var all = TokenDiscovery.List(SoftHsmTokens.Module);
        var spare = Assert.Single(all, t => !t.Initialized);
        Assert.Equal(SoftHsmTokens.Labels.Length, all.Count(t => t.Initialized));

        var bySlot = Assert.Throws<PicoHsmException>(() => SessionConnector.Connect(new ConnectOptions { ModulePath = SoftHsmTokens.Module, SlotId = spare.SlotId }));
        Assert.Equal(PicoErrorKind.NotFound, bySlot.Kind);
        Assert.Equal("TokenNotFound", bySlot.Reason);
        Assert.Contains($"in slot {spare.SlotId}", bySlot.Message);

        // Several initialised tokens and no selector: ambiguous, and the spare slot is not a candidate.
        var none = Assert.Throws<PicoHsmException>(() => SessionConnector.Connect(new ConnectOptions { ModulePath = SoftHsmTokens.Module }));
        Assert.Equal("AmbiguousToken", none.Reason);
        Assert.DoesNotMatch($@"slot {spare.SlotId}\b", none.Message);

        var session = all.Single(t => t.Label == "core-session");
        using var s = SessionConnector.Connect(new ConnectOptions { ModulePath = SoftHsmTokens.Module, SlotId = session.SlotId });
        Assert.Equal("core-session", s.TokenLabel);
    }
}
