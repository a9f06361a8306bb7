using System.Formats.Asn1;
using System.Security.Cryptography;

namespace PicoHsm.Keys;

/// <summary>SubjectPublicKeyInfo DER built from PKCS#11 attributes, and its SHA-256 fingerprint.</summary>
public static class PublicKeyInfo
{
    private const string EcPublicKeyOid = "1.2.840.10045.2.1";

    private const string RsaEncryptionOid = "1.2.840.113549.1.1.1";

    /// <summary>
    /// The SubjectPublicKeyInfo of an RSA key (rsaEncryption, NULL parameters, RSAPublicKey), DER as
    /// .NET's ExportSubjectPublicKeyInfo writes it, encoded directly: a listing builds one per key,
    /// and making an RSA object for each is most of a listing's managed cost.
    /// </summary>
    public static byte[] FromRsa(byte[] modulus, byte[] exponent)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            using (w.PushSequence())
            {
                w.WriteObjectIdentifier(RsaEncryptionOid);
                w.WriteNull();
            }
            var key = new AsnWriter(AsnEncodingRules.DER);
            using (key.PushSequence())
            {
                key.WriteIntegerUnsigned(TrimZeros(modulus));
                key.WriteIntegerUnsigned(TrimZeros(exponent));
            }
            w.WriteBitString(key.Encode());
        }
        return w.Encode();
    }

    /// <summary>
    /// <paramref name="ecPoint"/> may be the raw 04|X|Y point or, as PKCS#11 v2.20+ modules
    /// (SoftHSM2, OpenSC) return CKA_EC_POINT, that point wrapped in a DER OCTET STRING.
    /// </summary>
    public static byte[] FromEc(byte[] ecParams, byte[] ecPoint)
    {
        byte[] point = UnwrapEcPoint(ecPoint);
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            using (w.PushSequence())
            {
                w.WriteObjectIdentifier(EcPublicKeyOid);
                w.WriteEncodedValue(ecParams);
            }
            w.WriteBitString(point);
        }
        return w.Encode();
    }

    public static byte[] UnwrapEcPoint(byte[] ecPoint)
    {
        if (ecPoint.Length > 2 && ecPoint[0] == 0x04)
        {
            // Either a raw uncompressed point (odd length: 1 + 2n) or an OCTET STRING; try DER first.
            try
            {
                var r = new AsnReader(ecPoint, AsnEncodingRules.DER);
                byte[] inner = r.ReadOctetString();
                if (!r.HasData && inner.Length > 0 && (inner[0] == 0x04 || inner[0] == 0x02 || inner[0] == 0x03))
                    return inner;
            }
            catch (AsnContentException) { }
        }
        return ecPoint;
    }

    /// <summary>CKA_EC_POINT as SoftHSM2 and OpenSC want it: the point inside a DER OCTET STRING.</summary>
    public static byte[] WrapEcPoint(byte[] point)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        w.WriteOctetString(point);
        return w.Encode();
    }

    public static string Fingerprint(byte[] spki) => Convert.ToHexString(SHA256.HashData(spki)).ToLowerInvariant();

    private static byte[] TrimZeros(byte[] v)
    {
        int i = 0;
        while (i < v.Length - 1 && v[i] == 0) i++;
        return i == 0 ? v : v[i..];
    }
}
