using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Dkek;

namespace PicoHsm.Core.Tests.Dkek;

/// <summary>
/// Share files for the combining tests, made and decrypted once: DKEK A split 3-of-5 (twice, so
/// there are two splits of one DKEK) and DKEK B split 2-of-3. About 26 PBKDF2 runs in all.
/// </summary>
public sealed class ShareSetFixture : IDisposable
{
    public static char[] Password(int i, string set = "") => $"custodian-{set}{i}-password".ToCharArray();

    public byte[] DkekA { get; } = RandomNumberGenerator.GetBytes(32);
    public byte[] DkekB { get; } = RandomNumberGenerator.GetBytes(32);
    public IReadOnlyList<DkekShareFile> FilesA { get; }
    public DecryptedDkekShare[] A { get; }      // 3-of-5
    public DecryptedDkekShare[] A2 { get; }     // another 3-of-5 split of the same DKEK
    public DecryptedDkekShare[] B { get; }      // 2-of-3

    public ShareSetFixture()
    {
        FilesA = DkekShareSet.Split(DkekA, 3, 5, "DKEK A", Enumerable.Range(1, 5).Select(i => Password(i)).ToList(), verify: false);
        A = Decrypt(FilesA, "a", "");
        A2 = Decrypt(DkekShareSet.Split(DkekA, 3, 5, "DKEK A again", Enumerable.Range(1, 5).Select(i => Password(i, "x")).ToList(), verify: false), "a2", "x");
        B = Decrypt(DkekShareSet.Split(DkekB, 2, 3, "DKEK B", Enumerable.Range(1, 3).Select(i => Password(i, "b")).ToList(), verify: false), "b", "b");
    }

    private static DecryptedDkekShare[] Decrypt(IReadOnlyList<DkekShareFile> files, string prefix, string set) =>
        files.Select((f, i) => DecryptedDkekShare.Decrypt(
            DkekShareFile.Read(f.ToBytes(), $"{prefix}-{i + 1}.dkekshare"), Password(i + 1, set))).ToArray();

    public void Dispose()
    {
        foreach (var s in A.Concat(A2).Concat(B)) s.Dispose();
    }
}

public class DkekShareSetTests : IClassFixture<ShareSetFixture>
{
    private readonly ShareSetFixture _f;
    public DkekShareSetTests(ShareSetFixture f) => _f = f;

    [Fact]
    public void EveryThreeOfFiveRebuildsTheDkek()
    {
        int subsets = 0;
        for (int a = 0; a < 5; a++)
            for (int b = a + 1; b < 5; b++)
                for (int c = b + 1; c < 5; c++)
                {
                    using var dkek = DkekShareSet.Combine([_f.A[c], _f.A[a], _f.A[b]]);
                    Assert.Equal(_f.DkekA, dkek.Span.ToArray());
                    subsets++;
                }
        Assert.Equal(10, subsets);
        using var all = DkekShareSet.Combine(_f.A);
        Assert.Equal(_f.DkekA, all.Span.ToArray());
    }

    [Fact]
    public void FilesRecordTheSplit()
    {
        var kcv = KeyCheckValue.Compute(_f.DkekA);
        Assert.All(_f.FilesA, f => Assert.Equal(kcv, f.Kcv));
        Assert.Equal(new[] { 1, 2, 3, 4, 5 }, _f.FilesA.Select(f => f.Index));
        Assert.All(_f.FilesA, f => { Assert.Equal(3, f.Threshold); Assert.Equal(5, f.ShareCount); Assert.Equal(_f.FilesA[0].SplitId, f.SplitId); });
        Assert.NotEqual(_f.A[0].File.SplitId, _f.A2[0].File.SplitId);
        // fresh salt and nonce per file
        Assert.Equal(5, _f.FilesA.Select(f => Convert.ToHexString(f.Salt)).Distinct().Count());
    }

    [Fact]
    public void FewerThanNSharesAreRefused()
    {
        var ex = Assert.Throws<DkekShareException>(() => DkekShareSet.Combine([_f.A[0], _f.A[3]]));
        Assert.Equal(DkekShareReason.NotEnoughShares, ex.Reason);
        Assert.Contains("need 3", ex.Message);
        Assert.Contains("got 2", ex.Message);
        Assert.Equal(DkekShareReason.NotEnoughShares,
            Assert.Throws<DkekShareException>(() => DkekShareSet.Combine([_f.A[0]])).Reason);
        Assert.Equal(DkekShareReason.NotEnoughShares,
            Assert.Throws<DkekShareException>(() => DkekShareSet.Combine([])).Reason);
    }

