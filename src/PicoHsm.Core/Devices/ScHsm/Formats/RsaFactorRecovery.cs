using System.Numerics;

namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>
/// Finds p and q from n, e and d (the Pico's type-5 blob has no primes, while .NET's RSA import
/// wants the CRT form). Standard method (NIST SP 800-56B C.2 / Boneh): e·d - 1 = 2^t·r is a multiple
/// of λ(n); for a random g a square root of 1 other than ±1 turns up among g^r, g^2r, ... and
/// gcd(root - 1, n) is a prime factor.
/// </summary>
internal static class RsaFactorRecovery
{
    public static (BigInteger P, BigInteger Q) Factor(BigInteger n, BigInteger e, BigInteger d)
    {
        var k = d * e - 1;
        if (k <= 0 || k.IsEven == false)
            throw new ScHsmFormatException("The RSA key's exponents are not consistent (e·d - 1 is not even).");
        var r = k;
        int t = 0;
        while (r.IsEven) { r >>= 1; t++; }

        for (int g = 2; g < 1000; g++)
        {
            var x = BigInteger.ModPow(g, r, n);
            if (x.IsOne || x == n - 1) continue;
            for (int i = 0; i < t; i++)
            {
                var y = BigInteger.ModPow(x, 2, n);
                if (y.IsOne)
                {
                    var p = BigInteger.GreatestCommonDivisor(x - 1, n);
                    if (p > 1 && p < n)
                    {
                        var q = n / p;
                        return p > q ? (p, q) : (q, p);
                    }
                    break;
                }
                if (y == n - 1) break;
                x = y;
            }
        }
        throw new ScHsmFormatException("The RSA modulus could not be factored from d: the key is not consistent.");
    }
}
