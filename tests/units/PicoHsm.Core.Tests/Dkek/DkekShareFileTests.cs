using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using Xunit.Abstractions;
using PicoHsm.Common;
using PicoHsm.Dkek;

namespace PicoHsm.Core.Tests.Dkek;

/// <summary>One share file made once (one PBKDF2 run at 600,000 iterations) and shared by the tests.</summary>
public sealed class ShareFileFixture
{
    public const string Password = "correct horse battery staple";
    public byte[] Share { get; } = RandomNumberGenerator.GetBytes(32);
    public byte[] Kcv { get; } = KeyCheckValue.Compute(RandomNumberGenerator.GetBytes(32));
    public Guid SplitId { get; } = Guid.NewGuid();
    public DateTimeOffset Created { get; } = new(2026, 11, 27, 12, 0, 0, 123, TimeSpan.Zero);
    public byte[] Bytes { get; }

    public ShareFileFixture()
    {
        Bytes = DkekShareFile.Create(Share, 2, 3, 5, Kcv, SplitId, "CA root DKEK", Password, Created).ToBytes();
    }
}

public class DkekShareFileTests : IClassFixture<ShareFileFixture>
{
    private readonly ShareFileFixture _f;
    private readonly ITestOutputHelper _out;

    public DkekShareFileTests(ShareFileFixture f, ITestOutputHelper output) { _f = f; _out = output; }

    [Fact]
    public void RoundTrip()
    {
        var file = DkekShareFile.Read(_f.Bytes, "alice.dkekshare");
        Assert.Equal(2, file.Index);
        Assert.Equal(3, file.Threshold);
        Assert.Equal(5, file.ShareCount);
        Assert.Equal(_f.Kcv, file.Kcv);
        Assert.Equal(_f.SplitId, file.SplitId);
        Assert.Equal("CA root DKEK", file.Label);
        Assert.Equal(_f.Created, file.Created);
        Assert.Equal(TimeSpan.Zero, file.Created.Offset);
        Assert.Equal("alice.dkekshare", file.SourceName);
        Assert.Equal($"dkek-{file.KcvHex}-share-2-of-5.dkekshare", file.SuggestedFileName);
        Assert.Equal(_f.Bytes, file.ToBytes());
        using var share = file.Decrypt(ShareFileFixture.Password);
        Assert.Equal(_f.Share, share.Span.ToArray());
    }

    [Fact]
    public void HeaderLayoutIsAsDocumented()
    {
        byte[] b = _f.Bytes;
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'D', (byte)'K', (byte)'S', 0x0D, 0x0A, 0x1A }, b[..8]);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(8)));
#if NET
        Assert.Equal(_f.SplitId, new Guid(b.AsSpan(10, 16), bigEndian: true));
#else
        Assert.Equal(_f.SplitId, BclExtensions.GuidFromBytes(b.AsSpan(10, 16), bigEndian: true));
