using PicoHsm.Common;
namespace PicoHsm.Devices;

/// <summary>The DKEK of a token (or of one key domain of a SmartCard-HSM), as Get-PicoDkek shows it.</summary>
public sealed class PicoDkek
{
    public bool Present { get; init; }
    /// <summary>First 8 bytes of SHA-256(DKEK), hex; null when unknown (never all zeros).</summary>
    public string? KeyCheckValue { get; init; }
    /// <summary>
    /// True when the token proved it holds the DKEK with this KCV (a wrap of a known test key
    /// matched on a generic token; the card's own KCV on a SmartCard-HSM).
    /// </summary>
    public bool KcvVerified { get; init; }
    public string? Label { get; init; }
    public string? Id { get; init; }
    public int? KeyDomain { get; init; }
    public int? SharesTotal { get; init; }
    public int? SharesOutstanding { get; init; }
    public int? Threshold { get; init; }
    public int? ShareCount { get; init; }
    public string[] ShareFiles { get; init; } = Array.Empty<string>();
    /// <summary>The device family holding it; null for a DKEK made offline (New-PicoDkek -NoImport), on no device.</summary>
    public DeviceFamily? DeviceFamily { get; init; }
    public string? TokenLabel { get; init; }
    public string? TokenSerial { get; init; }
    public string? Status { get; init; }

    public override string ToString() => Present ? $"DKEK {KeyCheckValue ?? "(KCV unknown)"}" : "no DKEK";
}
