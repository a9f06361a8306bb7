using Org.BouncyCastle.Asn1.X9;
using Org.BouncyCastle.Crypto.EC;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.Math.EC;
using Org.BouncyCastle.Security;

namespace PicoHsm.CardSimulator;

public enum CardKeyKind { Rsa, Ec, Aes }

/// <summary>A private key held by the simulated card (the content of an EF CCxx).</summary>
public sealed class CardKey
{
    public CardKeyKind Kind { get; init; }

    // RSA
    public BigInteger? N { get; init; }
    public BigInteger? E { get; init; }
    public BigInteger? D { get; init; }

    // EC
    public string? CurveName { get; init; }
    public BigInteger? EcD { get; init; }

    // AES
    public byte[]? AesKey { get; init; }

    /// <summary>Allowed algorithms (Pico meta tag 91), null = every algorithm.</summary>
    public byte[]? AllowedAlgorithms { get; set; }
    /// <summary>Key domain (Pico meta tag 92).</summary>
    public byte KeyDomain { get; set; }

    public static readonly string[] KnownCurves =
    {
        "secp256r1", "secp384r1", "secp521r1", "secp192r1", "secp224r1",
        "brainpoolP192r1", "brainpoolP224r1", "brainpoolP256r1", "brainpoolP320r1", "brainpoolP384r1", "brainpoolP512r1",
        "secp256k1", "secp192k1",
    };

    public static X9ECParameters Curve(string name) =>
        CustomNamedCurves.GetByName(name) ?? ECNamedCurveTable.GetByName(name)
        ?? throw new ArgumentException("unknown curve " + name);

    public X9ECParameters Curve() => Curve(CurveName!);

    public static string? CurveFromPrime(byte[] prime)
    {
        var p = new BigInteger(1, prime);
        foreach (var n in KnownCurves)
        {
            var c = Curve(n);
            if (c.Curve.Field.Characteristic.Equals(p)) return n;
        }
        return null;
    }

    public static bool IsNist(string curve) => curve.StartsWith("secp") && curve.EndsWith("r1");

    public int FieldBytes => (Curve().Curve.FieldSize + 7) / 8;

    /// <summary>Key size in bits: modulus bits for RSA, field bits for EC, key bits for AES.</summary>
    public int SizeBits => Kind switch
    {
        CardKeyKind.Rsa => N!.BitLength,
        CardKeyKind.Ec => Curve().Curve.FieldSize,
        _ => AesKey!.Length * 8,
    };

    public byte[] EcPublicPoint()
    {
        var c = Curve();
        var q = new Org.BouncyCastle.Math.EC.Multiplier.FixedPointCombMultiplier().Multiply(c.G, EcD!).Normalize();
        return q.GetEncoded(false);
    }

    public ECPrivateKeyParameters EcPrivate()
    {
        var c = Curve();
        return new ECPrivateKeyParameters(EcD, new ECDomainParameters(c));
    }

    public ECPublicKeyParameters EcPublic()
    {
        var c = Curve();
        return new ECPublicKeyParameters(c.Curve.DecodePoint(EcPublicPoint()), new ECDomainParameters(c));
    }

    public RsaKeyParameters RsaPrivate() => new RsaKeyParameters(true, N, D);
    public RsaKeyParameters RsaPublic() => new RsaKeyParameters(false, N, E);

    public static CardKey GenerateEc(string curve, SecureRandom rnd)
    {
        var c = Curve(curve);
        BigInteger d;
        do { d = new BigInteger(c.N.BitLength, rnd); } while (d.SignValue == 0 || d.CompareTo(c.N) >= 0);
        return new CardKey { Kind = CardKeyKind.Ec, CurveName = curve, EcD = d };
    }

    public static CardKey GenerateRsa(int bits, BigInteger e, SecureRandom rnd)
    {
        var gen = new Org.BouncyCastle.Crypto.Generators.RsaKeyPairGenerator();
        gen.Init(new RsaKeyGenerationParameters(e, rnd, bits, 100));
        var kp = gen.GenerateKeyPair();
        var priv = (RsaPrivateCrtKeyParameters)kp.Private;
        return new CardKey { Kind = CardKeyKind.Rsa, N = priv.Modulus, E = priv.PublicExponent, D = priv.Exponent };
    }

    /// <summary>Builds an RSA key from p, q, e the way mbedtls_rsa_complete does (d = e^-1 mod lcm(p-1, q-1)).</summary>
    public static CardKey RsaFromPrimes(BigInteger p, BigInteger q, BigInteger e)
    {
        var p1 = p.Subtract(BigInteger.One);
        var q1 = q.Subtract(BigInteger.One);
        var lcm = p1.Multiply(q1).Divide(p1.Gcd(q1));
        var d = e.ModInverse(lcm);
        return new CardKey { Kind = CardKeyKind.Rsa, N = p.Multiply(q), E = e, D = d };
    }

    /// <summary>Unsigned big-endian without leading zeros (mbedtls_mpi_write_binary of mpi_size).</summary>
    public static byte[] Mpi(BigInteger v)
    {
        if (v.SignValue == 0) return Array.Empty<byte>();
        return v.ToByteArrayUnsigned();
    }

    public static byte[] FixedLength(BigInteger v, int len)
    {
        var b = v.ToByteArrayUnsigned();
        if (b.Length == len) return b;
        if (b.Length > len) return b[(b.Length - len)..];
        var r = new byte[len];
        Buffer.BlockCopy(b, 0, r, len - b.Length, b.Length);
        return r;
    }
}
