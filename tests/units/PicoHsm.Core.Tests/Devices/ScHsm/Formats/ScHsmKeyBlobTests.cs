using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Formats;

public class ScHsmKeyBlobTests
{
    private static readonly byte[] Dkek = Vectors.Hex(Vectors.DkekHex);
    private static readonly byte[] OtherDkek = RandomNumberGenerator.GetBytes(32);

    public static TheoryData<string> WrappedKeyFiles => new()
    {
        "rsa2048.wky", "ec256.wky", "aes256.wky", "offline-rsa2048-crt.wky",
    };

    private static ScHsmKeyBlob BlobOf(string file) => ScHsmWrappedKeyFile.Read(Vectors.PathOf(file)).ParseKeyBlob();

    [Theory]
    [InlineData("rsa2048.wky", ScHsmKeyType.Rsa, 587, 27, "04007F00070202020102")]
    [InlineData("ec256.wky", ScHsmKeyType.Ec, 331, 27, "04007F00070202020203")]
    [InlineData("aes256.wky", ScHsmKeyType.Aes, 89, 25, "6086480165030401")]
    [InlineData("offline-rsa2048-crt.wky", ScHsmKeyType.RsaCrt, 971, 27, "04007F00070202020102")]
    public void Header_ReadsWithoutDkek(string file, ScHsmKeyType type, int length, int header, string oid)
    {
        var blob = BlobOf(file);
        Assert.Equal(length, blob.Length);
        Assert.Equal(Vectors.KcvHex, blob.KcvHex);
        Assert.Equal(type, blob.KeyType);
        Assert.Equal(header, blob.HeaderLength);
        Assert.Equal(oid, Convert.ToHexString(blob.DefaultAlgorithm));
        Assert.Empty(blob.AllowedAlgorithms);
        Assert.Empty(blob.AccessConditions);
        Assert.Empty(blob.KeyOid);
        Assert.Equal(0, blob.Ciphertext.Length % 16);
        Assert.True(blob.HasPicoDefaultAlgorithm);
    }

    [Theory]
    [MemberData(nameof(WrappedKeyFiles))]
    public void Mac_VerifiesUnderDkek_AndNotUnderAnother(string file)
    {
        var blob = BlobOf(file);
        Assert.True(blob.IsFor(Dkek));
        Assert.True(blob.VerifyMac(Dkek));
        Assert.False(blob.IsFor(OtherDkek));
        Assert.False(blob.VerifyMac(OtherDkek));
        var ex = Assert.Throws<ScHsmWrongDkekException>(() => blob.Decrypt(OtherDkek).Dispose());
        Assert.Contains(Vectors.KcvHex, ex.Message);
    }

