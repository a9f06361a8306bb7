using System.Numerics;
using System.Security.Cryptography;
using Org.BouncyCastle.Asn1.X9;
using PicoHsm.Common;

namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>
/// An elliptic curve the SmartCard-HSM / Pico HSM can hold. The firmware names a curve by nothing but
/// its prime p when it unwraps an EC key blob, so <see cref="FromPrime"/> is how a blob's curve is known.
/// Domain parameters come from BouncyCastle's named-curve tables.
/// </summary>
public sealed class ScHsmCurve
{
    private readonly X9ECParameters _parameters;

    private ScHsmCurve(string name, string secName)
    {
        Name = name;
        SecName = secName;
        _parameters = ECNamedCurveTable.GetByName(secName)
                      ?? throw new InvalidOperationException($"BouncyCastle does not know curve {secName}.");
        Oid = ECNamedCurveTable.GetOid(secName).Id;
        Prime = UnsignedBytes.Minimal(_parameters.Curve.Field.Characteristic.ToByteArrayUnsigned());
        A = UnsignedBytes.Minimal(_parameters.Curve.A.ToBigInteger().ToByteArrayUnsigned());
        B = UnsignedBytes.Minimal(_parameters.Curve.B.ToBigInteger().ToByteArrayUnsigned());
        Order = UnsignedBytes.Minimal(_parameters.N.ToByteArrayUnsigned());
        Generator = _parameters.G.GetEncoded(false);
        FieldSizeBits = _parameters.Curve.FieldSize;
        FieldSizeBytes = (FieldSizeBits + 7) / 8;

        // mbedTLS leaves A unset for the a = -3 curves (NIST) and a = 0 (Koblitz): the Pico then writes
        // a zero-length A into blobs. Brainpool curves carry their A.
        var a = UnsignedBytes.ToBigInteger(A);
        var p = UnsignedBytes.ToBigInteger(Prime);
        FirmwareOmitsA = a.IsZero || a == p - 3;
    }

    /// <summary>Common name: P-256, P-384, P-521, secp256k1, brainpoolP256r1 ...</summary>
    public string Name { get; }
    /// <summary>SEC / RFC 5639 name: secp256r1, brainpoolP256r1 ...</summary>
    public string SecName { get; }
    public string Oid { get; }
    public byte[] Prime { get; }
    public byte[] A { get; }
    public byte[] B { get; }
    public byte[] Order { get; }
    /// <summary>G uncompressed: 04 | x | y.</summary>
    public byte[] Generator { get; }
    public int FieldSizeBits { get; }
    public int FieldSizeBytes { get; }
    /// <summary>True when the firmware writes A with length 0 for this curve.</summary>
    public bool FirmwareOmitsA { get; }

    internal X9ECParameters BouncyParameters => _parameters;

    /// <summary>The .NET named curve (by OID).</summary>
    public ECCurve ToECCurve() => ECCurve.CreateFromValue(Oid);

    public static IReadOnlyList<ScHsmCurve> Known { get; } =
    [
        new("P-192", "secp192r1"),
        new("P-224", "secp224r1"),
        new("P-256", "secp256r1"),
        new("P-384", "secp384r1"),
        new("P-521", "secp521r1"),
        new("secp192k1", "secp192k1"),
        new("secp256k1", "secp256k1"),
        new("brainpoolP192r1", "brainpoolP192r1"),
        new("brainpoolP224r1", "brainpoolP224r1"),
        new("brainpoolP256r1", "brainpoolP256r1"),
        new("brainpoolP320r1", "brainpoolP320r1"),
        new("brainpoolP384r1", "brainpoolP384r1"),
        new("brainpoolP512r1", "brainpoolP512r1"),
    ];

    /// <summary>The curve whose prime is <paramref name="prime"/> (leading zeros ignored), or null.</summary>
    public static ScHsmCurve? FromPrime(ReadOnlySpan<byte> prime)
    {
        var trimmed = UnsignedBytes.TrimLeadingZeros(prime);
        foreach (var curve in Known)
            if (trimmed.SequenceEqual(curve.Prime)) return curve;
        return null;
    }

    /// <summary>The curve with this OID (dotted), or null.</summary>
    public static ScHsmCurve? FromOid(string? oid) => oid is null ? null : Known.FirstOrDefault(c => c.Oid == oid);

    /// <summary>The curve by common, SEC or .NET friendly name (P-256, secp256r1, nistP256, ECDSA_P256, prime256v1), or null.</summary>
    public static ScHsmCurve? FromName(string? name)
    {
        if (string.IsNullOrEmpty(name)) return null;
        var direct = Known.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase)
                                               || string.Equals(c.SecName, name, StringComparison.OrdinalIgnoreCase));
        if (direct is not null) return direct;
        string? alias = name.ToLowerInvariant() switch
        {
            "nistp256" or "ecdsa_p256" or "ecdh_p256" or "prime256v1" => "P-256",
            "nistp384" or "ecdsa_p384" or "ecdh_p384" => "P-384",
            "nistp521" or "ecdsa_p521" or "ecdh_p521" => "P-521",
            "prime192v1" => "P-192",
            _ => null,
        };
        return alias is null ? null : Known.First(c => c.Name == alias);
    }

    /// <summary>The curve of .NET parameters: named (OID or name) or explicit prime curve (by p).</summary>
    public static ScHsmCurve? FromECCurve(ECCurve curve)
    {
        if (curve.IsNamed)
            return FromOid(curve.Oid.Value) ?? FromName(curve.Oid.FriendlyName);
        if (curve.IsPrime && curve.Prime is not null)
            return FromPrime(curve.Prime);
        return null;
    }

    public override string ToString() => Name;
}
