using System.Security.Cryptography;
using PicoHsm.Common;

namespace PicoHsm.Dkek;

/// <summary>One Shamir share: its x-coordinate (1..255) and its y-values, one per secret byte.</summary>
public sealed class ShamirShare : IDisposable
{
    public ShamirShare(int index, SecretBytes value)
    {
        if (index is < 1 or > 255)
            throw new ArgumentOutOfRangeException(nameof(index), index, "A share index is 1..255 (0 would be the secret itself).");
        ArgumentNullException.ThrowIfNull(value);
        Index = index;
        Value = value;
    }

    /// <summary>The x-coordinate of the share, 1..255.</summary>
    public int Index { get; }

    /// <summary>The share bytes, as long as the secret. Owned by this share: disposed with it.</summary>
    public SecretBytes Value { get; }

    public void Dispose() => Value.Dispose();
}

/// <summary>
/// n-of-m Shamir secret sharing over GF(2^8) with the AES polynomial x^8+x^4+x^3+x+1 (0x11B),
/// applied independently to every byte of the secret. Share i is the value at x = i (1..m) of a
/// random polynomial of degree n-1 whose constant term is the secret byte.
/// Field arithmetic is table-free and branch-free on secret data (no secret-indexed memory access).
/// </summary>
public static class Shamir
{
    public const int MaxShares = 255;

    /// <summary>Splits with coefficients from <paramref name="rng"/> (the OS RNG when null).</summary>
    public static ShamirShare[] Split(ReadOnlySpan<byte> secret, int threshold, int shareCount, RandomNumberGenerator? rng = null)
    {
        if (rng is null)
            return Split(secret, threshold, shareCount, d => RandomNumberGenerator.Fill(d));
        return Split(secret, threshold, shareCount, d => rng.GetBytes(d));
    }

    /// <summary>
    /// Splits <paramref name="secret"/> into <paramref name="shareCount"/> shares, any
    /// <paramref name="threshold"/> of which rebuild it. <paramref name="fillRandom"/> must fill
    /// its argument with uniformly random bytes (e.g. token RNG XOR OS RNG, see <see cref="DkekGenerator.MixedRandom"/>).
    /// </summary>
    public static ShamirShare[] Split(ReadOnlySpan<byte> secret, int threshold, int shareCount, SpanFiller fillRandom)
    {
        ArgumentNullException.ThrowIfNull(fillRandom);
        if (secret.IsEmpty)
            throw new ArgumentException("The secret is empty.", nameof(secret));
        if (shareCount is < 2 or > MaxShares)
            throw new ArgumentOutOfRangeException(nameof(shareCount), shareCount, $"The share count m must be 2..{MaxShares}.");
        if (threshold < 2 || threshold > shareCount)
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, $"The threshold n must be 2..m (m = {shareCount}).");

        int len = secret.Length;
        // coefficients[(k - 1) * len + b] is the coefficient of x^k for secret byte b, k = 1..n-1.
        using var coefficients = new SecretBytes((threshold - 1) * len);
        fillRandom(coefficients.Span);

        var shares = new ShamirShare[shareCount];
        try
        {
            Span<byte> c = coefficients.Span;
            for (int i = 0; i < shareCount; i++)
            {
                byte x = (byte)(i + 1);
                var value = new SecretBytes(len);
                shares[i] = new ShamirShare(x, value);
                Span<byte> y = value.Span;
                for (int b = 0; b < len; b++)
                {
                    // Horner: ((a_{n-1} x + a_{n-2}) x + ...) x + secret
                    byte acc = 0;
                    for (int k = threshold - 1; k >= 1; k--)
                        acc = (byte)(Gf256.Mul(acc, x) ^ c[(k - 1) * len + b]);
                    y[b] = (byte)(Gf256.Mul(acc, x) ^ secret[b]);
                }
            }
            return shares;
        }
        catch
        {
            foreach (var s in shares) s?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Rebuilds the secret by Lagrange interpolation at x = 0 through all the given shares.
    /// With shares of a degree n-1 polynomial, any n or more of them give the secret; fewer give
    /// an unrelated value (this method cannot tell: callers check the result, e.g. with a KCV).
    /// </summary>
    public static SecretBytes Combine(IReadOnlyList<ShamirShare> shares)
    {
        ArgumentNullException.ThrowIfNull(shares);
        if (shares.Count < 2)
            throw new ArgumentException($"At least 2 shares are needed, got {shares.Count}.", nameof(shares));
        int len = -1;
        var seen = new bool[256];
        foreach (var s in shares)
        {
            if (s is null)
                throw new ArgumentException("A share is null.", nameof(shares));
            if (s.Index is < 1 or > 255)
                throw new ArgumentException($"Share index {s.Index} is invalid: indexes are 1..255 (0 is the secret).", nameof(shares));
            if (seen[s.Index])
                throw new ArgumentException($"Two shares have index {s.Index}: each share must be given once.", nameof(shares));
            seen[s.Index] = true;
            if (len < 0) len = s.Value.Length;
            else if (s.Value.Length != len)
                throw new ArgumentException($"Shares have different lengths ({len} and {s.Value.Length} bytes): they are not shares of one secret.", nameof(shares));
        }
        if (len == 0)
            throw new ArgumentException("The shares are empty.", nameof(shares));

        // Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i); in GF(2^8), minus is XOR.
        // Indexes are public, so computing these is not secret-dependent.
        int k = shares.Count;
        var basis = new byte[k];
        for (int i = 0; i < k; i++)
        {
            byte xi = (byte)shares[i].Index;
            byte num = 1, den = 1;
            for (int j = 0; j < k; j++)
            {
                if (j == i) continue;
                byte xj = (byte)shares[j].Index;
                num = Gf256.Mul(num, xj);
                den = Gf256.Mul(den, (byte)(xj ^ xi));
            }
            basis[i] = Gf256.Mul(num, Gf256.Inverse(den));
        }

        var secret = new SecretBytes(len);
        Span<byte> result = secret.Span;
        for (int i = 0; i < k; i++)
        {
            ReadOnlySpan<byte> y = shares[i].Value.Span;
            byte l = basis[i];
            for (int b = 0; b < len; b++)
                result[b] ^= Gf256.Mul(y[b], l);
        }
        return secret;
    }
}

/// <summary>Fills a span with random bytes (a delegate so callers can mix several sources).</summary>
public delegate void SpanFiller(Span<byte> destination);

/// <summary>GF(2^8) with the AES polynomial 0x11B; constant-time (no tables, no data-dependent branches).</summary>
internal static class Gf256
{
    public static byte Mul(byte a, byte b)
    {
        int r = 0, x = a, y = b;
        for (int i = 0; i < 8; i++)
        {
            r ^= -(y & 1) & x;
            y >>= 1;
            x = (x << 1) ^ (-(x >> 7) & 0x11B);
        }
        return (byte)r;
    }

    /// <summary>a^254 = a^-1 for a != 0 (and 0 for 0).</summary>
    public static byte Inverse(byte a)
    {
        // 254 = 0b11111110: square-and-multiply with a fixed sequence of operations.
        byte result = 1, p = a;
        for (int bit = 1; bit < 8; bit++)
        {
            p = Mul(p, p);          // p = a^(2^bit)
            result = Mul(result, p); // bits 1..7 of 254 are all set
        }
        return result;
    }
}
