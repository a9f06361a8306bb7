using PicoHsm.Keys;

namespace PicoHsm.Backends;

/// <summary>The device a backup came from; kept in every backup for the audit trail.</summary>
public sealed record SourceToken(string? Label, string? Model, string? Manufacturer, string? Serial, string? Firmware);

/// <summary>
/// Everything a generic token's backup holds, between the backend and the file format:
/// the wrapped key and what is needed to recreate it as it was.
/// </summary>
public sealed class KeyExport
{
    public required byte[] WrappedKey { get; init; }
    public required string Mechanism { get; init; }
    public required byte[] DkekKcv { get; init; }
    /// <summary>"PrivateKey" or "SecretKey".</summary>
    public required string KeyClass { get; init; }
    public required KeyKind KeyKind { get; init; }
    public int SizeBits { get; init; }
    public string? Curve { get; init; }
    public byte[]? EcParams { get; init; }
    public required byte[] Id { get; init; }
    public string? Label { get; init; }
    /// <summary>PKCS#11 boolean attributes by name (CKA_SIGN, CKA_DECRYPT, ...).</summary>
    public Dictionary<string, bool> Attributes { get; init; } = new();
    public byte[]? PublicKeyInfo { get; init; }
    public byte[]? Certificate { get; init; }
    public string? CertificateLabel { get; init; }
    /// <summary>CKA_CHECK_VALUE of a secret key (3 bytes for AES), so a restore can be proven to be the same key.</summary>
    public byte[]? SecretKeyCheckValue { get; init; }
    public SourceToken? Source { get; init; }
    public DateTimeOffset Created { get; init; } = DateTimeOffset.UtcNow;
}
