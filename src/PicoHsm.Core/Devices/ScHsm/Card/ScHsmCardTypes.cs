namespace PicoHsm.Devices.ScHsm.Card;

/// <summary>What SELECT of the SmartCard-HSM applet answered.</summary>
public sealed record ScHsmAppletInfo(byte VersionMajor, byte VersionMinor, byte[] ProprietaryInfo, byte[] Fcp)
{
    /// <summary>"6.0" for Pico HSM v6.0 (last two bytes of FCP tag 85).</summary>
    public string Version => $"{VersionMajor}.{VersionMinor}";

    /// <summary>The configuration options (first two bytes of tag 85 when it has 5 bytes), or null.</summary>
    public ushort? Options => ProprietaryInfo.Length >= 5 ? (ushort)((ProprietaryInfo[0] << 8) | ProprietaryInfo[1]) : null;

    /// <summary>Option bit announcing session PINs (0x04 of the second option byte).</summary>
    public bool SupportsSessionPin => ProprietaryInfo.Length >= 5 && (ProprietaryInfo[1] & 0x04) != 0;
}

public enum ScHsmPinState
{
    /// <summary>90 00: verified in the card's current session.</summary>
    Verified,
    /// <summary>63 Cx: not verified, x tries left.</summary>
    NotVerified,
    /// <summary>69 83 (or 63 C0): blocked.</summary>
    Blocked,
    /// <summary>69 84 on Pico: a transport PIN is set and must be changed first.</summary>
    TransportPin,
    /// <summary>6A 88: no user PIN (device not initialised).</summary>
    NotInitialized,
}

/// <summary>The user PIN state from VERIFY without data (00 20 00 81).</summary>
public sealed record ScHsmPinStatus(ScHsmPinState State, int? TriesLeft, ushort StatusWord)
{
    public bool IsVerified => State == ScHsmPinState.Verified;
}

/// <summary>
/// Answer of IMPORT DKEK SHARE / key domain status (80 52 00 kd): shares announced, shares still
/// outstanding, KCV. <see cref="Kcv"/> is null when the device reports 8 zero bytes, which a Pico HSM
/// does until the user PIN has been verified: that is "unknown", not a KCV.
/// </summary>
public sealed record ScHsmKeyDomainStatus(byte KeyDomain, bool IsConfigured, int TotalShares, int OutstandingShares, byte[]? Kcv, byte[] XkekDomainUid)
{
    /// <summary>The key domain exists and holds (or waits for) a DKEK made of shares.</summary>
    public bool HasDkek => IsConfigured && TotalShares is > 0 and < 0xFF;

    /// <summary>All announced shares were imported: the DKEK can wrap and unwrap.</summary>
    public bool IsComplete => HasDkek && OutstandingShares == 0;

    public int ImportedShares => Math.Max(0, TotalShares - OutstandingShares);

    /// <summary>An XKEK key domain (total reported as FF).</summary>
    public bool IsXkekDomain => IsConfigured && TotalShares == 0xFF;

    /// <summary>Lower-case hex KCV, or null when unknown.</summary>
    public string? KcvHex => Kcv is null ? null : Convert.ToHexString(Kcv).ToLowerInvariant();

    internal static ScHsmKeyDomainStatus NotConfigured(byte kd) => new(kd, false, 0, 0, null, []);

    internal static ScHsmKeyDomainStatus Parse(byte kd, ReadOnlySpan<byte> data)
    {
        if (data.Length < 10)
            throw new FormatException($"A key domain status has at least 10 bytes (got {data.Length}).");
        byte[] kcv = data.Slice(2, 8).ToArray();
        bool unknown = kcv.AsSpan().IndexOfAnyExcept((byte)0) < 0;
        return new ScHsmKeyDomainStatus(kd, true, data[0], data[1], unknown ? null : kcv, data[10..].ToArray());
    }
}

/// <summary>
/// A key on the device: its reference and which of its companion files exist. <see cref="HasCertificate"/>
/// is null when unknown (Pico HSM does not list CE files in ENUMERATE OBJECTS).
/// </summary>
public sealed record ScHsmKeyEntry(byte KeyReference, bool HasPrivateKeyDescription, bool? HasCertificate)
{
    /// <summary>CC kid: the key itself.</summary>
    public ushort KeyFid => (ushort)(ScHsmCard.KeyPrefix << 8 | KeyReference);

    /// <summary>C4 kid: PKCS#15 private key description (label, CKA_ID).</summary>
    public ushort PrivateKeyDescriptionFid => (ushort)(ScHsmCard.PrkdPrefix << 8 | KeyReference);

    /// <summary>CE kid: certificate or CV request (67..) of the key.</summary>
    public ushort CertificateFid => (ushort)(ScHsmCard.CertificatePrefix << 8 | KeyReference);
}
