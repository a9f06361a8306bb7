using System.Security.Cryptography;
using CsCheck;
using PicoHsm.Common;
using PicoHsm.Dkek;

namespace PicoHsm.Core.Tests.Dkek;

public class ShamirTests
{
    private static byte[] RandomSecret(int length = 32) => RandomNumberGenerator.GetBytes(length);

    private static IEnumerable<int[]> Subsets(int m, int size)
    {
        var idx = new int[size];
        IEnumerable<int[]> Rec(int start, int depth)
        {
            if (depth == size) { yield return (int[])idx.Clone(); yield break; }
            for (int i = start; i < m; i++)
            {
                idx[depth] = i;
                foreach (var s in Rec(i + 1, depth + 1)) yield return s;
            }
        }
        return Rec(0, 0);
    }

    private static void DisposeAll(IEnumerable<ShamirShare> shares) { foreach (var s in shares) s.Dispose(); }

    [Theory]
    [InlineData(2, 3)]
    [InlineData(3, 5)]
    [InlineData(5, 5)]
    [InlineData(2, 5)]
    [InlineData(4, 7)]
    public void EverySubsetOfAtLeastNSharesRebuildsTheSecret(int n, int m)
    {
        byte[] secret = RandomSecret();
        var shares = Shamir.Split(secret, n, m);
        try
        {
            Assert.Equal(m, shares.Length);
            Assert.Equal(Enumerable.Range(1, m), shares.Select(s => s.Index));
            int checkedSubsets = 0;
            for (int size = n; size <= m; size++)
            {
                foreach (var subset in Subsets(m, size))
                {
                    // also in a shuffled order: Lagrange does not depend on order
                    var chosen = subset.Select(i => shares[i]).OrderBy(_ => Random.Shared.Next()).ToList();
                    using var rebuilt = Shamir.Combine(chosen);
                    Assert.Equal(secret, rebuilt.Span.ToArray());
                    checkedSubsets++;
                }
            }
            Assert.True(checkedSubsets > 0);
        }
        finally { DisposeAll(shares); }
    }

    [Theory]
    [InlineData(2, 3)]
    [InlineData(3, 5)]
    [InlineData(5, 5)]
    public void NoSubsetOfNMinus1SharesGivesTheSecret(int n, int m)
    {
        byte[] secret = RandomSecret();
        var shares = Shamir.Split(secret, n, m);
        try
        {
            foreach (var subset in Subsets(m, n - 1))
            {
                if (subset.Length < 2) continue; // Combine needs 2 points; one share alone is just a random value
                using var wrong = Shamir.Combine(subset.Select(i => shares[i]).ToList());
                Assert.NotEqual(secret, wrong.Span.ToArray()); // 2^-256 chance of a false failure
            }
            // a single share (2-of-m) is a uniformly random value unrelated to the secret
            if (n == 2)
                foreach (var s in shares) Assert.NotEqual(secret, s.Value.Span.ToArray());
        }
        finally { DisposeAll(shares); }
    }

    [Fact]
    public void OneShareOf2Of3IsUniformWhateverTheSecret_Exhaustive()
    {
        // For every secret byte s and every share value y there is exactly one coefficient a1 with
        // s + a1*x = y: a single share says nothing about the secret. Uses the public Split with a
        // chosen "random" coefficient.
        for (int x = 1; x <= 3; x++)
        {
            for (int s = 0; s < 256; s++)
            {
                var seen = new int[256];
                for (int a1 = 0; a1 < 256; a1++)
                {
                    byte coefficient = (byte)a1;
                    var shares = Shamir.Split(new[] { (byte)s }, 2, 3, dest => dest.Fill(coefficient));
                    seen[shares[x - 1].Value.Span[0]]++;
                    DisposeAll(shares);
                }
                Assert.All(seen, c => Assert.Equal(1, c));
            }
        }
    }

