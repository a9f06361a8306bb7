using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Xunit.Abstractions;
using PicoHsm.Backup;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Backup;

public class WrappedKeyFileTests
{
    private readonly ITestOutputHelper _out;
    public WrappedKeyFileTests(ITestOutputHelper output) => _out = output;

    [Fact]
    public void EcKeyRoundTrips()
    {
        var original = BackupSamples.Ec();
        byte[] bytes = original.ToBytes();
        var read = WrappedKeyFile.Read(bytes, "root.pkb");
        Assert.Equal(original.Created, read.Created);
        Assert.Equal(original.ToolVersion, read.ToolVersion);
        Assert.Equal(original.SourceToken, read.SourceToken);
        Assert.Equal(KeyClass.Private, read.KeyClass);
        Assert.Equal(KeyKind.Ec, read.KeyKind);
        Assert.Equal(256, read.SizeBits);
        Assert.Equal("secp256r1", read.CurveName);
        Assert.Equal(original.CurveParameters, read.CurveParameters);
        Assert.Equal(original.Id, read.Id);
        Assert.Equal("01a0", read.IdHex);
        Assert.Equal(original.Label, read.Label);
        Assert.Equal(original.Attributes.OrderBy(a => a.Key), read.Attributes.OrderBy(a => a.Key));
        Assert.Equal("CKM_AES_KEY_WRAP_PAD", read.WrapMechanism);
        Assert.Null(read.WrapMechanismParameters);
        Assert.Equal(original.WrappingKeyKcv, read.WrappingKeyKcv);
        Assert.Equal(original.WrappedKey, read.WrappedKey);
        Assert.Equal(original.PublicKeyInfo, read.PublicKeyInfo);
        Assert.Equal(original.Certificate, read.Certificate);
        Assert.Equal("Root CA", read.CertificateLabel);
        Assert.Equal("root.pkb", read.SourceName);
        Assert.Equal(bytes, read.ToBytes());
        Assert.Equal(Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant(), read.Sha256);
        // the public key really is the key's
        using var ec = ECDsa.Create();
        ec.ImportSubjectPublicKeyInfo(read.PublicKeyInfo, out _);
    }

    [Fact]
    public void SecretKeyRoundTrips()
    {
        var original = BackupSamples.Aes();
        byte[] bytes = original.ToBytes();
        var read = WrappedKeyFile.Read(bytes, null);
        Assert.Equal(KeyKind.Aes, read.KeyKind);
        Assert.Empty(read.Id);
        Assert.Equal("", read.Label);
        Assert.Null(read.CurveName);
        Assert.Null(read.PublicKeyInfo);
        Assert.Null(read.Certificate);
        Assert.Equal(bytes, read.ToBytes());
    }

    [Fact]
    public void TheFileIsReadableJsonWithTheDigestLast()
    {
        string text = Encoding.UTF8.GetString(BackupSamples.Ec().ToBytes());
        _out.WriteLine(text);
        Assert.StartsWith("{\n  \"format\": \"picohsm-wrapped-key\",\n  \"version\": 1,\n  \"created\": \"2026-11-27T12:34:56.789Z\",\n", text);
        Assert.Matches("\n  \"documentSha256\": \"[0-9a-f]{64}\"\n}\n$", text);
        Assert.DoesNotContain("\r", text);
        Assert.Contains("\"label\": \"Root CA key \\\"2026\\\" \u00e9\"", text); // UTF-8, only JSON-required escapes
        using var doc = System.Text.Json.JsonDocument.Parse(text); // plain JSON tools can read it
        Assert.Equal("CKM_AES_KEY_WRAP_PAD", doc.RootElement.GetProperty("wrap").GetProperty("mechanism").GetString());
    }

