namespace PicoHsm.Devices.ScHsm.Shares;

/// <summary>
/// The result of splitting a share-file password the sc-hsm-tool way: the public prime (big-endian,
/// given to every custodian), how many shares rebuild the password, and one share per custodian.
/// </summary>
public sealed record ScHsmPasswordSplit(byte[] Prime, int Threshold, IReadOnlyList<ScHsmPasswordShare> Shares)
{
    /// <summary>The prime as sc-hsm-tool prints it (lower-case hex with colons).</summary>
    public string PrimeText => ScHsmPasswordShares.FormatHex(Prime);
}