    [Fact]
    public void TwoSharesOf3Of5AreConsistentWithEveryCandidateSecret_Exhaustive()
    {
        // For shares at x = 2 and x = 5 of a 3-of-5 split: for every candidate secret byte s, the
        // map (a1, a2) -> (y2, y5) is a bijection of GF(256)^2. So for every pair of observed share
        // values and every s there is exactly one polynomial: n-1 shares leave all 256 secrets
        // equally likely.
        const byte xa = 2, xb = 5;
        // multiplication tables by x and x^2, built with the field multiplication under test
        byte[] a1xa = new byte[256], a2xa = new byte[256], a1xb = new byte[256], a2xb = new byte[256];
        for (int a = 0; a < 256; a++)
        {
            a1xa[a] = Gf256.Mul((byte)a, xa); a2xa[a] = Gf256.Mul((byte)a, Gf256.Mul(xa, xa));
            a1xb[a] = Gf256.Mul((byte)a, xb); a2xb[a] = Gf256.Mul((byte)a, Gf256.Mul(xb, xb));
        }
        var seen = new byte[65536];
        for (int s = 0; s < 256; s++)
        {
            Array.Clear(seen);
            for (int a1 = 0; a1 < 256; a1++)
                for (int a2 = 0; a2 < 256; a2++)
                {
                    int ya = s ^ a1xa[a1] ^ a2xa[a2]; // p(xa) = s + a1*xa + a2*xa^2
                    int yb = s ^ a1xb[a1] ^ a2xb[a2];
                    seen[ya << 8 | yb]++;
                }
            Assert.DoesNotContain(seen, c => c != 1);
        }
    }

    [Theory]
    [InlineData(3, 5)]
    [InlineData(2, 3)]
    [InlineData(5, 5)]
    public void NMinus1RealSharesLeaveEveryFirstByteEquallyPossible(int n, int m)
    {
        // Take n-1 shares of a real split. Whatever the missing n-th share's first byte y is, the
        // result is a valid degree n-1 polynomial; as y runs over 0..255 the rebuilt first byte runs
        // over all 256 values exactly once. So the n-1 shares are consistent with every candidate
        // first byte, each by exactly one polynomial: they carry no information about it.
        byte[] secret = RandomSecret();
        var shares = Shamir.Split(secret, n, m);
        try
        {
            var known = shares.Take(n - 1).ToList();
            var missing = shares[m - 1];
            var candidates = new int[256];
            for (int y = 0; y < 256; y++)
            {
                using var guess = new ShamirShare(missing.Index, SecretBytes.CopyOf(missing.Value.Span));
                guess.Value.Span[0] = (byte)y;
                using var rebuilt = Shamir.Combine([.. known, guess]);
                candidates[rebuilt.Span[0]]++;
                if (y == missing.Value.Span[0]) Assert.Equal(secret, rebuilt.Span.ToArray());
            }
            Assert.All(candidates, c => Assert.Equal(1, c));
        }
        finally { DisposeAll(shares); }
    }

    [Fact]
    public void SplitEvaluatesThePolynomialWithTheGivenCoefficients()
    {
        // Ties the exhaustive maths above to Split: 3-of-5, 2-byte secret, fixed coefficients.
        byte[] secret = { 0x53, 0xCA };
        byte[] coefficients = { 0x11, 0x22, 0x33, 0x44 }; // a1 for bytes 0,1 then a2 for bytes 0,1
        var shares = Shamir.Split(secret, 3, 5, dest => coefficients.CopyTo(dest));
        try
        {
            for (int i = 0; i < 5; i++)
            {
                byte x = (byte)(i + 1), x2 = Gf256.Mul(x, x);
                for (int b = 0; b < 2; b++)
                {
                    byte expected = (byte)(secret[b] ^ Gf256.Mul(coefficients[b], x) ^ Gf256.Mul(coefficients[2 + b], x2));
                    Assert.Equal(expected, shares[i].Value.Span[b]);
                }
            }
        }
        finally { DisposeAll(shares); }
    }

