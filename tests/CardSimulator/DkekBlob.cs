using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Macs;
using Org.BouncyCastle.Crypto.Parameters;
using BigInteger = Org.BouncyCastle.Math.BigInteger;

namespace PicoHsm.CardSimulator;

public enum BlobError { WrongKcv, BadMac, BadFormat, BadKey }

public sealed class BlobException : Exception
{
    public BlobError Error { get; }
    public BlobException(BlobError e, string msg) : base(msg) { Error = e; }
}

/// <summary>
/// The firmware's DKEK key blob (what WRAP KEY answers and UNWRAP KEY takes), written for the
/// simulator from the published format (pico-hsm kek.c behaviour): KCV | type | OID | allowed algorithms |
/// access conditions | key OID | AES-256-CBC(Kenc, IV 0) | AES-CMAC(Kmac).
/// </summary>
public static class DkekBlob
{
    public static readonly byte[] OidRsa = Hex.Parse("04007F00070202020102");
    public static readonly byte[] OidEc = Hex.Parse("04007F00070202020203");
    public static readonly byte[] OidAes = Hex.Parse("6086480165030401");

    public const byte TypeRsa = 5, TypeRsaCrt = 6, TypeEc = 12, TypeAes = 15;

    public static byte[] Kcv(byte[] dkek) => SHA256.HashData(dkek)[..8];
    public static byte[] Kenc(byte[] dkek) => SHA256.HashData(Tlv.Concat(dkek, new byte[] { 0, 0, 0, 1 }));
    public static byte[] Kmac(byte[] dkek) => SHA256.HashData(Tlv.Concat(dkek, new byte[] { 0, 0, 0, 2 }));

    public static byte[] Cmac(byte[] key, ReadOnlySpan<byte> data)
    {
        var mac = new CMac(new AesEngine(), 128);
        mac.Init(new KeyParameter(key));
        var d = data.ToArray();
        mac.BlockUpdate(d, 0, d.Length);
        var r = new byte[16];
        mac.DoFinal(r, 0);
        return r;
    }

    static void Put16(MemoryStream ms, int v) { ms.WriteByte((byte)(v >> 8)); ms.WriteByte((byte)v); }
    static void Field(MemoryStream ms, byte[] v) { Put16(ms, v.Length); ms.Write(v); }

    /// <summary>Wraps <paramref name="key"/> like the firmware; <paramref name="random8"/> are the 8 leading random bytes.</summary>
    public static byte[] Encode(byte[] dkek, CardKey key, byte[] random8)
    {
        if (random8.Length != 8) throw new ArgumentException("8 random bytes expected");
        var kb = new MemoryStream();
        kb.Write(random8);
        byte type;
        byte[] oid;
        switch (key.Kind)
        {
            case CardKeyKind.Aes:
                type = TypeAes; oid = OidAes;
                Put16(kb, key.AesKey!.Length);
                kb.Write(key.AesKey);
                break;
            case CardKeyKind.Rsa:
                type = TypeRsa; oid = OidRsa;
                Put16(kb, ((key.N!.BitLength + 7) / 8) * 8);
                Field(kb, CardKey.Mpi(key.D!));
                Field(kb, CardKey.Mpi(key.N!));
                Field(kb, CardKey.Mpi(key.E!));
                break;
            default:
            {
                type = TypeEc; oid = OidEc;
                var c = key.Curve();
                var p = c.Curve.Field.Characteristic;
                Put16(kb, CardKey.Mpi(p).Length * 8);
                // mbedtls keeps A unset (0) for the NIST curves (A = -3 is implicit): length 0
                var a = CardKey.IsNist(key.CurveName!) ? Array.Empty<byte>() : CardKey.Mpi(c.Curve.A.ToBigInteger());
                Field(kb, a);
                Field(kb, CardKey.Mpi(c.Curve.B.ToBigInteger()));
                Field(kb, CardKey.Mpi(p));
                Field(kb, CardKey.Mpi(c.N));
                Field(kb, c.G.Normalize().GetEncoded(false));
                Field(kb, CardKey.Mpi(key.EcD!));
                Field(kb, key.EcPublicPoint());
                break;
            }
        }
        var plain = kb.ToArray();
        int padded = (plain.Length + 15) / 16 * 16;
        var buf = new byte[padded];
        Buffer.BlockCopy(plain, 0, buf, 0, plain.Length);
        if (plain.Length < padded) buf[plain.Length] = 0x80; // ISO 9797-1 M2, omitted when aligned (Pico)

        using var aes = Aes.Create();
        aes.Key = Kenc(dkek);
        var ct = aes.EncryptCbc(buf, new byte[16], PaddingMode.None);

        var head = new MemoryStream();
        head.Write(Kcv(dkek));
        head.WriteByte(type);
        Field(head, oid);
        Field(head, key.AllowedAlgorithms ?? Array.Empty<byte>());
        Put16(head, 0); // access conditions
        Put16(head, 0); // key OID
        head.Write(ct);
        var body = head.ToArray();
        return Tlv.Concat(body, Cmac(Kmac(dkek), body));
    }

    public sealed class Decoded
    {
        public required CardKey Key { get; init; }
        public byte KeyType { get; init; }
        public required byte[] Random8 { get; init; }
        public required byte[] Allowed { get; init; }
        public int KeySizeField { get; init; }
    }

    public static byte KeyTypeOf(byte[] blob) => blob.Length > 8 ? blob[8] : (byte)0;

