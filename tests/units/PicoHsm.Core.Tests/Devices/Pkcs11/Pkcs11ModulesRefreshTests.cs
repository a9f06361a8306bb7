using PicoHsm.Common;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Session;

namespace PicoHsm.Core.Tests.Devices.Pkcs11;

/// <summary>
/// Issue 14, Seen 3: OpenSC reads a card's PKCS#15 view once, at C_Initialize, so after the card was
/// initialised over its card channel the process kept the stale view for ever (CKR_USER_PIN_NOT_INITIALIZED
/// until a new pwsh). A module no session uses is now finalised before a connect or a token listing, and
/// one marked stale is finalised when its last session closes, never under a session that uses it.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class Pkcs11ModulesRefreshTests
{
    private const string Token = "core-session";

    [SoftHsmFact]
    public void AModuleInUse_IsNotFinalised_AndAStaleOne_IsFinalisedWhenItsLastSessionCloses()
    {
        var s = SoftHsmTokens.Connect(Token);
        try
        {
            Assert.True(Pkcs11Modules.UseCount(SoftHsmTokens.Module) >= 1);
            Assert.False(Pkcs11Modules.RefreshIfUnused(SoftHsmTokens.Module));
            Assert.False(SessionConnector.RefreshModules()); // marked stale, still in use
            Assert.True(Pkcs11Modules.IsLoaded(SoftHsmTokens.Module));
            // The session still works on the module it was opened with.
            _ = s.Device.ListKeys();
            Assert.True(s.IsOpen);
        }
        finally
        {
            s.Dispose();
        }
        // The last session closed: the stale module was finalised (unless a test running in parallel
        // uses a module: one C_Finalize can reach another path's library), and the next connect loads it afresh.
        Assert.True(!Pkcs11Modules.IsLoaded(SoftHsmTokens.Module) || Pkcs11Modules.AnyInUse);
        using var again = SoftHsmTokens.Connect(Token);
        Assert.True(again.IsLoggedIn);
        _ = again.Device.ListKeys();
    }

    [SoftHsmFact]
    public void AConnect_WithNoSessionOnTheModule_ReloadsIt_AndALeaseKeepsItLoaded()
    {
        using (SoftHsmTokens.Connect(Token)) { }
        Assert.True(Pkcs11Modules.IsLoaded(SoftHsmTokens.Module));
        var said = new List<string>();
        using (var s = SessionConnector.Connect(new ConnectOptions
        {
            ModulePath = SoftHsmTokens.Module,
            TokenLabel = Token,
            PinSource = _ => System.Text.Encoding.UTF8.GetBytes(SoftHsmTokens.Pin),
            Verbose = said.Add,
        }))
        {
            Assert.True(s.IsLoggedIn);
        }
        Assert.True(said.Any(m => m.Contains("reinitialised", StringComparison.Ordinal)) || Pkcs11Modules.AnyInUse);

        using (Pkcs11Modules.Use(SoftHsmTokens.Module, refresh: false))
        {
            Assert.False(Pkcs11Modules.RefreshIfUnused(SoftHsmTokens.Module));
            Assert.True(Pkcs11Modules.IsLoaded(SoftHsmTokens.Module));
        }
        Assert.True(Pkcs11Modules.RefreshIfUnused(SoftHsmTokens.Module) || Pkcs11Modules.AnyInUse);
    }
}
