using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Encodings;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;
using Org.BouncyCastle.Security;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace PicoHsm.CardSimulator;

/// <summary>Card-side cryptography: signatures, decryption, CV certificate requests, PRKDs.</summary>
public static class CardCrypto
{
    public static IDigest? DigestFor(int nibble) => nibble switch
    {
        0 => null,
        1 => new Sha1Digest(),
        2 => new Sha224Digest(),
        3 => new Sha256Digest(),
        4 => new Sha384Digest(),
        5 => new Sha512Digest(),
        _ => throw new ArgumentException("hash"),
    };

    public static byte[] Hash(IDigest d, byte[] data)
    {
        d.BlockUpdate(data, 0, data.Length);
        var r = new byte[d.GetDigestSize()];
        d.DoFinal(r, 0);
        return r;
    }

    public static IDigest DigestForLength(int len) => len switch
    {
        20 => new Sha1Digest(),
        28 => new Sha224Digest(),
        32 => new Sha256Digest(),
        48 => new Sha384Digest(),
        64 => new Sha512Digest(),
        _ => throw new ArgumentException("no hash of length " + len),
    };

    /// <summary>(digest, hash) from a DER DigestInfo, or from a bare hash by its length.</summary>
    public static (IDigest, byte[]) SplitDigestInfo(byte[] data)
    {
        try
        {
            if (data.Length > 0 && data[0] == 0x30)
            {
                var di = Org.BouncyCastle.Asn1.X509.DigestInfo.GetInstance(Asn1Object.FromByteArray(data));
                var hash = di.Digest.GetOctets();
                var d = DigestUtilities.GetDigest(di.DigestAlgorithm.Algorithm);
                if (d.GetDigestSize() == hash.Length) return (d, hash);
            }
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or SecurityUtilityException or InvalidCastException) { }
        return (DigestForLength(data.Length), data);
    }

    public static BigInteger[] EcdsaSign(CardKey key, byte[] hash, SecureRandom rnd)
    {
        var s = new ECDsaSigner();
        s.Init(true, new ParametersWithRandom(key.EcPrivate(), rnd));
        return s.GenerateSignature(hash);
    }

    public static byte[] EcdsaDer(BigInteger[] rs) =>
        new DerSequence(new DerInteger(rs[0]), new DerInteger(rs[1])).GetEncoded();

    public static byte[] EcdsaPlain(CardKey key, BigInteger[] rs)
    {
        int n = (key.Curve().N.BitLength + 7) / 8;
        return Tlv.Concat(CardKey.FixedLength(rs[0], n), CardKey.FixedLength(rs[1], n));
    }

    /// <summary>Raw RSA private operation (input left-padded to the modulus length).</summary>
    public static byte[] RsaRaw(CardKey key, byte[] input)
    {
        int k = (key.N!.BitLength + 7) / 8;
        var m = new BigInteger(1, input);
        if (m.CompareTo(key.N) >= 0) throw new ArgumentException("input >= modulus");
        return CardKey.FixedLength(m.ModPow(key.D, key.N), k);
    }

    /// <summary>PKCS#1 v1.5 block type 1 over the given (DigestInfo) input.</summary>
    public static byte[] RsaPkcs1(CardKey key, byte[] input)
    {
        var enc = new Pkcs1Encoding(new RsaEngine());
        enc.Init(true, key.RsaPrivate());
        return enc.ProcessBlock(input, 0, input.Length);
    }

    public static byte[] RsaPkcs1WithHash(CardKey key, IDigest digest, byte[] message)
    {
        var s = new RsaDigestSigner(digest);
        s.Init(true, key.RsaPrivate());
        s.BlockUpdate(message, 0, message.Length);
        return s.GenerateSignature();
    }

    public static byte[] RsaPss(CardKey key, IDigest digest, byte[] data, bool dataIsHash, SecureRandom rnd)
    {
        int saltLen = digest.GetDigestSize();
        PssSigner s = dataIsHash
            ? PssSigner.CreateRawSigner(new RsaEngine(), digest)
            : new PssSigner(new RsaEngine(), digest, saltLen);
        s.Init(true, new ParametersWithRandom(key.RsaPrivate(), rnd));
        s.BlockUpdate(data, 0, data.Length);
        return s.GenerateSignature();
    }

    public static byte[] RsaDecrypt(CardKey key, byte alg, byte[] c)
    {
        switch (alg)
        {
            case 0x21: return RsaRaw(key, c);
            case 0x22:
            {
                var e = new Pkcs1Encoding(new RsaEngine());
                e.Init(false, key.RsaPrivate());
                return e.ProcessBlock(c, 0, c.Length);
            }
            case 0x23:
            {
                var e = new OaepEncoding(new RsaEngine(), new Sha256Digest());
                e.Init(false, key.RsaPrivate());
                return e.ProcessBlock(c, 0, c.Length);
            }
            default: throw new ArgumentException("alg");
        }
    }

