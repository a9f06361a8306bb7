using System.Text;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Backup;

public sealed class BackupManifestTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "manifest-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Writes two key files and their manifest, as a backup command would.</summary>
    private BackupManifest WriteBackup()
    {
        byte[] ec = BackupSamples.Ec().ToBytes();
        byte[] aes = BackupSamples.Aes().ToBytes();
        AtomicFile.WriteAllBytes(Path.Combine(_dir, "01a0.pkb"), ec, overwrite: false);
        AtomicFile.WriteAllBytes(Path.Combine(_dir, "aes-1.pkb"), aes, overwrite: false);
        var manifest = new BackupManifest
        {
            Created = new DateTimeOffset(2026, 11, 27, 13, 0, 0, TimeSpan.Zero),
            ToolVersion = "PicoHsm 0.1.0",
            SourceToken = BackupSamples.Token,
            DkekKcv = BackupSamples.Kcv,
            Entries = [BackupManifestEntry.For("01a0.pkb", ec), BackupManifestEntry.For("aes-1.pkb", aes)],
            NotExported = [new NotExportedKey("02", "old signing key", KeyKind.Rsa, "CKA_EXTRACTABLE is false")],
        };
        AtomicFile.WriteAllBytes(Path.Combine(_dir, BackupManifest.FileName), manifest.ToBytes(), overwrite: false);
        return manifest;
    }

    private BackupManifest ReadBack() =>
        BackupManifest.Read(File.ReadAllBytes(Path.Combine(_dir, BackupManifest.FileName)), BackupManifest.FileName);

    [Fact]
    public void RoundTripsAndVerifiesClean()
    {
        var written = WriteBackup();
        var read = ReadBack();
        Assert.Equal(written.Entries, read.Entries);
        Assert.Equal(written.NotExported, read.NotExported);
        Assert.Equal(written.Created, read.Created);
        Assert.Equal(written.SourceToken, read.SourceToken);
        Assert.Equal("0123456789abcdef", read.DkekKcvHex);
        var ec = read.Entries[0];
        Assert.Equal(("01a0", KeyKind.Ec, 256, "secp256r1", "0123456789abcdef"), (ec.IdHex, ec.KeyKind, ec.SizeBits, ec.CurveName, ec.KcvHex));
        Assert.Equal(WrappedKeyFile.Read(File.ReadAllBytes(Path.Combine(_dir, "01a0.pkb")), null).Sha256, ec.Sha256);
        Assert.Empty(read.Verify(_dir));
    }

    [Fact]
    public void AMissingFileIsAnError()
    {
        WriteBackup();
        File.Delete(Path.Combine(_dir, "aes-1.pkb"));
        var p = Assert.Single(ReadBack().Verify(_dir));
        Assert.Equal((ManifestProblemSeverity.Error, ManifestProblemKind.MissingFile, "aes-1.pkb"), (p.Severity, p.Kind, p.FileName));
    }

    [Fact]
    public void AChangedFileIsAnError()
    {
        WriteBackup();
        string path = Path.Combine(_dir, "01a0.pkb");
        byte[] b = File.ReadAllBytes(path);
        b[200] ^= 0x20;
        File.WriteAllBytes(path, b);
        var p = Assert.Single(ReadBack().Verify(_dir));
        Assert.Equal((ManifestProblemSeverity.Error, ManifestProblemKind.DigestMismatch), (p.Severity, p.Kind));
        Assert.Contains("01a0.pkb", p.Message);
    }

    [Fact]
    public void AnUnlistedFileIsAWarning()
    {
        WriteBackup();
        File.WriteAllText(Path.Combine(_dir, ".01a0.pkb.3f2a.tmp"), "leftover");
        var p = Assert.Single(ReadBack().Verify(_dir));
        Assert.Equal((ManifestProblemSeverity.Warning, ManifestProblemKind.UnlistedFile, ".01a0.pkb.3f2a.tmp"), (p.Severity, p.Kind, p.FileName));
    }

    [Fact]
    public void AnEntryThatDoesNotDescribeItsFileIsAnError()
    {
        var m = WriteBackup();
        var wrong = new BackupManifest
        {
            Created = m.Created, ToolVersion = m.ToolVersion, SourceToken = m.SourceToken, DkekKcv = m.DkekKcv,
            Entries = [m.Entries[0] with { Label = "another key" }, m.Entries[1]], NotExported = m.NotExported,
        };
        var p = Assert.Single(wrong.Verify(_dir));
        Assert.Equal(ManifestProblemKind.EntryMismatch, p.Kind);
    }

    [Fact]
    public void KeysUnderAnotherDkekAreAWarning()
    {
        var m = WriteBackup();
        var other = new BackupManifest
        {
            Created = m.Created, ToolVersion = m.ToolVersion, SourceToken = m.SourceToken, DkekKcv = Convert.FromHexString("1111111111111111"),
            Entries = m.Entries, NotExported = m.NotExported,
        };
        var problems = other.Verify(_dir);
        Assert.Equal(2, problems.Count);
        Assert.All(problems, p => Assert.Equal((ManifestProblemSeverity.Warning, ManifestProblemKind.OtherDkek), (p.Severity, p.Kind)));
    }

    [Theory]
    [InlineData("../escape.pkb")]
    [InlineData("sub/key.pkb")]
    [InlineData("sub\\key.pkb")]
    [InlineData("..")]
    [InlineData("")]
    [InlineData("c:key.pkb")]
    [InlineData("key.pkb.")]
    [InlineData("CON.pkb")]
    [InlineData("manifest.json")]
    [InlineData("MANIFEST.JSON")]
    public void FileNamesMustBePlainAndPortable(string name)
    {
        var m = WriteBackup();
        var bad = new BackupManifest
        {
            Created = m.Created, ToolVersion = m.ToolVersion, SourceToken = m.SourceToken, DkekKcv = m.DkekKcv,
            Entries = [m.Entries[0] with { FileName = name }], NotExported = [],
        };
        Assert.Throws<ArgumentException>(() => bad.ToBytes());
        // and a manifest that says so (digest recomputed) is refused on read
        string text = Encoding.UTF8.GetString(m.ToBytes()).Replace("\"file\": \"01a0.pkb\"", "\"file\": " + System.Text.Json.JsonSerializer.Serialize(name));
        var ex = Assert.Throws<BackupFileException>(() => BackupManifest.Read(BackupSamples.Redigest(text), "m.json"));
        Assert.Equal(BackupFileReason.Corrupt, ex.Reason);
    }

    [Fact]
    public void NamesDifferingOnlyInCaseAreRefused()
    {
        var m = WriteBackup();
        var bad = new BackupManifest
        {
            Created = m.Created, ToolVersion = m.ToolVersion, SourceToken = m.SourceToken, DkekKcv = m.DkekKcv,
            Entries = [m.Entries[0], m.Entries[1] with { FileName = "01A0.pkb" }], NotExported = [],
        };
        Assert.Throws<ArgumentException>(() => bad.ToBytes());
    }

    [Fact]
    public void EverySingleByteChangeToTheManifestIsDetected_Exhaustive()
    {
        byte[] original = WriteBackup().ToBytes();
        int detected = 0;
        var undetected = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, original.Length, i =>
        {
            byte[] b = (byte[])original.Clone();
            for (int v = 0; v < 256; v++)
            {
                if (v == original[i]) continue;
                b[i] = (byte)v;
                try { BackupManifest.Read(b, null); undetected.Add($"byte {i} -> 0x{v:x2}"); }
                catch (BackupFileException) { Interlocked.Increment(ref detected); }
                catch (Exception ex) { undetected.Add($"byte {i} -> 0x{v:x2}: {ex.GetType().Name}"); }
            }
        });
        Assert.Empty(undetected);
        Assert.Equal(original.Length * 255, detected);
    }

    [Fact]
    public void AKeyFileIsNotAManifest()
    {
        var ex = Assert.Throws<BackupFileException>(() => BackupManifest.Read(BackupSamples.Aes().ToBytes(), "key.pkb"));
        Assert.Equal(BackupFileReason.NotABackup, ex.Reason);
        Assert.Contains("manifest", ex.Message);
    }
}