    [Fact]
    public void FieldArithmeticMatchesTheAesField()
    {
        // FIPS-197 examples: {57} x {83} = {c1}, {57} x {13} = {fe}
        Assert.Equal(0xC1, Gf256.Mul(0x57, 0x83));
        Assert.Equal(0xFE, Gf256.Mul(0x57, 0x13));
        for (int a = 1; a < 256; a++)
            Assert.Equal(1, Gf256.Mul((byte)a, Gf256.Inverse((byte)a)));
        for (int a = 0; a < 256; a++)
            for (int b = 0; b < 256; b++)
                Assert.Equal(SlowMul(a, b), Gf256.Mul((byte)a, (byte)b));

        static byte SlowMul(int a, int b)
        {
            int p = 0;
            for (int i = 0; i < 8; i++) if ((b >> i & 1) != 0) p ^= a << i;
            for (int i = 15; i >= 8; i--) if ((p >> i & 1) != 0) p ^= 0x11B << (i - 8);
            return (byte)p;
        }
    }

    [Fact]
    public void RandomSubsetsRebuild_Property()
    {
        var gen =
            from m in Gen.Int[2, 12]
            from n in Gen.Int[2, m]
            from secret in Gen.Byte.Array[1, 48]
            from order in Gen.Int.Array[m, m]
            select (n, m, secret, order);
        gen.Sample(t =>
        {
            var shares = Shamir.Split(t.secret, t.n, t.m);
            try
            {
                var chosen = Enumerable.Range(0, t.m).OrderBy(i => t.order[i]).Take(t.n).Select(i => shares[i]).ToList();
                using var rebuilt = Shamir.Combine(chosen);
                return rebuilt.Span.SequenceEqual(t.secret);
            }
            finally { DisposeAll(shares); }
        }, iter: 300);
    }

    [Fact]
    public void LargeShareCountsWork()
    {
        byte[] secret = RandomSecret();
        var shares = Shamir.Split(secret, 200, 255);
        try
        {
            using var rebuilt = Shamir.Combine(shares.Skip(55).ToList());
            Assert.Equal(secret, rebuilt.Span.ToArray());
            using var wrong = Shamir.Combine(shares.Skip(56).ToList());
            Assert.NotEqual(secret, wrong.Span.ToArray());
        }
        finally { DisposeAll(shares); }
    }

    [Theory]
    [InlineData(1, 3)]
    [InlineData(4, 3)]
    [InlineData(2, 1)]
    [InlineData(2, 256)]
    [InlineData(0, 0)]
    public void InvalidParametersAreRejected(int n, int m)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Shamir.Split(RandomSecret(), n, m));
    }

    [Fact]
    public void EmptySecretIsRejected() =>
        Assert.Throws<ArgumentException>(() => Shamir.Split(ReadOnlySpan<byte>.Empty, 2, 3));

    [Fact]
    public void DuplicateIndexIsRejected()
    {
        var shares = Shamir.Split(RandomSecret(), 2, 3);
        try
        {
            using var copy = new ShamirShare(shares[0].Index, SecretBytes.CopyOf(shares[0].Value.Span));
            var ex = Assert.Throws<ArgumentException>(() => Shamir.Combine(new[] { shares[0], copy, shares[1] }));
            Assert.Contains("index 1", ex.Message);
        }
        finally { DisposeAll(shares); }
    }

    [Fact]
    public void IndexZeroIsRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShamirShare(0, new SecretBytes(32)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShamirShare(256, new SecretBytes(32)));
    }

    [Fact]
    public void MixedLengthsAndTooFewSharesAreRejected()
    {
        using var a = new ShamirShare(1, new SecretBytes(32));
        using var b = new ShamirShare(2, new SecretBytes(16));
        Assert.Throws<ArgumentException>(() => Shamir.Combine(new[] { a, b }));
        Assert.Throws<ArgumentException>(() => Shamir.Combine(new[] { a }));
    }

    [Fact]
    public void CoefficientsComeFromTheGivenSource()
    {
        int calls = 0, requested = 0;
        var shares = Shamir.Split(RandomSecret(), 3, 5, dest => { calls++; requested += dest.Length; RandomNumberGenerator.Fill(dest); });
        DisposeAll(shares);
        Assert.Equal(1, calls);
        Assert.Equal(2 * 32, requested);
    }
}
