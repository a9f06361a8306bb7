using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using PicoHsm.Backup;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Backup;

internal static class BackupSamples
{
    public static readonly TokenInfo Token = new("SoftHSM project", "SoftHSM v2", "a1b2c3d4e5f6", "2.6");
    public static readonly byte[] Kcv = Convert.FromHexString("0123456789abcdef");

    public static WrappedKeyFile Ec()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest("CN=Root CA \u00e9\u00e8", ec, HashAlgorithmName.SHA256);
        using var cert = req.CreateSelfSigned(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(2036, 1, 1, 0, 0, 0, TimeSpan.Zero));
        return new WrappedKeyFile
        {
            Created = new DateTimeOffset(2026, 11, 27, 12, 34, 56, 789, TimeSpan.Zero),
            ToolVersion = "PicoHsm 0.1.0",
            SourceToken = Token,
            KeyClass = KeyClass.Private,
            KeyKind = KeyKind.Ec,
            SizeBits = 256,
            CurveName = "secp256r1",
            CurveParameters = Convert.FromHexString("06082A8648CE3D030107"),
            Id = new byte[] { 0x01, 0xA0 },
            Label = "Root CA key \"2026\" \u00e9",
            Attributes = new Dictionary<string, bool>
            {
                [KeyAttributeNames.Sign] = true,
                [KeyAttributeNames.Decrypt] = false,
                [KeyAttributeNames.Derive] = false,
                [KeyAttributeNames.Sensitive] = true,
                [KeyAttributeNames.Extractable] = true,
                [KeyAttributeNames.AlwaysAuthenticate] = false,
                [KeyAttributeNames.Private] = true,
            },
            WrapMechanism = "CKM_AES_KEY_WRAP_PAD",
            WrappingKeyKcv = Kcv,
            WrappedKey = RandomNumberGenerator.GetBytes(144),
            PublicKeyInfo = ec.ExportSubjectPublicKeyInfo(),
            Certificate = cert.RawData,
            CertificateLabel = "Root CA",
        };
    }

    public static WrappedKeyFile Aes() => new()
    {
        Created = new DateTimeOffset(2026, 11, 27, 0, 0, 0, TimeSpan.Zero),
        ToolVersion = "PicoHsm 0.1.0",
        SourceToken = Token,
        KeyClass = KeyClass.Secret,
        KeyKind = KeyKind.Aes,
        SizeBits = 256,
        Id = Array.Empty<byte>(),
        Label = "",
        Attributes = new Dictionary<string, bool> { [KeyAttributeNames.Encrypt] = true, [KeyAttributeNames.Decrypt] = true },
        WrapMechanism = "CKM_AES_KEY_WRAP_PAD",
        WrappingKeyKcv = Kcv,
        WrappedKey = RandomNumberGenerator.GetBytes(40),
    };

    /// <summary>Recomputes the trailing digest of an edited document, as a careful forger would.</summary>
    public static byte[] Redigest(string text)
    {
        byte[] b = Encoding.UTF8.GetBytes(text);
        int hexAt = b.Length - 4 - 64;
        Encoding.ASCII.GetBytes(Convert.ToHexString(SHA256.HashData(b.AsSpan(0, hexAt))).ToLowerInvariant(), b.AsSpan(hexAt, 64));
        return b;
    }
}