#endif
        Assert.Equal(new byte[] { 2, 3, 5 }, b[26..29]);
        Assert.Equal(_f.Kcv, b[29..37]);
        Assert.Equal(_f.Created.ToUnixTimeMilliseconds(), BinaryPrimitives.ReadInt64BigEndian(b.AsSpan(37)));
        Assert.Equal(1, b[45]);
        Assert.Equal(16, b[50]);
        Assert.Equal(1, b[51 + 16]);
        int labelLength = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(51 + 16 + 1 + 12));
        Assert.Equal("CA root DKEK".Length, labelLength);
        Assert.Equal(51 + 16 + 1 + 12 + 2 + labelLength + 32 + 16, b.Length);
    }

    [Fact]
    public void KdfParametersAreAtLeastTheMinimum()
    {
        uint iterations = BinaryPrimitives.ReadUInt32BigEndian(_f.Bytes.AsSpan(46));
        Assert.True(iterations >= 600_000, $"iterations in the file: {iterations}");
        var file = DkekShareFile.Read(_f.Bytes, null);
        Assert.Equal((int)iterations, file.Iterations);
        Assert.True(file.Salt.Length >= 16);
        Assert.Equal("PBKDF2-HMAC-SHA256", file.Kdf);
    }

    [Theory]
    [InlineData(599_999)]
    [InlineData(100_000)]
    [InlineData(1)]
    [InlineData(0)]
    public void AFileClaimingFewerIterationsIsRefused_EvenWhenItsTagIsValid(int iterations)
    {
        // Build a file that is cryptographically consistent at the weak count (as an attacker who
        // knows the password, or an old tool, could): it must still be refused, before any KDF run.
        byte[] b = (byte[])_f.Bytes.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(46), (uint)iterations);
        if (iterations > 0 && iterations < 2000)
            ReEncrypt(b, iterations);
        var ex = Assert.Throws<DkekShareFileException>(() => DkekShareFile.Read(b, "weak.dkekshare"));
        Assert.Equal(DkekShareFileReason.WeakKdf, ex.Reason);
        Assert.Contains("weak.dkekshare", ex.Message);
    }

    [Fact]
    public void ASaltShorterThan16BytesIsRefused()
    {
        var list = _f.Bytes.ToList();
        list[50] = 15;
        list.RemoveAt(51);
        var ex = Assert.Throws<DkekShareFileException>(() => DkekShareFile.Read(list.ToArray(), null));
        Assert.Equal(DkekShareFileReason.WeakKdf, ex.Reason);
    }

    [Fact]
    public void CreateRefusesWeakParameters()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            DkekShareFile.Create(_f.Share, 1, 2, 3, _f.Kcv, Guid.NewGuid(), "x", ShareFileFixture.Password, iterations: 599_999));
        Assert.Throws<ArgumentException>(() =>
            DkekShareFile.Create(_f.Share, 1, 2, 3, _f.Kcv, Guid.NewGuid(), "x", "short"));
        Assert.Throws<ArgumentException>(() =>
            DkekShareFile.Create(_f.Share, 1, 2, 3, new byte[8], Guid.NewGuid(), "x", ShareFileFixture.Password));
        Assert.Throws<ArgumentException>(() =>
            DkekShareFile.Create(_f.Share, 1, 2, 3, _f.Kcv, Guid.Empty, "x", ShareFileFixture.Password));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            DkekShareFile.Create(_f.Share, 4, 2, 3, _f.Kcv, Guid.NewGuid(), "x", ShareFileFixture.Password));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            DkekShareFile.Create(_f.Share, 1, 4, 3, _f.Kcv, Guid.NewGuid(), "x", ShareFileFixture.Password));
        Assert.Throws<ArgumentException>(() =>
            DkekShareFile.Create(new byte[31], 1, 2, 3, _f.Kcv, Guid.NewGuid(), "x", ShareFileFixture.Password));
    }

    [Fact]
    public void WrongPasswordIsReportedWithTheFileNameAndWithoutThePassword()
    {
        var file = DkekShareFile.Read(_f.Bytes, "bob.dkekshare");
        const string wrong = "Tr0ub4dor&3-not-it";
        var ex = Assert.Throws<DkekShareFileException>(() => file.Decrypt(wrong));
        Assert.Equal(DkekShareFileReason.WrongPasswordOrTampered, ex.Reason);
        Assert.Contains("bob.dkekshare", ex.Message);
        Assert.DoesNotContain(wrong, ex.ToString());
        Assert.DoesNotContain(ShareFileFixture.Password, ex.ToString());
        Assert.Equal("bob.dkekshare", ex.SourceName);
    }

    /// <summary>
    /// PICOHSM_KDF_FLIPS = N: of the changes that pass the structure checks (each needs a 600,000-round
    /// KDF to be refused), only N spread evenly over the file are decrypted; every change is still read.
    /// build.ps1's Mono run sets it (Mono's managed HMAC makes each KDF several times dearer); unset or 0: all.
    /// </summary>
    private static int KdfFlipLimit => int.TryParse(Environment.GetEnvironmentVariable("PICOHSM_KDF_FLIPS"), out int n) && n > 0 ? n : int.MaxValue;

    [Fact]
    public void EverySingleByteChangeIsDetected_Exhaustive()
    {
        // Each position is XORed with 0xFF and must be refused: by the structure checks (no KDF run)
        // or by the GCM tag (one 600,000-iteration PBKDF2 run each, ~0.3 s). The integer fields are
        // also tried with a low-bit flip (0x01), which stays in range more often. Positions run in
        // parallel; the elapsed time is written to the test output (about 25 s on 2 cores).
        var sw = Stopwatch.StartNew();
        byte[] original = _f.Bytes;
        var failures = new ConcurrentBag<string>();
        var reasons = new ConcurrentDictionary<(int, byte), DkekShareFileReason>();
        int labelLengthAt = 51 + original[50] + 1 + 12;
        int[] integerFields = [8, 9, 26, 27, 28, 45, 46, 47, 48, 49, 50, 51 + original[50], labelLengthAt, labelLengthAt + 1];
        var work = Enumerable.Range(0, original.Length).Select(i => (i, (byte)0xFF))
            .Concat(integerFields.Select(i => (i, (byte)0x01))).ToArray();
        // Reading is cheap: every change is read; the ones the structure checks let through need the KDF.
        var readable = new List<((int, byte) Change, DkekShareFile File)>();
        foreach (var (i, mask) in work)
        {
            byte[] b = (byte[])original.Clone();
            b[i] ^= mask;
            try { readable.Add(((i, mask), DkekShareFile.Read(b, "flip.dkekshare"))); }
            catch (DkekShareFileException ex) { reasons[(i, mask)] = ex.Reason; }
            catch (Exception ex) { failures.Add($"byte {i} ^ 0x{mask:x2}: unexpected {ex.GetType().Name}: {ex.Message}"); }
        }
        int limit = KdfFlipLimit;
        var decrypted = readable.Count <= limit ? readable
            : Enumerable.Range(0, limit).Select(k => readable[(int)((long)k * (readable.Count - 1) / Math.Max(1, limit - 1))]).Distinct().ToList();
        Parallel.ForEach(decrypted, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, item =>
        {
            var (i, mask) = item.Change;
            try
            {
                using var share = item.File.Decrypt(ShareFileFixture.Password);
                failures.Add($"byte {i} ^ 0x{mask:x2} was not detected");
            }
            catch (DkekShareFileException ex) { reasons[(i, mask)] = ex.Reason; }
            catch (Exception ex) { failures.Add($"byte {i} ^ 0x{mask:x2}: unexpected {ex.GetType().Name}: {ex.Message}"); }
        });
        _out.WriteLine($"{work.Length} changes over {original.Length} bytes, {decrypted.Count} of {readable.Count} KDF runs, {sw.Elapsed.TotalSeconds:F1} s");
        Assert.Empty(failures);
        Assert.Equal(work.Length - (readable.Count - decrypted.Count), reasons.Count);
        // structural fields are refused without the password
        for (int i = 0; i < 8; i++) Assert.Equal(DkekShareFileReason.NotAShareFile, reasons[(i, 0xFF)]);
        Assert.Equal(DkekShareFileReason.UnsupportedVersion, reasons[(9, 0x01)]);
        Assert.Equal(DkekShareFileReason.WeakKdf, reasons[(48, 0x01)]); // 600,000 -> 534,464
        // the ciphertext and tag are caught by GCM (those decrypted, all of them without PICOHSM_KDF_FLIPS)
        for (int i = original.Length - 48; i < original.Length; i++)
            if (limit == int.MaxValue || reasons.ContainsKey((i, 0xFF)))
                Assert.Equal(DkekShareFileReason.WrongPasswordOrTampered, reasons[(i, 0xFF)]);
    }

    [Fact]
    public void TruncatedOrExtendedFilesAreRefusedWithoutAPassword()
    {
        byte[] b = _f.Bytes;
        for (int len = 0; len < b.Length; len++)
        {
            var ex = Assert.Throws<DkekShareFileException>(() => DkekShareFile.Read(b[..len], null));
            Assert.Equal(len < 8 ? DkekShareFileReason.NotAShareFile : DkekShareFileReason.Corrupt, ex.Reason);
        }
        var longer = Assert.Throws<DkekShareFileException>(() => DkekShareFile.Read([.. b, 0], null));
        Assert.Equal(DkekShareFileReason.Corrupt, longer.Reason);
    }

    [Fact]
    public void OtherFilesAndNewerVersionsAreNamedAsSuch()
    {
        Assert.Equal(DkekShareFileReason.NotAShareFile,
            Assert.Throws<DkekShareFileException>(() => DkekShareFile.Read("{\"format\":1}"u8.ToArray(), "x.json")).Reason);
        byte[] b = (byte[])_f.Bytes.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(8), 2);
        var ex = Assert.Throws<DkekShareFileException>(() => DkekShareFile.Read(b, "future.dkekshare"));
        Assert.Equal(DkekShareFileReason.UnsupportedVersion, ex.Reason);
        Assert.Contains("version 2", ex.Message);
    }

    [Fact]
    public void PasswordsAreNormalizedToNfc()
    {
        string composed = "Caf\u00e9-au-lait-\u00e9t\u00e9";
        string decomposed = composed.Normalize(System.Text.NormalizationForm.FormD);
        Assert.NotEqual(composed, decomposed);
        var file = DkekShareFile.Create(_f.Share, 1, 2, 2, _f.Kcv, Guid.NewGuid(), "nfc", composed);
        using var share = DkekShareFile.Read(file.ToBytes(), null).Decrypt(decomposed);
        Assert.Equal(_f.Share, share.Span.ToArray());
    }

    private void ReEncrypt(byte[] b, int iterations)
    {
        int saltLength = b[50];
        int p = 51 + saltLength + 1;
        byte[] nonce = b[p..(p + 12)];
        int labelLength = BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan(p + 12));
        int header = p + 12 + 2 + labelLength;
        using var key = DkekShareFile.DeriveKey(ShareFileFixture.Password, b.AsSpan(51, saltLength), iterations);
        using var gcm = new AesGcm(key.Span, 16);
        gcm.Encrypt(nonce, _f.Share, b.AsSpan(header, 32), b.AsSpan(header + 32, 16), b.AsSpan(0, header));
    }
}
