using CsCheck;
using PicoHsm.Backup;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Backup;

public class WrappedKeyFilePropertyTests
{
    // Pieces chosen to stress JSON escaping and UTF-8: quotes, backslash, control characters,
    // line separators, HTML-sensitive characters, base64 '+', accents, a non-BMP character.
    private static readonly Gen<string> Text =
        Gen.OneOfConst("a", "Z", " ", "\"", "\\", "\n", "\r", "\t", "\0", "\u007f", "\u2028", "<", ">", "&", "'", "+", "/",
                "\u00e9", "e\u0301", "\u4e2d", "\U0001F511", "\ufeff")
            .Array[0, 12].Select(parts => string.Concat(parts));

    private static readonly Gen<WrappedKeyFile> Files =
        from kind in Gen.OneOfConst(KeyKind.Rsa, KeyKind.Ec, KeyKind.Aes, KeyKind.GenericSecret)
        from label in Text
        from certLabel in Text
        from tool in Text
        from serial in Text
        from id in Gen.Byte.Array[0, 40]
        from wrapped in Gen.Byte.Array[1, 600]
        from kcv in Gen.Byte.Array[8, 8]
        from names in Gen.OneOfConst(KeyAttributeNames.All.ToArray()).Array[0, 8]
        from values in Gen.Bool.Array[8, 8]
        from withCert in Gen.Bool
        from ms in Gen.Long[0, 253_402_300_799_999]
        select new WrappedKeyFile
        {
            Created = DateTimeOffset.FromUnixTimeMilliseconds(ms),
            ToolVersion = tool,
            SourceToken = new TokenInfo("m" + label, "model", serial, ""),
            KeyClass = kind is KeyKind.Rsa or KeyKind.Ec ? KeyClass.Private : KeyClass.Secret,
            KeyKind = kind,
            SizeBits = kind switch { KeyKind.Aes => 128, KeyKind.Ec => 384, KeyKind.Rsa => 4096, _ => 8 * Math.Max(1, id.Length) },
            CurveName = kind == KeyKind.Ec ? "secp384r1" : null,
            CurveParameters = kind == KeyKind.Ec ? Convert.FromHexString("06052B81040022") : null,
            Id = id,
            Label = label,
            Attributes = names.Select((n, i) => (n, values[i])).DistinctBy(a => a.n).ToDictionary(a => a.n, a => a.Item2),
            WrapMechanism = "CKM_AES_KEY_WRAP_PAD",
            WrapMechanismParameters = withCert ? id : null,
            WrappingKeyKcv = kcv,
            WrappedKey = wrapped,
            Certificate = withCert && kind is KeyKind.Rsa or KeyKind.Ec ? Convert.FromHexString("3003020101") : null,
            CertificateLabel = withCert && kind is KeyKind.Rsa or KeyKind.Ec ? certLabel : null,
        };

    [Fact]
    public void AnyValidFileReadsBackToTheSameBytesAndValues()
    {
        Files.Sample(f =>
        {
            byte[] bytes = f.ToBytes();
            var read = WrappedKeyFile.Read(bytes, "p.pkb");
            Assert.Equal(bytes, read.ToBytes());
            Assert.Equal(f.Label, read.Label);
            Assert.Equal(f.ToolVersion, read.ToolVersion);
            Assert.Equal(f.SourceToken, read.SourceToken);
            Assert.Equal(f.Id, read.Id);
            Assert.Equal(f.WrappedKey, read.WrappedKey);
            Assert.Equal(f.Created, read.Created);
            Assert.Equal(f.CertificateLabel, read.CertificateLabel);
            Assert.Equal(f.Attributes.OrderBy(a => a.Key), read.Attributes.OrderBy(a => a.Key));
            Assert.DoesNotContain((byte)'\r', bytes);
        }, iter: 500);
    }
}
