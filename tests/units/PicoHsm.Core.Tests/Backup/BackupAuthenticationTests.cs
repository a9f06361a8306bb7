using System.Security.Cryptography;
using System.Text;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Backup;

/// <summary>
/// Issue 10, host side: the tag of a format version 2 .pkb covers every field a restore uses (each one
/// changed alone fails it, certificate and its label included), is checked offline with the DKEK from
/// the shares, and is written and read back in the canonical form.
/// </summary>
public sealed class BackupAuthenticationTests
{
    private static readonly byte[] Dkek = SHA256.HashData("backup authentication test DKEK"u8.ToArray());

    private static WrappedKeyFile Copy(WrappedKeyFile f, string field)
    {
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        byte[] Changed(byte[] x) { var c = (byte[])x.Clone(); c[^1] ^= 1; return c; }
        var attrs = f.Attributes.ToDictionary(a => a.Key, a => a.Value);
        if (field.StartsWith("attr:", StringComparison.Ordinal)) { string n = field[5..]; attrs[n] = !attrs.GetValueOrDefault(n); }
        if (field == "attr-removed") attrs.Remove(KeyAttributeNames.Sign);
        var c = new WrappedKeyFile
        {
            Created = f.Created, ToolVersion = f.ToolVersion, SourceToken = f.SourceToken,
            KeyClass = f.KeyClass, KeyKind = f.KeyKind,
            SizeBits = field == "sizeBits" ? 384 : f.SizeBits,
            CurveName = field == "curve" ? "secp384r1" : f.CurveName,
            CurveParameters = field == "curveParameters" ? Convert.FromHexString("06052B81040022") : f.CurveParameters,
            Id = field == "id" ? new byte[] { 0x77 } : f.Id,
            Label = field == "label" ? "another label" : f.Label,
            Attributes = attrs,
            WrapMechanism = field == "wrapMechanism" ? "CKM_AES_KEY_WRAP" : f.WrapMechanism,
            WrapMechanismParameters = field == "wrapParameters" ? new byte[] { 1, 2, 3, 4 } : f.WrapMechanismParameters,
            WrappingKeyKcv = field == "kcv" ? Changed(f.WrappingKeyKcv) : f.WrappingKeyKcv,
            WrappedKey = field == "wrappedKey" ? Changed(f.WrappedKey) : f.WrappedKey,
            PublicKeyInfo = field == "publicKey" ? other.ExportSubjectPublicKeyInfo() : f.PublicKeyInfo,
            Certificate = field == "certificate" ? BackupSamples.Ec().Certificate : field == "certificate-removed" ? null : f.Certificate,
            CertificateLabel = field == "certificateLabel" ? "other" : field == "certificate-removed" ? null : f.CertificateLabel,
            // What a forger cannot change into valid: the descriptive fields.
        };
        var a = f.Authentication!;
        var auth = field switch
        {
            "tag" => a with { Tag = Changed(a.Tag) },
            "wrappedMacKey" => a with { WrappedMacKey = Changed(a.WrappedMacKey) },
            "keyWrap" => a with { KeyWrapMechanism = "CKM_AES_KEY_WRAP" },
            _ => a,
        };
        return c.WithAuthentication(auth);
    }

    public static TheoryData<string> Fields() => new()
    {
        "sizeBits", "curve", "curveParameters", "id", "label", "attr:sign", "attr:decrypt", "attr:derive", "attr:extractable",
        "attr:private", "attr:sensitive", "attr:alwaysAuthenticate", "attr:unwrap", "attr-removed", "wrapMechanism", "wrapParameters",
        "kcv", "wrappedKey", "publicKey", "certificate", "certificate-removed", "certificateLabel", "tag", "wrappedMacKey", "keyWrap",
    };

    [Theory]
    [MemberData(nameof(Fields))]
    public void EachRestoreField_ChangedAlone_FailsTheTag_AfterAWriteAndRead(string field)
    {
        var f = BackupSamples.Ec();
        var signed = f.WithAuthentication(BackupAuthentication.CreateOffline(f, Dkek, "CKM_AES_KEY_WRAP_PAD"));
        var read = WrappedKeyFile.Read(signed.ToBytes(), "a.pkb");
        Assert.True(read.IsAuthenticated);
        Assert.True(read.Authentication!.VerifyOffline(read, Dkek));
        // The forger writes the changed file in the exact canonical form: it reads, and only the tag tells.
        var forged = WrappedKeyFile.Read(Copy(read, field).ToBytes(), "forged.pkb");
        Assert.False(forged.Authentication!.VerifyOffline(forged, Dkek));
    }

