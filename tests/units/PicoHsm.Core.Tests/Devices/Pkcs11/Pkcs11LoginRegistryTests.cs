using System.Text;
using Net.Pkcs11Interop.Common;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Core.Tests.Devices.Pkcs11;

/// <summary>
/// Issue 8, Seen 3: PKCS#11 login state is per token for the whole process, so C_Login on a second
/// session answers CKR_USER_ALREADY_LOGGED_IN without looking at the PIN. Every Connect must prove
/// its PIN, and one Disconnect must not log out the other sessions of the token. The spy module
/// (pkcs11-spy in front of the same SoftHSM2) logs every call, so "no C_Login was sent" is counted.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class Pkcs11LoginRegistryTests
{
    private const string Token = "core-login";
    private const string WrongPin = "000000";
    private readonly SoftHsmTokens _hsm;

    public Pkcs11LoginRegistryTests(SoftHsmTokens hsm) => _hsm = hsm;

    private static PicoHsmToken TokenInfo() => TokenDiscovery.List(SoftHsmTokens.Spy).Single(t => t.Label == Token);

    [SoftHsmFact(needsSpy: true)]
    public void SecondConnect_WithAWrongPin_WhileLoggedIn_IsRefused_WithoutSendingC_Login()
    {
        using var first = SoftHsmTokens.Connect(Token, module: SoftHsmTokens.Spy);
        Assert.True(first.IsLoggedIn);

        PicoHsmException? e = null;
        int logins = _hsm.CountCalls("C_Login", () => e = Assert.Throws<PicoHsmException>(() => SoftHsmTokens.Connect(Token, WrongPin, SoftHsmTokens.Spy)));
        Assert.Equal(PicoErrorKind.AuthenticationFailed, e!.Kind);
        Assert.Equal("WrongPin", e.Reason);
        Assert.Contains(Token, e.Message);
        Assert.DoesNotContain(WrongPin, e.Message);
        Assert.Equal(0, logins); // no device try spent
        Assert.False(TokenInfo().UserPinCountLow);

        // The right PIN shares the login (still no C_Login: the token is logged in), and the first session still works.
        using var second = SoftHsmTokens.Connect(Token, module: SoftHsmTokens.Spy);
        Assert.True(second.IsLoggedIn);
        Assert.True(first.IsLoggedIn);
        first.Device.ListKeys();
    }

    [SoftHsmFact(needsSpy: true)]
    public void DisconnectingOneOfTwoSessions_KeepsTheOtherLoggedIn_AndTheLastOneLogsOut()
    {
        var a = SoftHsmTokens.Connect(Token, module: SoftHsmTokens.Spy);
        var b = SoftHsmTokens.Connect(Token, module: SoftHsmTokens.Spy);
        try
        {
            byte[] id = { 0x4c, (byte)Random.Shared.Next(256), (byte)Random.Shared.Next(256) };
            ((IKeyGenerator)a.Device).GenerateKey(KeyKind.Ec, 256, "P-256", id, "login-shared", extractable: false);
            a.Dispose();
            Assert.True(b.IsLoggedIn);
            // Private keys are visible only to a logged-in session: b still sees the one a made.
            Assert.Contains(b.Device.ListKeys(), k => k.Label == "login-shared");
        }
        finally
        {
            a.Dispose();
            b.Dispose();
        }
        // The last session logged the token out: the next connect logs in for real.
        int logins = _hsm.CountCalls("C_Login", () => SoftHsmTokens.Connect(Token, module: SoftHsmTokens.Spy).Dispose());
        Assert.Equal(1, logins);
    }

    [SoftHsmFact(needsSpy: true)]
    public void ALoginMadeOutsidePicoHsm_IsNotTakenAsProofOfThePin()
    {
        using var use = Pkcs11Modules.Use(SoftHsmTokens.Spy, refresh: false); // raw PKCS#11 work: no connect may reload the module under it
        var lib = Pkcs11Modules.Load(SoftHsmTokens.Spy);
        var slot = lib.GetSlotList(SlotsType.WithTokenPresent).Single(s => s.GetTokenInfo().Label.Trim() == Token);
        using var raw = slot.OpenSession(SessionType.ReadWrite);
        raw.Login(CKU.CKU_USER, Encoding.UTF8.GetBytes(SoftHsmTokens.Pin));
        try
        {
            PicoHsmException? e = null;
            int logins = _hsm.CountCalls("C_Login", () => e = Assert.Throws<PicoHsmException>(() => SoftHsmTokens.Connect(Token, WrongPin, SoftHsmTokens.Spy)));
            Assert.Equal("LoggedInElsewhere", e!.Reason);
            Assert.Contains(SoftHsmTokens.Spy, e.Message);
            Assert.Equal(0, logins);
            // The right PIN cannot be told from a wrong one here either: refused the same way.
            Assert.Equal("LoggedInElsewhere", Assert.Throws<PicoHsmException>(() => SoftHsmTokens.Connect(Token, module: SoftHsmTokens.Spy)).Reason);
        }
        finally
        {
            raw.Logout();
        }
        using var s = SoftHsmTokens.Connect(Token, module: SoftHsmTokens.Spy);
        Assert.True(s.IsLoggedIn);
    }

    [SoftHsmFact]
    public void Verbose_SaysWhichModuleWasChosenAndWhy_AndHowThePinWasProven()
    {
        var said = new List<string>();
        ConnectOptions Options() => new()
        {
            ModulePath = SoftHsmTokens.Module,
            TokenLabel = Token,
            PinSource = _ => Encoding.UTF8.GetBytes(SoftHsmTokens.Pin),
            Verbose = said.Add,
        };
        using var first = SessionConnector.Connect(Options());
        using var second = SessionConnector.Connect(Options());
        Assert.Contains(said, m => m.Contains(SoftHsmTokens.Module) && m.Contains("given with -ModulePath"));
        Assert.Contains(said, m => m.Contains("checked by the token"));
        Assert.Contains(said, m => m.Contains("sharing it (2 sessions)"));
        Assert.All(said, m => Assert.DoesNotContain(SoftHsmTokens.Pin, m));
    }

    [SoftHsmFact]
    public void UnknownLabel_NamesTheModule_WhyItWasChosen_AndEverySlotSearched()
    {
        var e = Assert.Throws<PicoHsmException>(() => SoftHsmTokens.Connect("no-such-token"));
        Assert.Equal("TokenNotFound", e.Reason);
        Assert.Contains($"'{SoftHsmTokens.Module}'", e.Message);
        Assert.Contains("given with -ModulePath", e.Message);
        Assert.Contains("Slots searched:", e.Message);
        var spare = TokenDiscovery.List(SoftHsmTokens.Module).Single(t => !t.Initialized);
        Assert.Contains($"slot {spare.SlotId} (token not initialised", e.Message);
        foreach (string label in SoftHsmTokens.Labels) Assert.Contains($"'{label}'", e.Message);
    }
}