    static byte[] MinOne(BigInteger v) { var b = CardKey.Mpi(v); return b.Length == 0 ? new byte[] { 0 } : b; }

    /// <summary>The public key template 7F49 of a CV certificate (request).</summary>
    public static byte[] PublicKeyTemplate(CardKey key, byte[] oid)
    {
        if (key.Kind == CardKeyKind.Rsa)
            return Tlv.Build(0x7F49, Tlv.Build(0x06, oid), Tlv.Build(0x81, CardKey.Mpi(key.N!)), Tlv.Build(0x82, CardKey.Mpi(key.E!)));
        var c = key.Curve();
        int fb = key.FieldBytes;
        var p = c.Curve.Field.Characteristic;
        return Tlv.Build(0x7F49,
            Tlv.Build(0x06, oid),
            Tlv.Build(0x81, CardKey.FixedLength(p, fb)),
            Tlv.Build(0x82, MinOne(c.Curve.A.ToBigInteger())),
            Tlv.Build(0x83, MinOne(c.Curve.B.ToBigInteger())),
            Tlv.Build(0x84, c.G.Normalize().GetEncoded(false)),
            Tlv.Build(0x85, CardKey.Mpi(c.N)),
            Tlv.Build(0x86, key.EcPublicPoint()),
            Tlv.Build(0x87, MinOne(c.H)));
    }

    /// <summary>
    /// An authenticated CV certificate request as the firmware answers GENERATE ASYMMETRIC KEY PAIR:
    /// 67 { 7F21 { 7F4E {5F29, 42 CAR, 7F49, 5F20 CHR}, 5F37 inner signature }, 42 outer CAR, 5F37 outer signature }.
    /// </summary>
    public static byte[] BuildRequest(CardKey key, byte[] oid, byte[] cpi, byte[] car, byte[] chr,
        CardKey deviceKey, byte[] outerCar, SecureRandom rnd)
    {
        var body = Tlv.Build(0x7F4E, Tlv.Build(0x5F29, cpi), Tlv.Build(0x42, car), PublicKeyTemplate(key, oid), Tlv.Build(0x5F20, chr));
        byte[] innerSig;
        if (key.Kind == CardKeyKind.Rsa)
        {
            innerSig = RsaPkcs1WithHash(key, new Sha256Digest(), body);
        }
        else
        {
            int hashId = oid.Length == 10 ? oid[9] : 3;
            IDigest d = hashId switch { 1 => new Sha1Digest(), 2 => new Sha224Digest(), 4 => new Sha384Digest(), 5 => new Sha512Digest(), _ => new Sha256Digest() };
            innerSig = EcdsaPlain(key, EcdsaSign(key, Hash(d, body), rnd));
        }
        var inner = Tlv.Build(0x7F21, body, Tlv.Build(0x5F37, innerSig));
        var outerCarTlv = Tlv.Build(0x42, outerCar);
        var outerSig = EcdsaPlain(deviceKey, EcdsaSign(deviceKey, Hash(new Sha256Digest(), Tlv.Concat(inner, outerCarTlv)), rnd));
        return Tlv.Build(0x67, inner, outerCarTlv, Tlv.Build(0x5F37, outerSig));
    }

    /// <summary>A PKCS#15 private key description in the firmware's shape (asn1_build_prkd_generic).</summary>
    public static byte[] BuildPrkd(CardKeyKind kind, byte[] label, byte[] keyId, int sizeBits)
    {
        int firstTag; byte[] usage;
        switch (kind)
        {
            case CardKeyKind.Ec: firstTag = 0xA0; usage = new byte[] { 0x07, 0x20, 0x80 }; break;
            case CardKeyKind.Rsa: firstTag = 0x30; usage = new byte[] { 0x02, 0x74 }; break;
            default: firstTag = 0xA8; usage = new byte[] { 0x07, 0xC0, 0x10 }; break;
        }
        var seq1 = Tlv.Build(0x30, Tlv.Build(0x0C, label));
        var seq2 = Tlv.Build(0x30, Tlv.Build(0x04, keyId), Tlv.Build(0x03, usage));
        var size = new[] { (byte)(sizeBits >> 8), (byte)sizeBits };
        if (kind == CardKeyKind.Aes)
        {
            var seq3 = Tlv.Build(0xA0, Tlv.Build(0x30, Tlv.Build(0x02, size)));
            var seq4a = Tlv.Build(0xA1, Tlv.Build(0x30, Tlv.Build(0x30, Tlv.Build(0x04))));
            return Tlv.Build(firstTag, seq1, seq2, seq3, seq4a);
        }
        var seq4 = Tlv.Build(0xA1, Tlv.Build(0x30, Tlv.Build(0x30, Tlv.Build(0x04)), Tlv.Build(0x02, size)));
        return Tlv.Build(firstTag, seq1, seq2, seq4);
    }
}