    [Fact]
    public void TheDescriptiveFields_AreNotCovered_AndTheTagNeedsTheDkek()
    {
        var f = BackupSamples.Aes();
        var signed = f.WithAuthentication(BackupAuthentication.CreateOffline(f, Dkek, "CKM_AES_KEY_WRAP_PAD"));
        string text = Encoding.UTF8.GetString(signed.ToBytes());
        Assert.Contains("\"version\": 2,", text);
        Assert.Contains("\"authentication\": {", text);
        var retitled = WrappedKeyFile.Read(BackupSamples.Redigest(text.Replace("\"tool\": \"PicoHsm 0.1.0\"", "\"tool\": \"PicoHsm 9.9.9\"")), null);
        Assert.True(retitled.Authentication!.VerifyOffline(retitled, Dkek));
        Assert.False(signed.Authentication!.VerifyOffline(signed, SHA256.HashData("another DKEK"u8.ToArray())));
        // RFC 3394 for the MAC key works the same.
        var kw = f.WithAuthentication(BackupAuthentication.CreateOffline(f, Dkek, "CKM_AES_KEY_WRAP"));
        Assert.True(kw.Authentication!.VerifyOffline(kw, Dkek));
    }

    [Fact]
    public void OfflineCheck_VerifiesTheTag_AndRefusesAnEditedFile()
    {
        using var dir = new TempDir();
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var s = BackupSamples.Ec();
        var f = new WrappedKeyFile
        {
            Created = s.Created, ToolVersion = s.ToolVersion, SourceToken = s.SourceToken, KeyClass = s.KeyClass, KeyKind = s.KeyKind,
            SizeBits = 256, CurveName = s.CurveName, CurveParameters = s.CurveParameters, Id = s.Id, Label = "offline",
            Attributes = new Dictionary<string, bool> { [KeyAttributeNames.Sign] = true, [KeyAttributeNames.Decrypt] = false },
            WrapMechanism = "CKM_AES_KEY_WRAP_PAD", WrappingKeyKcv = KeyCheckValue.Compute(Dkek),
            WrappedKey = AesKeyWrap.WrapPad(Dkek, ec.ExportPkcs8PrivateKey()), PublicKeyInfo = ec.ExportSubjectPublicKeyInfo(),
        };
        f = f.WithAuthentication(BackupAuthentication.CreateOffline(f, Dkek, "CKM_AES_KEY_WRAP_PAD"));
        string good = Path.Combine(dir.Path, "good.pkb"), bad = Path.Combine(dir.Path, "bad.pkb"), old = Path.Combine(dir.Path, "old.pkb");
        File.WriteAllBytes(good, f.ToBytes());
        string text = Encoding.UTF8.GetString(f.ToBytes());
        File.WriteAllBytes(bad, BackupSamples.Redigest(text.Replace("\"decrypt\": false", "\"decrypt\": true").Replace("\"label\": \"offline\"", "\"label\": \"new\"")));
        File.WriteAllBytes(old, f.WithAuthentication(null).ToBytes());
        using var dkek = SecretBytes.CopyOf(Dkek);

        var ok = OfflineBackupCheck.Check(good, dkek);
        Assert.True(ok.Passed, string.Join("; ", ok.Problems));
        Assert.Contains("authentication tag verifies", ok.Detail);
        Assert.Empty(ok.Warnings);

        var tampered = OfflineBackupCheck.Check(bad, dkek);
        Assert.False(tampered.Passed);
        Assert.False(tampered.Valid);
        Assert.True(tampered.DkekMatch);
        Assert.Contains(tampered.Problems, p => p.Contains("authentication tag"));

        var v1 = OfflineBackupCheck.Check(old, dkek);
        Assert.True(v1.Passed, string.Join("; ", v1.Problems));
        Assert.Contains(v1.Warnings, w => w.Contains("not authenticated"));
    }

    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("picohsm-auth-").FullName;
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