    [Fact]
    public void EverySingleByteChangeIsDetected_Exhaustive()
    {
        // Every position, every one of the 255 other byte values.
        var sw = Stopwatch.StartNew();
        byte[] original = BackupSamples.Ec().ToBytes();
        var undetected = new ConcurrentBag<string>();
        var byReason = new ConcurrentDictionary<BackupFileReason, int>();
        Parallel.For(0, original.Length, i =>
        {
            byte[] b = (byte[])original.Clone();
            for (int v = 0; v < 256; v++)
            {
                if (v == original[i]) continue;
                b[i] = (byte)v;
                try
                {
                    WrappedKeyFile.Read(b, "x.pkb");
                    undetected.Add($"byte {i}: 0x{original[i]:x2} -> 0x{v:x2}");
                }
                catch (BackupFileException ex) { byReason.AddOrUpdate(ex.Reason, 1, (_, n) => n + 1); }
                catch (Exception ex) { undetected.Add($"byte {i} -> 0x{v:x2}: unexpected {ex.GetType().Name}"); }
            }
        });
        _out.WriteLine($"{original.Length} bytes x 255 values in {sw.Elapsed.TotalSeconds:F1} s: " +
            string.Join(", ", byReason.OrderBy(r => r.Key).Select(r => $"{r.Key} {r.Value}")));
        Assert.Empty(undetected);
        Assert.Equal(original.Length * 255, byReason.Values.Sum());
    }

    [Fact]
    public void TruncationAndAppendedBytesAreDetected()
    {
        byte[] original = BackupSamples.Aes().ToBytes();
        for (int len = 0; len < original.Length; len++)
            Assert.Throws<BackupFileException>(() => WrappedKeyFile.Read(original[..len], null));
        Assert.Throws<BackupFileException>(() => WrappedKeyFile.Read([.. original, (byte)'\n'], null));
    }

    [Fact]
    public void ATextEditorsLineEndsAreReportedAsAChange()
    {
        string text = Encoding.UTF8.GetString(BackupSamples.Aes().ToBytes());
        var ex = Assert.Throws<BackupFileException>(() => WrappedKeyFile.Read(Encoding.UTF8.GetBytes(text.Replace("\n", "\r\n")), "edited.pkb"));
        Assert.Contains("edited.pkb", ex.Message);
        Assert.Contains("CR LF", ex.Message);
    }

    [Fact]
    public void AnEditWithARecomputedDigestIsStillCheckedForConsistency()
    {
        string text = Encoding.UTF8.GetString(BackupSamples.Ec().ToBytes());
        // an EC private key claimed to be AES
        var ex = Assert.Throws<BackupFileException>(() => WrappedKeyFile.Read(BackupSamples.Redigest(text.Replace("\"kind\": \"Ec\"", "\"kind\": \"Aes\"")), "k.pkb"));
        Assert.Equal(BackupFileReason.Corrupt, ex.Reason);
        // unknown attribute
        Assert.Equal(BackupFileReason.Corrupt, Assert.Throws<BackupFileException>(() =>
            WrappedKeyFile.Read(BackupSamples.Redigest(text.Replace("\"sign\": true", "\"sing\": true")), null)).Reason);
        // a non-canonical but equivalent form (extra space)
        Assert.Equal(BackupFileReason.Corrupt, Assert.Throws<BackupFileException>(() =>
            WrappedKeyFile.Read(BackupSamples.Redigest(text.Replace("\"sizeBits\": 256", "\"sizeBits\":  256")), null)).Reason);
        // a duplicated member
        Assert.Equal(BackupFileReason.Corrupt, Assert.Throws<BackupFileException>(() =>
            WrappedKeyFile.Read(BackupSamples.Redigest(text.Replace("\"sizeBits\": 256,", "\"sizeBits\": 256,\n    \"sizeBits\": 384,")), null)).Reason);
        // the digest itself changed
        Assert.Equal(BackupFileReason.DigestMismatch, Assert.Throws<BackupFileException>(() =>
            WrappedKeyFile.Read(Encoding.UTF8.GetBytes(text.Replace("\"sizeBits\": 256", "\"sizeBits\": 384")), null)).Reason);
    }

