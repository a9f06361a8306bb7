using System.Security.Cryptography;
using PicoHsm.Common;

namespace PicoHsm.Dkek;

/// <summary>A decrypted share with the file it came from. Disposing zeroes the share.</summary>
public sealed class DecryptedDkekShare : IDisposable
{
    public DecryptedDkekShare(DkekShareFile file, SecretBytes share)
    {
        File = file ?? throw new ArgumentNullException(nameof(file));
        Share = share ?? throw new ArgumentNullException(nameof(share));
    }

    public DkekShareFile File { get; }
    public SecretBytes Share { get; }

    /// <summary>Decrypts <paramref name="file"/> with <paramref name="password"/> (see <see cref="DkekShareFile.Decrypt"/>).</summary>
    public static DecryptedDkekShare Decrypt(DkekShareFile file, ReadOnlySpan<char> password, CancellationToken cancellation = default) =>
        new(file, file.Decrypt(password, cancellation));

    public void Dispose() => Share.Dispose();
}

/// <summary>Splitting a DKEK into custodian share files, and combining share files back into the DKEK.</summary>
public static class DkekShareSet
{
    /// <summary>
    /// Rebuilds the DKEK from decrypted shares. Refuses, with a <see cref="DkekShareException"/>
    /// naming the files: shares of different DKEKs or splits, two shares with one index, fewer than n
    /// shares, and a result whose KCV is not the one recorded in every file. All given shares are
    /// used (more than n is fine and checks the extra shares too). The caller disposes the result.
    /// </summary>
    public static SecretBytes Combine(IReadOnlyList<DecryptedDkekShare> shares)
    {
        ArgumentNullException.ThrowIfNull(shares);
        if (shares.Count == 0)
            throw new DkekShareException(DkekShareReason.NotEnoughShares, "No DKEK share was given.");
        foreach (var s in shares)
            if (s is null) throw new ArgumentException("A share is null.", nameof(shares));

        var first = shares[0].File;
        foreach (var s in shares)
        {
            var f = s.File;
            if (!f.Kcv.AsSpan().SequenceEqual(first.Kcv))
                throw new DkekShareException(DkekShareReason.DifferentDkeks,
                    $"These are shares of two different DKEKs: {Name(shares[0])} is for the DKEK with KCV {first.KcvHex}, " +
                    $"{Name(s)} for the DKEK with KCV {f.KcvHex}.");
        }
        foreach (var s in shares)
        {
            var f = s.File;
            if (f.Threshold != first.Threshold || f.ShareCount != first.ShareCount || f.SplitId != first.SplitId)
                throw new DkekShareException(DkekShareReason.DifferentSplits,
                    $"{Capital(Name(shares[0]))} and {Name(s)} are shares of the same DKEK (KCV {first.KcvHex}) but from two different splits " +
                    $"({first.Threshold}-of-{first.ShareCount} made {first.Created:u}, split {first.SplitId}; " +
                    $"{f.Threshold}-of-{f.ShareCount} made {f.Created:u}, split {f.SplitId}). Shares of different splits cannot be combined: use shares of one split only.");
            if (s.Share.Length != DkekShareFile.ShareLength)
                throw new DkekShareException(DkekShareReason.InvalidShare,
                    $"The share from {Name(s)} is {s.Share.Length} bytes instead of {DkekShareFile.ShareLength}.");
        }
        var byIndex = new Dictionary<int, DecryptedDkekShare>();
        foreach (var s in shares)
        {
            if (byIndex.TryGetValue(s.File.Index, out var other))
                throw new DkekShareException(DkekShareReason.DuplicateIndex,
                    $"Two shares with one index: {Name(other)} and {Name(s)} are both share {s.File.Index} of {first.ShareCount} " +
                    "(the same custodian's share given twice?). Each share counts once.");
            byIndex.Add(s.File.Index, s);
        }
        if (shares.Count < first.Threshold)
            throw new DkekShareException(DkekShareReason.NotEnoughShares,
                $"Not enough shares for the DKEK with KCV {first.KcvHex}: need {first.Threshold} (a {first.Threshold}-of-{first.ShareCount} split), got {shares.Count}.");

        // ShamirShare disposes its SecretBytes, so give it copies and dispose them after.
        var points = new List<ShamirShare>(shares.Count);
        try
        {
            foreach (var s in shares)
                points.Add(new ShamirShare(s.File.Index, SecretBytes.CopyOf(s.Share.Span)));
            var dkek = Shamir.Combine(points);
            byte[] kcv = KeyCheckValue.Compute(dkek.Span);
            foreach (var s in shares)
            {
                if (!CryptographicOperations.FixedTimeEquals(kcv, s.File.Kcv))
                {
                    dkek.Dispose();
                    throw new DkekShareException(DkekShareReason.KcvMismatch,
                        $"The rebuilt DKEK has KCV {KeyCheckValue.ToHex(kcv)}, but {Name(s)} records KCV {s.File.KcvHex}: " +
                        "a share is damaged or was not made from this DKEK. The DKEK was not rebuilt.");
                }
            }
            return dkek;
        }
        finally
        {
            foreach (var p in points) p.Dispose();
        }
    }

