#if NETSTANDARD2_0
// SubjectPublicKeyInfo and PKCS#8 import/export (.NET Core 3) and DSASignatureFormat (.NET 5)
// for .NET Framework, decoded and encoded with BouncyCastle.
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.X509;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.X509;
using BcBigInteger = Org.BouncyCastle.Math.BigInteger;

namespace PicoHsm.Compat;

internal enum DSASignatureFormat
{
    IeeeP1363FixedFieldConcatenation = 0,
    Rfc3279DerSequence = 1,
}

internal static class KeyEncodingExtensions
{
    extension(RSA rsa)
    {
        public void ImportSubjectPublicKeyInfo(ReadOnlySpan<byte> source, out int bytesRead)
        {
            bytesRead = EncodedLength(source);
            if (PublicKeyFactory.CreateKey(source.Slice(0, bytesRead).ToArray()) is not RsaKeyParameters k)
                throw new CryptographicException("The SubjectPublicKeyInfo is not an RSA key.");
            rsa.ImportParameters(new RSAParameters { Modulus = k.Modulus.ToByteArrayUnsigned(), Exponent = k.Exponent.ToByteArrayUnsigned() });
        }

        public byte[] ExportSubjectPublicKeyInfo()
        {
            var p = rsa.ExportParameters(false);
            var k = new RsaKeyParameters(false, new BcBigInteger(1, p.Modulus), new BcBigInteger(1, p.Exponent));
            return SubjectPublicKeyInfoFactory.CreateSubjectPublicKeyInfo(k).GetDerEncoded();
        }

        public void ImportPkcs8PrivateKey(ReadOnlySpan<byte> source, out int bytesRead)
        {
            bytesRead = EncodedLength(source);
            if (PrivateKeyFactory.CreateKey(source.Slice(0, bytesRead).ToArray()) is not RsaPrivateCrtKeyParameters k)
                throw new CryptographicException("The PKCS#8 key is not an RSA key.");
            int n = (k.Modulus.BitLength + 7) / 8, h = (n + 1) / 2;
            rsa.ImportParameters(new RSAParameters
            {
                Modulus = Fixed(k.Modulus, n), Exponent = k.PublicExponent.ToByteArrayUnsigned(), D = Fixed(k.Exponent, n),
                P = Fixed(k.P, h), Q = Fixed(k.Q, h), DP = Fixed(k.DP, h), DQ = Fixed(k.DQ, h), InverseQ = Fixed(k.QInv, h),
            });
        }
    }

    extension(ECDsa ec)
    {
        public void ImportSubjectPublicKeyInfo(ReadOnlySpan<byte> source, out int bytesRead)
        {
            bytesRead = EncodedLength(source);
            var spki = SubjectPublicKeyInfo.GetInstance(source.Slice(0, bytesRead).ToArray());
            if (PublicKeyFactory.CreateKey(spki) is not ECPublicKeyParameters k)
                throw new CryptographicException("The SubjectPublicKeyInfo is not an EC key.");
            string oid = DerObjectIdentifier.GetInstance(spki.Algorithm.Parameters).Id;
            ec.ImportParameters(Parameters(oid, k.Q, null));
        }

        public byte[] ExportSubjectPublicKeyInfo()
        {
            var p = ec.ExportParameters(false);
            string oid = CurveOid(p.Curve);
            var domain = ECNamedDomainParameters.LookupOid(new DerObjectIdentifier(oid));
            var q = domain.Curve.CreatePoint(new BcBigInteger(1, p.Q.X), new BcBigInteger(1, p.Q.Y));
            var k = new ECPublicKeyParameters("EC", q, new DerObjectIdentifier(oid));
            return SubjectPublicKeyInfoFactory.CreateSubjectPublicKeyInfo(k).GetDerEncoded();
        }

        public void ImportPkcs8PrivateKey(ReadOnlySpan<byte> source, out int bytesRead)
        {
            bytesRead = EncodedLength(source);
            var info = Org.BouncyCastle.Asn1.Pkcs.PrivateKeyInfo.GetInstance(source.Slice(0, bytesRead).ToArray());
            if (PrivateKeyFactory.CreateKey(info) is not ECPrivateKeyParameters k)
                throw new CryptographicException("The PKCS#8 key is not an EC key.");
            string oid = DerObjectIdentifier.GetInstance(info.PrivateKeyAlgorithm.Parameters).Id;
            var q = k.Parameters.G.Multiply(k.D).Normalize();
            ec.ImportParameters(Parameters(oid, q, k.D));
        }

