namespace PicoHsm.Devices.ScHsm.Shares;

/// <summary>
/// One key custodian's part of an sc-hsm-tool threshold password: the share id (printed in decimal,
/// the x of the point) and the share value (printed as colon-separated hex, the y, big-endian).
/// The prime is common to all custodians and kept in <see cref="ScHsmPasswordSplit"/>.
/// </summary>
public sealed record ScHsmPasswordShare(int Id, byte[] Value)
{
    /// <summary>Reads a share as sc-hsm-tool prints it: id "2", value "01:06:f2:71:fc:a5:05:4b".</summary>
    public static ScHsmPasswordShare Parse(int id, string value) => new(id, ScHsmPasswordShares.ParseHex(value));

    /// <summary>The value as sc-hsm-tool prints it (lower-case hex with colons).</summary>
    public string ValueText => ScHsmPasswordShares.FormatHex(Value);
}
