using System.Numerics;
using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Devices.ScHsm.Shares;

/// <summary>
/// sc-hsm-tool's n-of-m scheme for a DKEK share file (<c>--pwd-shares-threshold t --pwd-shares-total n</c>):
/// the file is encrypted under a random 8-byte password, and that password (not the DKEK) is split by
/// Shamir's scheme over GF(p), p a fresh random 64-bit prime. Custodian i gets the point (i, f(i)) with
/// f(0) = password; any t points rebuild it by Lagrange interpolation at 0.
/// </summary>
public static class ScHsmPasswordShares
{
    public const int PasswordLength = 8;

    /// <summary>Rebuilds the 8 password bytes (big-endian) from at least <c>threshold</c> shares.</summary>
    /// <remarks>
    /// sc-hsm-tool itself hands OpenSSL BN_bn2bin of the result, which is shorter than 8 bytes when the
    /// password starts with a zero byte (and then cannot open a file it made). The 8 bytes returned here are
    /// the password that was used to encrypt the file.
    /// </remarks>
    public static byte[] Combine(ReadOnlySpan<byte> prime, IReadOnlyList<ScHsmPasswordShare> shares)
    {
        ArgumentNullException.ThrowIfNull(shares);
        var p = UnsignedBytes.ToBigInteger(prime);
        if (p < 3 || !IsProbablePrime(p))
            throw new ScHsmFormatException("The prime given with the password shares is not a prime.");
        if (shares.Count < 2)
            throw new ArgumentException("At least two password shares are needed.", nameof(shares));
        if (shares.Select(s => s.Id).Distinct().Count() != shares.Count)
            throw new ArgumentException("Each password share must have a different share id.", nameof(shares));

        var secret = BigInteger.Zero;
        for (int i = 0; i < shares.Count; i++)
        {
            var xi = new BigInteger(shares[i].Id);
            if (shares[i].Id <= 0 || xi % p == 0)
                throw new ArgumentException("A share id is a positive number (1, 2, 3, ...).", nameof(shares));
            var yi = UnsignedBytes.ToBigInteger(shares[i].Value);
            BigInteger num = BigInteger.One, den = BigInteger.One;
            for (int j = 0; j < shares.Count; j++)
            {
                if (i == j) continue;
                var xj = new BigInteger(shares[j].Id);
                num = num * xj % p;                       // (0 - xj) up to the sign folded into den
                den = Mod(den * (xj - xi), p);
            }
            var lagrange = num * ModInverse(den, p) % p;
            secret = (secret + yi * lagrange) % p;
        }

        if (secret.GetByteCount(isUnsigned: true) > PasswordLength)
            throw new ScHsmFormatException("The password shares do not give an 8-byte password.");
        var password = new byte[PasswordLength];
        secret.TryWriteBytes(password.AsSpan(PasswordLength - secret.GetByteCount(isUnsigned: true)), out _,
            isUnsigned: true, isBigEndian: true);
        return password;
    }

    /// <summary>Rebuilds the password from the prime and shares as sc-hsm-tool printed them.</summary>
    public static byte[] Combine(string prime, IReadOnlyList<ScHsmPasswordShare> shares) => Combine(ParseHex(prime), shares);

    /// <summary>
    /// A fresh random password the way sc-hsm-tool makes one: 8 random bytes with the top bit cleared,
    /// so the secret is below 2^63 and always below the 64-bit prime. Unlike sc-hsm-tool, a first byte of
    /// zero is drawn again: sc-hsm-tool rebuilds the password with BN_bn2bin, which drops a leading zero
    /// byte, so it could not open a file made under such a password (1 file in 128).
    /// </summary>
    public static byte[] NewPassword()
    {
        var password = new byte[PasswordLength];
        do
        {
            RandomNumberGenerator.Fill(password);
            password[0] &= 0x7F;
        }
        while (password[0] == 0);
        return password;
    }