        public byte[] ExportPkcs8PrivateKey()
        {
            var p = ec.ExportParameters(true);
            string oid = CurveOid(p.Curve);
            var domain = ECNamedDomainParameters.LookupOid(new DerObjectIdentifier(oid));
            var k = new ECPrivateKeyParameters("EC", new BcBigInteger(1, p.D), new DerObjectIdentifier(oid));
            return Org.BouncyCastle.Pkcs.PrivateKeyInfoFactory.CreatePrivateKeyInfo(k).GetDerEncoded();
        }

        public bool VerifyData(byte[] data, byte[] signature, HashAlgorithmName hashAlgorithm, DSASignatureFormat format) =>
            ec.VerifyData(data, ToP1363(ec, signature, format), hashAlgorithm);

        public bool VerifyHash(byte[] hash, byte[] signature, DSASignatureFormat format) =>
            ec.VerifyHash(hash, ToP1363(ec, signature, format));
    }

    extension(PublicKey key)
    {
        public byte[] ExportSubjectPublicKeyInfo()
        {
            var w = new AsnWriter(AsnEncodingRules.DER);
            using (w.PushSequence())
            {
                using (w.PushSequence())
                {
                    w.WriteObjectIdentifier(key.Oid.Value!);
                    byte[] parameters = key.EncodedParameters.RawData;
                    if (parameters.Length > 0) w.WriteEncodedValue(parameters);
                }
                w.WriteBitString(key.EncodedKeyValue.RawData);
            }
            return w.Encode();
        }
    }

    private static int EncodedLength(ReadOnlySpan<byte> source)
    {
        try
        {
            AsnDecoder.ReadEncodedValue(source, AsnEncodingRules.BER, out _, out _, out int consumed);
            return consumed;
        }
        catch (AsnContentException ex) { throw new CryptographicException("The key encoding is not valid DER.", ex); }
    }

    private static byte[] Fixed(BcBigInteger v, int length)
    {
        byte[] b = v.ToByteArrayUnsigned();
        if (b.Length >= length) return b;
        byte[] r = new byte[length];
        b.CopyTo(r, length - b.Length);
        return r;
    }

    private static ECParameters Parameters(string oid, Org.BouncyCastle.Math.EC.ECPoint q, BcBigInteger? d)
    {
        int size = (q.Curve.FieldSize + 7) / 8;
        q = q.Normalize();
        return new ECParameters
        {
            Curve = ECCurve.CreateFromValue(oid),
            Q = new ECPoint { X = Fixed(q.AffineXCoord.ToBigInteger(), size), Y = Fixed(q.AffineYCoord.ToBigInteger(), size) },
            D = d is null ? null : Fixed(d, size),
        };
    }

    private static string CurveOid(ECCurve curve)
    {
        if (!string.IsNullOrEmpty(curve.Oid?.Value)) return curve.Oid!.Value!;
        string? name = curve.Oid?.FriendlyName;
        return name switch
        {
            "nistP256" or "ECDSA_P256" or "secp256r1" => "1.2.840.10045.3.1.7",
            "nistP384" or "ECDSA_P384" or "secp384r1" => "1.3.132.0.34",
            "nistP521" or "ECDSA_P521" or "secp521r1" => "1.3.132.0.35",
            _ when name is not null => Oid.FromFriendlyName(name, OidGroup.All).Value!,
            _ => throw new CryptographicException("The EC key's curve has no name."),
        };
    }

    /// <summary>An ECDSA signature as r||s (what .NET Framework's VerifyHash/VerifyData take).</summary>
    private static byte[] ToP1363(ECDsa ec, byte[] signature, DSASignatureFormat format)
    {
        if (format == DSASignatureFormat.IeeeP1363FixedFieldConcatenation) return signature;
        int size = (ec.KeySize + 7) / 8;
        try
        {
            var r = new AsnReader(signature, AsnEncodingRules.DER);
            var seq = r.ReadSequence();
            byte[] rr = Fixed(new BcBigInteger(1, seq.ReadIntegerBytes().ToArray()), size);
            byte[] ss = Fixed(new BcBigInteger(1, seq.ReadIntegerBytes().ToArray()), size);
            seq.ThrowIfNotEmpty();
            r.ThrowIfNotEmpty();
            if (rr.Length != size || ss.Length != size) return [];
            return [.. rr, .. ss];
        }
        catch (AsnContentException) { return []; }
    }
}
#endif
