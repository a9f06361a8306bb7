using System.Numerics;
using System.Security.Cryptography;
using PicoHsm.Common;

namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>
/// Checks that decrypted key material is the private half of a public key (SubjectPublicKeyInfo DER),
/// e.g. the public key read over PKCS#11 before a backup, or a .pub.der kept with it.
/// </summary>
public static class ScHsmPublicKeyCheck
{
    /// <summary>
    /// RSA: n and e equal, and the private part consistent (type 5: m^(e·d) = m for test values;
    /// type 6: p·q = n and the CRT values fit). EC: same curve, Q equals the SPKI point, and d·G = Q.
    /// AES keys have no public key: always false.
    /// </summary>
    public static bool MatchesPublicKey(ScHsmKeyMaterial material, ReadOnlySpan<byte> subjectPublicKeyInfo)
    {
        ArgumentNullException.ThrowIfNull(material);
        return material switch
        {
            ScHsmRsaKeyMaterial rsa => RsaMatches(rsa, subjectPublicKeyInfo),
            ScHsmEcKeyMaterial ec => EcMatches(ec, subjectPublicKeyInfo),
            _ => false,
        };
    }

    private static bool RsaMatches(ScHsmRsaKeyMaterial key, ReadOnlySpan<byte> spki)
    {
        RSAParameters pub;
        using (var rsa = RSA.Create())
        {
            try
            {
                rsa.ImportSubjectPublicKeyInfo(spki, out _);
            }
            catch (CryptographicException)
            {
                return false;  // not an RSA public key
            }
            pub = rsa.ExportParameters(includePrivateParameters: false);
        }
        if (!UnsignedBytes.NumericallyEqual(pub.Modulus, key.Modulus) || !UnsignedBytes.NumericallyEqual(pub.Exponent, key.Exponent))
            return false;

        var n = UnsignedBytes.ToBigInteger(key.Modulus);
        var e = UnsignedBytes.ToBigInteger(key.Exponent);
        if (!key.IsCrt)
        {
            var d = UnsignedBytes.ToBigInteger(key.D!.Span);
            foreach (var m in new BigInteger[] { 2, 3, 0x1234567, n - 2 })
                if (BigInteger.ModPow(BigInteger.ModPow(m, e, n), d, n) != m % n) return false;
            return true;
        }

        var p = UnsignedBytes.ToBigInteger(key.P!.Span);
        var q = UnsignedBytes.ToBigInteger(key.Q!.Span);
        var dp = UnsignedBytes.ToBigInteger(key.DP!.Span);
        var dq = UnsignedBytes.ToBigInteger(key.DQ!.Span);
        var qinv = UnsignedBytes.ToBigInteger(key.InverseQ!.Span);
        if (p <= 1 || q <= 1 || p * q != n) return false;
        if ((e * dp) % (p - 1) != 1 || (e * dq) % (q - 1) != 1) return false;
        if ((qinv * q) % p != 1) return false;
        // And a CRT decryption of m^e gives m back.
        var c = BigInteger.ModPow(0x1234567, e, n);
        var m1 = BigInteger.ModPow(c, dp, p);
        var m2 = BigInteger.ModPow(c, dq, q);
        var h = (qinv * ((m1 - m2) % p + p)) % p;
        return m2 + h * q == 0x1234567;
    }

    private static bool EcMatches(ScHsmEcKeyMaterial key, ReadOnlySpan<byte> spki)
    {
        var curve = key.Curve;
        if (curve is null) return false;

        ECParameters pub;
        using (var ecdsa = ECDsa.Create())
        {
            try
            {
                ecdsa.ImportSubjectPublicKeyInfo(spki, out _);
            }
            catch (CryptographicException)
            {
                return false;  // not an EC public key, or a curve the platform does not have
            }
            pub = ecdsa.ExportParameters(includePrivateParameters: false);
        }
        if (ScHsmCurve.FromECCurve(pub.Curve) != curve) return false;
        if (pub.Q.X is null || pub.Q.Y is null) return false;

        var spkiPoint = new byte[1 + 2 * curve.FieldSizeBytes];
        spkiPoint[0] = 0x04;
        UnsignedBytes.PadTo(pub.Q.X, curve.FieldSizeBytes).CopyTo(spkiPoint, 1);
        UnsignedBytes.PadTo(pub.Q.Y, curve.FieldSizeBytes).CopyTo(spkiPoint, 1 + curve.FieldSizeBytes);
        if (!key.PublicPoint.SequenceEqual(spkiPoint)) return false;

        // The blob's G must be the curve's G for d·G to mean anything, then d·G = Q.
        if (!key.Generator.SequenceEqual(curve.Generator)) return false;
        return ScHsmEcKeyMaterial.PublicPointOf(curve, key.D.Span).AsSpan().SequenceEqual(spkiPoint);
    }
}
