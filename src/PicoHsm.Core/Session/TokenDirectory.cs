using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;

namespace PicoHsm.Session;

/// <summary>
/// What the cmdlet layer may ask about PKCS#11 modules and their tokens before there is a
/// session (discovery, tab completion, module import), so that it never reaches into a device
/// room itself.
/// </summary>
public static class TokenDirectory
{
    /// <summary>Where OpenSC's and SoftHSM2's modules are usually installed on this platform.</summary>
    public static IReadOnlyList<string> WellKnownModulePaths() => Pkcs11Modules.WellKnownPaths();

    /// <summary>The module a session would use: <paramref name="requested"/>, else PICOHSM_PKCS11_MODULE, else a well-known one.</summary>
    public static string ResolveModulePath(string? requested) => Pkcs11Modules.ResolvePath(requested);

    /// <summary>The module a session would use and why it was chosen (for -Verbose and messages).</summary>
    public static ModuleChoice ChooseModule(string? requested) => Pkcs11Modules.Resolve(requested);

    /// <summary>Every slot of the module in one line, for messages ("slot 0 'ca' serial ...; slot 1 (no token)").</summary>
    public static string DescribeSlots(string modulePath) => TokenDiscovery.DescribeSlots(modulePath);

    /// <summary>
    /// The slots and tokens of a module, read without logging in; read afresh (module reinitialised)
    /// when no session uses it, so a card initialised since shows as it is now.
    /// </summary>
    public static IReadOnlyList<PicoHsmToken> ListTokens(string modulePath)
    {
        using var use = Pkcs11Modules.Use(Pkcs11Modules.ResolvePath(modulePath), refresh: true);
        return TokenDiscovery.List(modulePath);
    }
}