    /// <summary>
    /// Splits a 32-byte DKEK into <paramref name="shareCount"/> share files, any
    /// <paramref name="threshold"/> of which rebuild it. <paramref name="passwords"/> has one
    /// password per custodian, in share order (share i uses passwords[i-1]); each must pass
    /// <see cref="DkekPasswordPolicy"/> and no two may be equal. The caller owns and zeroes the
    /// password arrays. Shamir coefficients come from <paramref name="random"/> (OS RNG when null;
    /// see <see cref="DkekGenerator.MixedRandom"/>). With <paramref name="verify"/> (the default),
    /// every file is read back from its bytes and decrypted, and subsets are recombined, before
    /// the files are returned: they cost one more KDF run per file.
    /// </summary>
    public static IReadOnlyList<DkekShareFile> Split(ReadOnlySpan<byte> dkek, int threshold, int shareCount, string label,
        IReadOnlyList<char[]> passwords, SpanFiller? random = null, DateTimeOffset? created = null, bool verify = true,
        int iterations = DkekShareFile.DefaultIterations, CancellationToken cancellation = default)
    {
        if (dkek.Length != DkekGenerator.DkekLength)
            throw new ArgumentException("A DKEK is 32 bytes.", nameof(dkek));
        ArgumentNullException.ThrowIfNull(label);
        ArgumentNullException.ThrowIfNull(passwords);
        if (shareCount is < 2 or > Shamir.MaxShares)
            throw new ArgumentOutOfRangeException(nameof(shareCount), shareCount, "The share count m must be 2..255.");
        if (threshold < 2 || threshold > shareCount)
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "The threshold n must be 2..m.");
        if (passwords.Count != shareCount)
            throw new ArgumentException($"One password per share is needed: {shareCount} shares, {passwords.Count} passwords.", nameof(passwords));
        for (int i = 0; i < passwords.Count; i++)
        {
            if (passwords[i] is null)
                throw new ArgumentException($"The password for share {i + 1} is missing.", nameof(passwords));
            if (!DkekPasswordPolicy.TryValidate(passwords[i], out string? problem))
                throw new ArgumentException($"The password for share {i + 1}: {problem}", nameof(passwords));
            for (int j = 0; j < i; j++)
                if (passwords[i].AsSpan().SequenceEqual(passwords[j]))
                    throw new ArgumentException($"Shares {j + 1} and {i + 1} have the same password: each custodian needs their own.", nameof(passwords));
        }

        byte[] kcv = KeyCheckValue.Compute(dkek);
        var splitId = Guid.NewGuid();
        var when = created ?? DateTimeOffset.UtcNow;
        var shares = Shamir.Split(dkek, threshold, shareCount, random ?? new SpanFiller(RandomNumberGenerator.Fill));
        try
        {
            // Before anything is encrypted: the first n and the last n shares give the DKEK back.
            CheckRebuilds(dkek, shares.Take(threshold).ToList());
            CheckRebuilds(dkek, shares.Skip(shareCount - threshold).ToList());

            var files = new DkekShareFile[shareCount];
            for (int i = 0; i < shareCount; i++)
                files[i] = DkekShareFile.Create(shares[i].Value.Span, shares[i].Index, threshold, shareCount, kcv, splitId,
                    label, passwords[i], when, iterations, cancellation);

            if (verify)
            {
                for (int i = 0; i < shareCount; i++)
                {
                    var reread = DkekShareFile.Read(files[i].ToBytes(), $"share {i + 1}");
                    using var back = reread.Decrypt(passwords[i], cancellation);
                    if (!CryptographicOperations.FixedTimeEquals(back.Span, shares[i].Value.Span))
                        throw new CryptographicException($"Share file {i + 1} did not decrypt to its share: the split was abandoned.");
                }
            }
            return files;
        }
        finally
        {
            foreach (var s in shares) s.Dispose();
        }
    }

    private static void CheckRebuilds(ReadOnlySpan<byte> dkek, List<ShamirShare> subset)
    {
        using var rebuilt = Shamir.Combine(subset);
        if (!CryptographicOperations.FixedTimeEquals(rebuilt.Span, dkek))
            throw new CryptographicException("The DKEK shares did not rebuild the DKEK: the split was abandoned.");
    }

    private static string Name(DecryptedDkekShare s) =>
        s.File.SourceName is { } n ? $"'{n}'" : $"share {s.File.Index}";

    private static string Capital(string s) => s.Length > 0 && char.IsLower(s[0]) ? char.ToUpperInvariant(s[0]) + s[1..] : s;
}
