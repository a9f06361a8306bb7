using System.Formats.Asn1;

namespace PicoHsm.Keys;

/// <summary>The named curves the module knows by OID, with the names users type.</summary>
public static class EcCurves
{
    public sealed record Curve(string Name, string Oid, int Bits, string? AltName);

    public static readonly IReadOnlyList<Curve> Known = new Curve[]
    {
        new("P-256", "1.2.840.10045.3.1.7", 256, "prime256v1"),
        new("P-384", "1.3.132.0.34", 384, "secp384r1"),
        new("P-521", "1.3.132.0.35", 521, "secp521r1"),
        new("secp256k1", "1.3.132.0.10", 256, null),
        new("brainpoolP256r1", "1.3.36.3.3.2.8.1.1.7", 256, null),
        new("brainpoolP384r1", "1.3.36.3.3.2.8.1.1.11", 384, null),
        new("brainpoolP512r1", "1.3.36.3.3.2.8.1.1.13", 512, null),
    };

    public static Curve? FromOid(string oid) => Known.FirstOrDefault(c => c.Oid == oid);

    public static Curve? FromName(string name) => Known.FirstOrDefault(c =>
        string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase) ||
        string.Equals(c.AltName, name, StringComparison.OrdinalIgnoreCase) ||
        string.Equals(c.Oid, name, StringComparison.Ordinal));

    /// <summary>CKA_EC_PARAMS holds the DER of a named-curve OID; anything else is reported as unknown.</summary>
    public static Curve? FromEcParams(byte[]? der)
    {
        if (der is null || der.Length == 0) return null;
        try
        {
            return FromOid(new AsnReader(der, AsnEncodingRules.DER).ReadObjectIdentifier());
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    public static byte[] ToEcParams(Curve curve)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        w.WriteObjectIdentifier(curve.Oid);
        return w.Encode();
    }
}
