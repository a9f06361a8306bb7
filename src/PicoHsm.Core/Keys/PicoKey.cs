namespace PicoHsm.Keys;

/// <summary>
/// A key on a token: a private key with its public half, or a secret key. Private keys,
/// secret keys, public keys and certificates are matched by CKA_ID.
/// </summary>
public sealed record PicoKey
{
    public required string Id { get; init; }
    public string? Label { get; init; }
    /// <summary>"PrivateKey" or "SecretKey".</summary>
    public required string Class { get; init; }
    public KeyKind KeyType { get; init; }
    /// <summary>Bits (RSA modulus, EC field, AES key).</summary>
    public int Size { get; init; }
    public string? Curve { get; init; }
    public bool Extractable { get; init; }
    public bool Sensitive { get; init; }
    public bool NeverExtractable { get; init; }
    public bool CanSign { get; init; }
    public bool CanDecrypt { get; init; }
    public bool CanEncrypt { get; init; }
    public bool CanUnwrap { get; init; }
    public bool CanWrap { get; init; }
    public bool CanDerive { get; init; }
    public bool HasPublicKey { get; init; }
    public bool HasCertificate { get; init; }
    /// <summary>SHA-256 of the SubjectPublicKeyInfo DER, lower-case hex.</summary>
    public string? PublicKeyFingerprint { get; init; }
    public byte[]? PublicKeyInfo { get; init; }
    public string? TokenLabel { get; init; }
    public string? TokenSerial { get; init; }
    public int SessionId { get; init; }

    // SmartCard-HSM family only (filled by the card backend).
    public int? KeyReference { get; init; }
    public int? KeyDomain { get; init; }
    /// <summary>Whether this key can be exported under the DKEK, and if not, <see cref="ExportBlockedReason"/> says why.</summary>
    public bool Exportable { get; init; }
    public string? ExportBlockedReason { get; init; }

    /// <summary>
    /// Whether the key is complete, or an orphan: a key without a description (no PRKD, or no label and no
    /// public key), as an interrupted restore leaves it. <see cref="StatusReason"/> says what is missing and the fix.
    /// </summary>
    public PicoKeyStatus Status { get; init; } = PicoKeyStatus.Complete;
    public string? StatusReason { get; init; }
    public bool IsOrphan => Status == PicoKeyStatus.Orphan;

    /// <summary>"RSA-2048", "EC P-256", "AES-256".</summary>
    public string Algorithm => KeyType switch
    {
        KeyKind.Rsa => $"RSA-{Size}",
        KeyKind.Ec => $"EC {Curve ?? Size.ToString()}",
        KeyKind.Aes => $"AES-{Size}",
        KeyKind.GenericSecret => $"Secret-{Size}",
        _ => "Unknown",
    };

    public override string ToString() => $"{Id} {Label} {Algorithm}";
}

/// <summary>Whether a key on a device is whole (<see cref="Complete"/>) or lacks its description (<see cref="Orphan"/>).</summary>
public enum PicoKeyStatus
{
    Complete,

    /// <summary>A key without its description (an interrupted restore): rerun the restore to complete it, or Remove-PicoKey.</summary>
    Orphan,
}