    [Fact]
    public void TwoSharesWithOneIndexAreRefused()
    {
        var ex = Assert.Throws<DkekShareException>(() => DkekShareSet.Combine([_f.A[0], _f.A[1], _f.A[1]]));
        Assert.Equal(DkekShareReason.DuplicateIndex, ex.Reason);
        Assert.Contains("Two shares with one index", ex.Message);
        Assert.Contains("a-2.dkekshare", ex.Message);
    }

    [Fact]
    public void SharesOfTwoDifferentDkeksAreRefused()
    {
        var ex = Assert.Throws<DkekShareException>(() => DkekShareSet.Combine([_f.A[0], _f.A[1], _f.B[2]]));
        Assert.Equal(DkekShareReason.DifferentDkeks, ex.Reason);
        Assert.Contains("two different DKEKs", ex.Message);
        Assert.Contains(_f.A[0].File.KcvHex, ex.Message);
        Assert.Contains(_f.B[0].File.KcvHex, ex.Message);
    }

    [Fact]
    public void SharesOfTwoSplitsOfOneDkekAreRefused()
    {
        // Same DKEK, same 3-of-5, different split: combining would give a wrong DKEK.
        var ex = Assert.Throws<DkekShareException>(() => DkekShareSet.Combine([_f.A[0], _f.A[1], _f.A2[2]]));
        Assert.Equal(DkekShareReason.DifferentSplits, ex.Reason);
        Assert.Contains("a2-3.dkekshare", ex.Message);
    }

    [Fact]
    public void ARebuiltDkekWithAnotherKcvIsRefused()
    {
        // A share whose bytes are wrong (the files' KCV/split agree): the KCV check catches it.
        using var bad = new DecryptedDkekShare(_f.A[2].File, SecretBytes.CopyOf(_f.A[2].Share.Span));
        bad.Share.Span[7] ^= 0x01;
        var ex = Assert.Throws<DkekShareException>(() => DkekShareSet.Combine([_f.A[0], _f.A[1], bad]));
        Assert.Equal(DkekShareReason.KcvMismatch, ex.Reason);
        Assert.Contains(_f.A[0].File.KcvHex, ex.Message);
        // with one more good share the damaged one is still noticed (all shares are used)
        Assert.Equal(DkekShareReason.KcvMismatch,
            Assert.Throws<DkekShareException>(() => DkekShareSet.Combine([_f.A[0], _f.A[1], bad, _f.A[4]])).Reason);
    }

    [Fact]
    public void WrongShareLengthIsRefused()
    {
        using var shortShare = new DecryptedDkekShare(_f.A[2].File, SecretBytes.CopyOf(_f.A[2].Share.Span[..31]));
        Assert.Equal(DkekShareReason.InvalidShare,
            Assert.Throws<DkekShareException>(() => DkekShareSet.Combine([_f.A[0], _f.A[1], shortShare])).Reason);
    }

    [Fact]
    public void SplitWithVerificationRoundTrips()
    {
        byte[] dkek = RandomNumberGenerator.GetBytes(32);
        var passwords = Enumerable.Range(1, 3).Select(i => ShareSetFixture.Password(i, "v")).ToList();
        int tokenCalls = 0;
        var files = DkekShareSet.Split(dkek, 2, 3, "verified", passwords,
            DkekGenerator.MixedRandom(n => { tokenCalls++; return RandomNumberGenerator.GetBytes(n); }));
        Assert.Equal(1, tokenCalls);
        using var s1 = DecryptedDkekShare.Decrypt(DkekShareFile.Read(files[0].ToBytes(), "1"), passwords[0]);
        using var s3 = DecryptedDkekShare.Decrypt(DkekShareFile.Read(files[2].ToBytes(), "3"), passwords[2]);
        using var rebuilt = DkekShareSet.Combine([s3, s1]);
        Assert.Equal(dkek, rebuilt.Span.ToArray());
    }

    [Fact]
    public void SplitRefusesBadPasswordLists()
    {
        byte[] dkek = RandomNumberGenerator.GetBytes(32);
        var same = new List<char[]> { ShareSetFixture.Password(1), ShareSetFixture.Password(2), ShareSetFixture.Password(1) };
        var ex = Assert.Throws<ArgumentException>(() => DkekShareSet.Split(dkek, 2, 3, "x", same));
        Assert.Contains("same password", ex.Message);
        var weak = new List<char[]> { ShareSetFixture.Password(1), "short".ToCharArray(), ShareSetFixture.Password(3) };
        Assert.Contains("share 2", Assert.Throws<ArgumentException>(() => DkekShareSet.Split(dkek, 2, 3, "x", weak)).Message);
        Assert.Throws<ArgumentException>(() => DkekShareSet.Split(dkek, 2, 3, "x", same.Take(2).ToList()));
        Assert.Throws<ArgumentException>(() => DkekShareSet.Split(dkek[..16], 2, 3, "x", same));
    }
}