    [Theory]
    [MemberData(nameof(WrappedKeyFiles))]
    public void AnySingleFlippedByte_FailsTheMac(string file)
    {
        var bytes = BlobOf(file).ToArray();
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] ^= 0x01;
            ScHsmKeyBlob altered;
            try
            {
                altered = ScHsmKeyBlob.Parse(bytes);
            }
            catch (ScHsmFormatException)
            {
                bytes[i] ^= 0x01;   // a flipped header length or type can make the blob unreadable: also a rejection
                continue;
            }
            Assert.False(altered.VerifyMac(Dkek), $"byte {i} flipped and the CMAC still verified");
            Assert.Throws<ScHsmWrongDkekException>(() => altered.Decrypt(Dkek).Dispose());
            bytes[i] ^= 0x01;
        }
        Assert.True(ScHsmKeyBlob.Parse(bytes).VerifyMac(Dkek));
    }

    [Theory]
    [InlineData("rsa2048.wky", "rsa2048.pub.der")]
    [InlineData("offline-rsa2048-crt.wky", "offline-rsa2048-crt.pub.der")]
    public void Rsa_DecryptsToKeyMatchingPublicKey_AndSigns(string file, string pub)
    {
        var spki = Vectors.Read(pub);
        using var material = Assert.IsType<ScHsmRsaKeyMaterial>(BlobOf(file).Decrypt(Dkek));
        Assert.Equal(2048, material.KeySize);
        Assert.Equal(file.Contains("crt"), material.IsCrt);
        Assert.True(ScHsmPublicKeyCheck.MatchesPublicKey(material, spki));
        Assert.False(ScHsmPublicKeyCheck.MatchesPublicKey(material, Vectors.Read("ec256.pub.der")));
        Assert.False(ScHsmPublicKeyCheck.MatchesPublicKey(material,
            Vectors.Read(file.Contains("crt") ? "rsa2048.pub.der" : "offline-rsa2048-crt.pub.der")));

        using var rsa = material.ToRsa();
        using var verifier = RSA.Create();
        verifier.ImportSubjectPublicKeyInfo(spki, out _);
        var msg = Vectors.Read("msg.txt");
        var signature = rsa.SignData(msg, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        Assert.True(verifier.VerifyData(msg, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
    }

    [Fact]
    public void Ec_DecryptsToKeyMatchingPublicKey_AndSigns()
    {
        var spki = Vectors.Read("ec256.pub.der");
        using var material = Assert.IsType<ScHsmEcKeyMaterial>(BlobOf("ec256.wky").Decrypt(Dkek));
        Assert.Equal(256, material.KeySize);
        Assert.Equal(0, material.A.Length);  // the firmware omits a for NIST curves
        Assert.Equal("P-256", material.Curve!.Name);
        Assert.True(ScHsmPublicKeyCheck.MatchesPublicKey(material, spki));
        Assert.False(ScHsmPublicKeyCheck.MatchesPublicKey(material, Vectors.Read("rsa2048.pub.der")));

        using var ecdsa = material.ToECDsa();
        using var verifier = ECDsa.Create();
        verifier.ImportSubjectPublicKeyInfo(spki, out _);
        var msg = Vectors.Read("msg.txt");
        Assert.True(verifier.VerifyData(msg, ecdsa.SignData(msg, HashAlgorithmName.SHA256), HashAlgorithmName.SHA256));
    }

    [Fact]
    public void Aes_DecryptsToTheDevicesKey()
    {
        using var material = Assert.IsType<ScHsmAesKeyMaterial>(BlobOf("aes256.wky").Decrypt(Dkek));
        Assert.Equal(32, material.KeySize);
        Assert.Equal(32, material.Key.Length);
        using var aes = Aes.Create();
        aes.Key = material.Key.UnsafeArray;
        var encrypted = aes.EncryptCbc(new byte[32], new byte[16], PaddingMode.None);
        Assert.Equal("add4a43267efce014b2ee2b5aafb4db54734125e53242fc5f936cb1919e8d2a3",
            Convert.ToHexString(encrypted).ToLowerInvariant());
    }

    [Theory]
    [MemberData(nameof(WrappedKeyFiles))]
    public void DecryptThenBuild_WithSameRandom_IsByteIdentical(string file)
    {
        var blob = BlobOf(file);
        var random = new byte[8];
        using var material = blob.Decrypt(Dkek, random);
        var rebuilt = ScHsmKeyBlob.Build(Dkek, material, blob.AllowedAlgorithms, random, blob.DefaultAlgorithm,
            blob.AccessConditions, blob.KeyOid);
        Assert.Equal(blob.ToArray(), rebuilt.ToArray());
        // The firmware's defaults give the same header for these blobs.
        Assert.Equal(blob.ToArray(), ScHsmKeyBlob.Build(Dkek, material, randomPrefix: random).ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rsa_FromDotNetKey_RoundTrips(bool crt)
    {
        using var rsa = RSA.Create(2048);
        using var material = ScHsmRsaKeyMaterial.FromRsa(rsa, crt);
        var blob = ScHsmKeyBlob.Build(Dkek, material);
        Assert.Equal(crt ? ScHsmKeyType.RsaCrt : ScHsmKeyType.Rsa, blob.KeyType);
        Assert.Equal(27, blob.HeaderLength);
        using var back = blob.Decrypt(Dkek);
        Assert.True(ScHsmPublicKeyCheck.MatchesPublicKey(back, rsa.ExportSubjectPublicKeyInfo()));
        using var restored = ((ScHsmRsaKeyMaterial)back).ToRsa();
        Assert.Equal(rsa.ExportSubjectPublicKeyInfo(), restored.ExportSubjectPublicKeyInfo());
        var p1 = rsa.ExportParameters(true);
        var p2 = restored.ExportParameters(true);
        // The same two primes; without CRT they are recovered larger first, and a generated key may
        // hold them either way (.NET's P > Q; Mono's RSA either).
        Assert.True((p1.P!.SequenceEqual(p2.P!) && p1.Q!.SequenceEqual(p2.Q!)) || (p1.P!.SequenceEqual(p2.Q!) && p1.Q!.SequenceEqual(p2.P!)),
            "the restored key's primes are not the original's");
    }

    [Theory] // a row is skipped, with the reason, where the platform's crypto library lacks the curve
    [CurveData("P-256", 256)]
    [CurveData("P-384", 384)]
    [CurveData("P-521", 528)]
    [CurveData("secp256k1", 256)]
    [CurveData("brainpoolP256r1", 256)]
    [CurveData("brainpoolP384r1", 384)]
    [CurveData("brainpoolP512r1", 512)]
    public void Ec_FromDotNetKey_RoundTrips(string curveName, int keySize)
    {
        var curve = ScHsmCurve.FromName(curveName)!;
        using (var ecdsa = ECDsa.Create(curve.ToECCurve()))
        {
            using var material = ScHsmEcKeyMaterial.FromECAlgorithm(ecdsa);
            Assert.Equal(keySize, material.KeySize);
            Assert.Equal(curve.FirmwareOmitsA, material.A.IsEmpty);
            var blob = ScHsmKeyBlob.Build(Dkek, material);
            using var back = (ScHsmEcKeyMaterial)blob.Decrypt(Dkek);
            Assert.Same(curve, back.Curve);
            var spki = ecdsa.ExportSubjectPublicKeyInfo();
            Assert.True(ScHsmPublicKeyCheck.MatchesPublicKey(back, spki));
            using var restored = back.ToECDsa();
            Assert.Equal(spki, restored.ExportSubjectPublicKeyInfo());
        }
    }

    [Theory]
    [InlineData(16)]
    [InlineData(24)]
    [InlineData(32)]
    [InlineData(64)]
    public void Aes_FromKey_RoundTrips(int length)
    {
        var key = RandomNumberGenerator.GetBytes(length);
        using var material = ScHsmAesKeyMaterial.FromKey(key);
        var blob = ScHsmKeyBlob.Build(Dkek, material);
        Assert.Equal(25, blob.HeaderLength);
        Assert.Equal(ScHsmKeyType.Aes, blob.KeyType);
        using var back = Assert.IsType<ScHsmAesKeyMaterial>(blob.Decrypt(Dkek));
        Assert.Equal(key, back.Key.Span.ToArray());
        Assert.False(ScHsmPublicKeyCheck.MatchesPublicKey(back, Vectors.Read("ec256.pub.der")));
    }

    [Fact]
    public void Build_PadsOnlyWhenNotAligned()
    {
        // 8 random + 2 size + 16 key = 26 -> 32 with 80 00..; 8 + 2 + 22-byte fields would be aligned.
        using var material = ScHsmAesKeyMaterial.FromKey(new byte[16]);
        var blob = ScHsmKeyBlob.Build(Dkek, material);
        Assert.Equal(32, blob.Ciphertext.Length);
        using var aes = Aes.Create();
        aes.Key = SHA256.HashData([.. Dkek, 0, 0, 0, 1]);
        var plain = aes.DecryptCbc(blob.Ciphertext, new byte[16], PaddingMode.None);
        Assert.Equal(0x80, plain[26]);
        Assert.All(plain[27..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void Parse_RejectsGarbage()
    {
        Assert.Throws<ScHsmFormatException>(() => ScHsmKeyBlob.Parse(new byte[10]));
        var bytes = BlobOf("aes256.wky").ToArray();
        bytes[8] = 0x07;
        Assert.Throws<ScHsmFormatException>(() => ScHsmKeyBlob.Parse(bytes));
        var truncated = BlobOf("aes256.wky").ToArray()[..^1];
        Assert.Throws<ScHsmFormatException>(() => ScHsmKeyBlob.Parse(truncated));
    }

    [Fact]
    public void KeyCheckValue_OfVectorDkek()
    {
        Assert.Equal(Vectors.KcvHex, KeyCheckValue.ToHex(KeyCheckValue.Compute(Dkek)));
    }
}
