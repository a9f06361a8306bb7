using Net.Pkcs11Interop.HighLevelAPI;

namespace PicoHsm.Devices;

/// <summary>A slot and its token as the module reports them, read without logging in.</summary>
public sealed class PicoHsmToken
{
    public required string ModulePath { get; init; }
    public required ulong SlotId { get; init; }
    public required string SlotDescription { get; init; }
    public required bool TokenPresent { get; init; }
    public string? Label { get; init; }
    public string? SerialNumber { get; init; }
    public string? Model { get; init; }
    public string? Manufacturer { get; init; }
    public string? FirmwareVersion { get; init; }
    public string? HardwareVersion { get; init; }
    public bool Initialized { get; init; }
    public bool LoginRequired { get; init; }
    public bool UserPinInitialized { get; init; }
    public bool UserPinCountLow { get; init; }
    public bool UserPinFinalTry { get; init; }
    public bool UserPinLocked { get; init; }
    public bool UserPinToBeChanged { get; init; }
    public bool SoPinCountLow { get; init; }
    public bool SoPinFinalTry { get; init; }
    public bool SoPinLocked { get; init; }
    public bool ProtectedAuthenticationPath { get; init; }

    /// <summary>
    /// SmartCard-HSM, Nitrokey HSM 2 and Pico HSM all appear through OpenSC's sc-hsm emulation,
    /// which names CardContact as the manufacturer. Their DKEK work needs the card channel.
    /// </summary>
    public bool IsScHsmFamily =>
        (Manufacturer?.Contains("CardContact", StringComparison.OrdinalIgnoreCase) ?? false) ||
        (Manufacturer?.Contains("Henarejos", StringComparison.OrdinalIgnoreCase) ?? false) ||
        (Model?.Contains("SmartCard-HSM", StringComparison.OrdinalIgnoreCase) ?? false) ||
        (Label?.StartsWith("SmartCard-HSM", StringComparison.OrdinalIgnoreCase) ?? false);

    public string PinState =>
        UserPinLocked ? "Locked" : UserPinFinalTry ? "FinalTry" : UserPinCountLow ? "CountLow" :
        !UserPinInitialized ? "NotInitialized" : UserPinToBeChanged ? "ToBeChanged" : "OK";

    internal static PicoHsmToken From(string modulePath, ISlot slot)
    {
        var si = slot.GetSlotInfo();
        if (!si.SlotFlags.TokenPresent)
            return new PicoHsmToken { ModulePath = modulePath, SlotId = slot.SlotId, SlotDescription = si.SlotDescription.Trim(), TokenPresent = false };
        var ti = slot.GetTokenInfo();
        var f = ti.TokenFlags;
        return new PicoHsmToken
        {
            ModulePath = modulePath,
            SlotId = slot.SlotId,
            SlotDescription = si.SlotDescription.Trim(),
            TokenPresent = true,
            Label = ti.Label.Trim(),
            SerialNumber = ti.SerialNumber.Trim(),
            Model = ti.Model.Trim(),
            Manufacturer = ti.ManufacturerId.Trim(),
            FirmwareVersion = FormatVersion(ti.FirmwareVersion),
            HardwareVersion = FormatVersion(ti.HardwareVersion),
            Initialized = f.TokenInitialized,
            LoginRequired = f.LoginRequired,
            UserPinInitialized = f.UserPinInitialized,
            UserPinCountLow = f.UserPinCountLow,
            UserPinFinalTry = f.UserPinFinalTry,
            UserPinLocked = f.UserPinLocked,
            UserPinToBeChanged = f.UserPinToBeChanged,
            SoPinCountLow = f.SoPinCountLow,
            SoPinFinalTry = f.SoPinFinalTry,
            SoPinLocked = f.SoPinLocked,
            ProtectedAuthenticationPath = f.ProtectedAuthenticationPath,
        };
    }

    /// <summary>
    /// Pkcs11Interop prints a CK_VERSION with the minor number padded to two digits ("2.06");
    /// tokens and their own tools (softhsm2-util, pkcs11-tool) mean major.minor, "2.6".
    /// </summary>
    internal static string? FormatVersion(string? version)
    {
        if (version is null) return null;
        string[] parts = version.Split('.');
        return parts.Length == 2 && int.TryParse(parts[0], out int major) && int.TryParse(parts[1], out int minor)
            ? $"{major}.{minor}" : version;
    }

    public override string ToString() => $"{Label} (slot {SlotId}, serial {SerialNumber})";
}