    [Fact]
    public void OtherFilesAndVersionsAreNamedAsSuch()
    {
        Assert.Equal(BackupFileReason.NotABackup, Assert.Throws<BackupFileException>(() => WrappedKeyFile.Read([], null)).Reason);
        Assert.Equal(BackupFileReason.NotABackup, Assert.Throws<BackupFileException>(() => WrappedKeyFile.Read("{\"a\":1}"u8.ToArray(), null)).Reason);
        Assert.Equal(BackupFileReason.NotABackup, Assert.Throws<BackupFileException>(() => WrappedKeyFile.Read(RandomNumberGenerator.GetBytes(100), null)).Reason);
        string text = Encoding.UTF8.GetString(BackupSamples.Aes().ToBytes());
        var ex = Assert.Throws<BackupFileException>(() => WrappedKeyFile.Read(BackupSamples.Redigest(text.Replace("\"version\": 1,", "\"version\": 3,")), "new.pkb"));
        Assert.Equal(BackupFileReason.UnsupportedVersion, ex.Reason);
        Assert.Contains("version 3", ex.Message);
        // A version 2 file must carry its authentication tag; a version 1 file must not.
        Assert.Equal(BackupFileReason.Corrupt, Assert.Throws<BackupFileException>(() =>
            WrappedKeyFile.Read(BackupSamples.Redigest(text.Replace("\"version\": 1,", "\"version\": 2,")), null)).Reason);
        Assert.Equal(BackupFileReason.NotABackup, Assert.Throws<BackupFileException>(() =>
            WrappedKeyFile.Read(BackupSamples.Redigest(text.Replace("picohsm-wrapped-key", "picohsm-backup-manifest")), null)).Reason);
    }

    [Fact]
    public void InconsistentFilesAreNotWritten()
    {
        var ec = BackupSamples.Ec();
        Assert.Throws<ArgumentException>(() => new WrappedKeyFile
        {
            Created = ec.Created, ToolVersion = ec.ToolVersion, SourceToken = ec.SourceToken, KeyClass = KeyClass.Private,
            KeyKind = KeyKind.Ec, SizeBits = 256, CurveName = null, Id = ec.Id, Label = ec.Label, Attributes = ec.Attributes,
            WrapMechanism = ec.WrapMechanism, WrappingKeyKcv = ec.WrappingKeyKcv, WrappedKey = ec.WrappedKey,
        }.ToBytes());
        var aes = BackupSamples.Aes();
        Assert.Throws<ArgumentException>(() => new WrappedKeyFile
        {
            Created = aes.Created, ToolVersion = aes.ToolVersion, SourceToken = aes.SourceToken, KeyClass = KeyClass.Secret,
            KeyKind = KeyKind.Aes, SizeBits = 100, Id = aes.Id, Label = aes.Label, Attributes = aes.Attributes,
            WrapMechanism = aes.WrapMechanism, WrappingKeyKcv = aes.WrappingKeyKcv, WrappedKey = aes.WrappedKey,
        }.ToBytes());
        Assert.Throws<ArgumentException>(() => new WrappedKeyFile
        {
            Created = aes.Created, ToolVersion = aes.ToolVersion, SourceToken = aes.SourceToken, KeyClass = KeyClass.Secret,
            KeyKind = KeyKind.Aes, SizeBits = 128, Id = aes.Id, Label = aes.Label, Attributes = aes.Attributes,
            WrapMechanism = "CKM AES", WrappingKeyKcv = aes.WrappingKeyKcv, WrappedKey = aes.WrappedKey,
        }.ToBytes());
        Assert.Throws<ArgumentException>(() => new WrappedKeyFile
        {
            Created = aes.Created, ToolVersion = aes.ToolVersion, SourceToken = aes.SourceToken, KeyClass = KeyClass.Secret,
            KeyKind = KeyKind.Aes, SizeBits = 128, Id = aes.Id, Label = aes.Label, Attributes = aes.Attributes,
            WrapMechanism = aes.WrapMechanism, WrappingKeyKcv = new byte[3], WrappedKey = aes.WrappedKey,
        }.ToBytes());
    }
}
