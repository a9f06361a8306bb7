namespace PicoHsm.Backup;

/// <summary>The token a backup was taken from (PKCS#11 CK_TOKEN_INFO fields, trimmed).</summary>
public sealed record TokenInfo(string Manufacturer, string Model, string Serial, string Firmware)
{
    internal void Validate(string what)
    {
        if (Manufacturer is null || Model is null || Serial is null || Firmware is null)
            throw new ArgumentException($"The {what} fields must not be null (use empty strings).");
    }
}