    /// <summary>Unwraps a blob; throws <see cref="BlobException"/> with the firmware's failure reasons.</summary>
    public static Decoded Decode(byte[] dkek, byte[] blob)
    {
        if (blob.Length < 8 + 1 + 8 + 16 + 16) throw new BlobException(BlobError.BadFormat, "blob too short");
        if (!blob.AsSpan(0, 8).SequenceEqual(Kcv(dkek))) throw new BlobException(BlobError.WrongKcv, "KCV does not match the DKEK");
        var mac = Cmac(Kmac(dkek), blob.AsSpan(0, blob.Length - 16));
        if (!mac.AsSpan().SequenceEqual(blob.AsSpan(blob.Length - 16))) throw new BlobException(BlobError.BadMac, "CMAC mismatch");
        byte type = blob[8];
        int ofs = 9;
        int Get16(byte[] b, int o) => o + 2 <= b.Length ? (b[o] << 8) | b[o + 1] : throw new BlobException(BlobError.BadFormat, "truncated");
        int oidLen = Get16(blob, ofs);
        var oid = blob.AsSpan(ofs + 2, oidLen).ToArray(); ofs += 2 + oidLen;
        int allowedLen = Get16(blob, ofs);
        var allowed = blob.AsSpan(ofs + 2, allowedLen).ToArray(); ofs += 2 + allowedLen;
        int acLen = Get16(blob, ofs); ofs += 2 + acLen;
        int koLen = Get16(blob, ofs); ofs += 2 + koLen;
        int ctLen = blob.Length - 16 - ofs;
        if (ctLen <= 0 || ctLen % 16 != 0) throw new BlobException(BlobError.BadFormat, "ciphertext not block aligned");
        switch (type)
        {
            case TypeRsa or TypeRsaCrt when !oid.AsSpan().SequenceEqual(OidRsa):
            case TypeEc when !oid.AsSpan().SequenceEqual(OidEc):
            case TypeAes when !oid.AsSpan().SequenceEqual(OidAes):
                throw new BlobException(BlobError.BadFormat, "unexpected algorithm OID for key type " + type);
            case TypeRsa or TypeRsaCrt or TypeEc or TypeAes: break;
            default: throw new BlobException(BlobError.BadFormat, "unknown key type " + type);
        }
        using var aes = Aes.Create();
        aes.Key = Kenc(dkek);
        var kb = aes.DecryptCbc(blob.AsSpan(ofs, ctLen), new byte[16], PaddingMode.None);
        int p = 8;
        int keySize = Get16(kb, p); p += 2;
        byte[] Next()
        {
            int l = Get16(kb, p); p += 2;
            if (p + l > kb.Length) throw new BlobException(BlobError.BadFormat, "field exceeds plaintext");
            var v = kb.AsSpan(p, l).ToArray(); p += l;
            return v;
        }
        CardKey key;
        try
        {
            switch (type)
            {
                case TypeRsa:
                {
                    var d = new BigInteger(1, Next());
                    var n = new BigInteger(1, Next());
                    var e = new BigInteger(1, Next());
                    key = new CardKey { Kind = CardKeyKind.Rsa, N = n, E = e, D = d };
                    // sanity: (m^e)^d == m
                    var m = BigInteger.ValueOf(0x1234567);
                    if (!m.ModPow(e, n).ModPow(d, n).Equals(m)) throw new BlobException(BlobError.BadKey, "RSA key inconsistent");
                    break;
                }
                case TypeRsaCrt:
                {
                    Next(); Next(); // dp1, dq1
                    var pp = new BigInteger(1, Next());
                    Next(); // pq
                    var q = new BigInteger(1, Next());
                    Next(); // n
                    var e = new BigInteger(1, Next());
                    key = CardKey.RsaFromPrimes(pp, q, e);
                    break;
                }
                case TypeEc:
                {
                    Next(); Next(); // a, b
                    var prime = Next();
                    var curve = CardKey.CurveFromPrime(prime) ?? throw new BlobException(BlobError.BadKey, "unknown curve");
                    Next(); Next(); // order, G
                    var d = new BigInteger(1, Next());
                    key = new CardKey { Kind = CardKeyKind.Ec, CurveName = curve, EcD = d };
                    byte[] q = Array.Empty<byte>();
                    if (p + 2 <= kb.Length) q = Next();
                    if (q.Length > 0 && !q.AsSpan().SequenceEqual(key.EcPublicPoint()))
                        throw new BlobException(BlobError.BadKey, "EC public point does not match d");
                    break;
                }
                default:
                {
                    if (keySize != 16 && keySize != 24 && keySize != 32 && keySize != 64)
                        throw new BlobException(BlobError.BadKey, "bad AES key size " + keySize);
                    if (p + keySize > kb.Length) throw new BlobException(BlobError.BadFormat, "AES key truncated");
                    key = new CardKey { Kind = CardKeyKind.Aes, AesKey = kb.AsSpan(p, keySize).ToArray() };
                    break;
                }
            }
        }
        catch (BlobException) { throw; }
        catch (Exception ex) { throw new BlobException(BlobError.BadKey, ex.Message); }
        key.AllowedAlgorithms = allowed.Length > 0 ? allowed : null;
        return new Decoded { Key = key, KeyType = type, Random8 = kb[..8], Allowed = allowed, KeySizeField = keySize };
    }
}