    /// <summary>
    /// Splits an 8-byte password into <paramref name="total"/> shares, any <paramref name="threshold"/>
    /// of which rebuild it, under a fresh random 64-bit prime. Same rules as sc-hsm-tool: t >= 2, n >= 3, t <= n.
    /// </summary>
    public static ScHsmPasswordSplit Split(ReadOnlySpan<byte> password, int threshold, int total)
    {
        if (password.Length != PasswordLength)
            throw new ArgumentException($"The password to split is {PasswordLength} bytes.", nameof(password));
        if (threshold < 2) throw new ArgumentOutOfRangeException(nameof(threshold), "The threshold is at least 2.");
        if (total < 3) throw new ArgumentOutOfRangeException(nameof(total), "sc-hsm-tool needs at least 3 shares in total.");
        if (threshold > total) throw new ArgumentOutOfRangeException(nameof(threshold), "The threshold cannot exceed the total.");
        if (total > 255) throw new ArgumentOutOfRangeException(nameof(total), "At most 255 shares.");

        var secret = UnsignedBytes.ToBigInteger(password);
        var p = RandomPrime64(secret);

        // f(x) = secret + a1 x + ... + a(t-1) x^(t-1) mod p, coefficients uniform in [0, p).
        var coefficients = new BigInteger[threshold];
        coefficients[0] = secret;
        for (int k = 1; k < threshold; k++) coefficients[k] = RandomBelow(p);

        var shares = new List<ScHsmPasswordShare>(total);
        for (int x = 1; x <= total; x++)
        {
            var y = BigInteger.Zero;
            for (int k = threshold - 1; k >= 0; k--) y = (y * x + coefficients[k]) % p;
            shares.Add(new ScHsmPasswordShare(x, y.ToByteArray(isUnsigned: true, isBigEndian: true)));
        }
        Array.Clear(coefficients);
        return new ScHsmPasswordSplit(p.ToByteArray(isUnsigned: true, isBigEndian: true), threshold, shares);
    }

    /// <summary>Reads hex as sc-hsm-tool prints it ("c0:1b:aa:..."); colons, spaces and dashes are ignored.</summary>
    public static byte[] ParseHex(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return ParseHex(text.AsSpan());
    }

    /// <summary>As <see cref="ParseHex(string)"/>, for a secret held in a char array: no string of it is made, the copy is zeroed.</summary>
    public static byte[] ParseHex(ReadOnlySpan<char> text)
    {
        var digits = new char[text.Length];
        try
        {
            int n = 0;
            foreach (char c in text)
                if (c is not (':' or ' ' or '-' or '\t' or '\r' or '\n')) digits[n++] = c;
            if (n == 0 || n % 2 != 0)
                throw new ScHsmFormatException("Expected hex bytes such as c0:1b:aa:f3 (an even number of hex digits).");
            try
            {
                return Convert.FromHexString(digits.AsSpan(0, n));
            }
            catch (FormatException)
            {
                throw new ScHsmFormatException("Expected hex bytes such as c0:1b:aa:f3 (only 0-9, a-f and colons).");
            }
        }
        finally
        {
            Array.Clear(digits);
        }
    }

    /// <summary>Lower-case hex with colons, as sc-hsm-tool prints prime and share values.</summary>
    public static string FormatHex(ReadOnlySpan<byte> bytes) =>
        string.Join(':', Convert.ToHexString(bytes).ToLowerInvariant().Chunk(2).Select(c => new string(c)));

    /// <summary>Miller-Rabin with random bases (error below 4^-rounds), after trial division by small primes.</summary>
    public static bool IsProbablePrime(BigInteger n, int rounds = 40)
    {
        if (n < 2) return false;
        foreach (int small in SmallPrimes)
        {
            if (n == small) return true;
            if (n % small == 0) return false;
        }
        var d = n - 1;
        int s = 0;
        while (d.IsEven) { d >>= 1; s++; }
        for (int r = 0; r < rounds; r++)
        {
            var a = 2 + RandomBelow(n - 3);
            var x = BigInteger.ModPow(a, d, n);
            if (x == 1 || x == n - 1) continue;
            bool composite = true;
            for (int k = 1; k < s; k++)
            {
                x = BigInteger.ModPow(x, 2, n);
                if (x == n - 1) { composite = false; break; }
            }
            if (composite) return false;
        }
        return true;
    }

    private static readonly int[] SmallPrimes = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97];

    /// <summary>A random prime with exactly 64 bits, above <paramref name="secret"/>.</summary>
    private static BigInteger RandomPrime64(BigInteger secret)
    {
        Span<byte> buf = stackalloc byte[8];
        while (true)
        {
            RandomNumberGenerator.Fill(buf);
            buf[0] |= 0x80;  // 64 bits exactly
            buf[7] |= 0x01;  // odd
            var candidate = UnsignedBytes.ToBigInteger(buf);
            if (candidate > secret && IsProbablePrime(candidate)) return candidate;
        }
    }

    /// <summary>Uniform in [0, bound) by rejection sampling.</summary>
    private static BigInteger RandomBelow(BigInteger bound)
    {
        int bytes = bound.GetByteCount(isUnsigned: true);
        int topBits = (int)(bound.GetBitLength() % 8);
        var buf = new byte[bytes];
        while (true)
        {
            RandomNumberGenerator.Fill(buf);
            if (topBits != 0) buf[0] &= (byte)((1 << topBits) - 1);
            var v = UnsignedBytes.ToBigInteger(buf);
            if (v < bound) return v;
        }
    }

    private static BigInteger Mod(BigInteger a, BigInteger m)
    {
        var r = a % m;
        return r.Sign < 0 ? r + m : r;
    }

    private static BigInteger ModInverse(BigInteger a, BigInteger p) => BigInteger.ModPow(Mod(a, p), p - 2, p);
}
