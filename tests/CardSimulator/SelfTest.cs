using System.Security.Cryptography;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;
using Org.BouncyCastle.Security;

namespace PicoHsm.CardSimulator;

/// <summary>Checks of the simulator against the interop vectors made with the real firmware.</summary>
public static class SelfTest
{
    public static readonly byte[] Share1 = Hex.Parse("50996a884581fd3cb5d836f12f071a192ad4a18ccc42518f2da80ebafd3375e6");
    public static readonly byte[] Share2 = Hex.Parse("3ab0ffc72d26db6ea3cdab7dd3df3ae3f03c9ac65cef2d7ad33e4fbcbb61fa32");
    public const string ExpectedKcv = "D5C1A339CD295797";

    static int failures;
    static TextWriter log = Console.Out;

    static void Check(bool ok, string what)
    {
        log.WriteLine((ok ? "ok   " : "FAIL ") + what);
        if (!ok) failures++;
    }

    static void CheckSw(byte[] r, ushort sw, string what) =>
        Check(r.Length >= 2 && ((r[^2] << 8) | r[^1]) == sw, $"{what}: SW {Hex.Of(r.Length >= 2 ? r[^2..] : r)} (want {sw:X4})");

    /// <summary>The key blob (OCTET STRING content) of an sc-hsm-tool .wky file.</summary>
    public static byte[] BlobOfWky(byte[] wky)
    {
        var seq = Tlv.Parse(wky).Single(t => t.Tag == 0x30);
        return seq.Children().First(t => t.Tag == 0x04).Value;
    }

    public static bool Run(string vectors, TextWriter output)
    {
        log = output;
        failures = 0;
        var dkek = new byte[32];
        for (int i = 0; i < 32; i++) dkek[i] = (byte)(Share1[i] ^ Share2[i]);
        Check(Hex.Of(DkekBlob.Kcv(dkek)) == ExpectedKcv, "KCV of share1 XOR share2 = " + ExpectedKcv);

        // ---- blob codec against the vectors
        foreach (var name in new[] { "rsa2048", "ec256", "aes256", "offline-rsa2048-crt" })
        {
            var path = Path.Combine(vectors, name + ".wky");
            if (!File.Exists(path)) { Check(false, "vector missing: " + path); continue; }
            var blob = BlobOfWky(File.ReadAllBytes(path));
            DkekBlob.Decoded dec;
            try { dec = DkekBlob.Decode(dkek, blob); }
            catch (BlobException ex) { Check(false, $"{name}: decode: {ex.Message}"); continue; }
            Check(true, $"{name}: decodes (type {dec.KeyType}, {dec.Key.SizeBits} bits)");
            var pubPath = Path.Combine(vectors, name + ".pub.der");
            if (File.Exists(pubPath))
            {
                var pub = PublicKeyFactory.CreateKey(File.ReadAllBytes(pubPath));
                if (pub is RsaKeyParameters rsa)
                    Check(rsa.Modulus.Equals(dec.Key.N) && rsa.Exponent.Equals(dec.Key.E), $"{name}: n, e match {name}.pub.der");
                else if (pub is ECPublicKeyParameters ec)
                    Check(ec.Q.GetEncoded(false).AsSpan().SequenceEqual(dec.Key.EcPublicPoint()), $"{name}: d*G matches {name}.pub.der");
            }
            if (dec.Key.Kind == CardKeyKind.Aes)
            {
                using var aes = Aes.Create();
                aes.Key = dec.Key.AesKey!;
                var ct = aes.EncryptCbc(new byte[32], new byte[16], PaddingMode.None);
                Check(Hex.Of(ct) == "ADD4A43267EFCE014B2EE2B5AAFB4DB54734125E53242FC5F936CB1919E8D2A3", $"{name}: AES-CBC(0^32) as on the device");
            }
            var again = DkekBlob.Encode(dkek, dec.Key, dec.Random8);
            if (dec.KeyType == DkekBlob.TypeRsaCrt)
            {
                var d2 = DkekBlob.Decode(dkek, again);
                Check(again[8] == DkekBlob.TypeRsa && d2.Key.N!.Equals(dec.Key.N), $"{name}: re-wrapped as type 5 (d, n, e)");
            }
            else Check(again.AsSpan().SequenceEqual(blob), $"{name}: re-encoding with the same 8 random bytes is byte-identical");

            var bad = (byte[])blob.Clone();
            bad[^1] ^= 1;
            try { DkekBlob.Decode(dkek, bad); Check(false, $"{name}: bad CMAC rejected"); }
            catch (BlobException ex) { Check(ex.Error == BlobError.BadMac, $"{name}: bad CMAC rejected ({ex.Error})"); }
        }

        // ---- the card, through APDUs
        byte[]? nextRandom = null;
        var sim = new ScHsmSimulator(new ScHsmOptions { RandomBytes = n => nextRandom != null && nextRandom.Length == n ? nextRandom : RandomNumberGenerator.GetBytes(n) });
        byte[] Tx(string hex) => sim.Process(Hex.Parse(hex));
        byte[] Ext(string head, byte[] data, bool le = false) =>
            sim.Process(Tlv.Concat(Hex.Parse(head), new byte[] { 0, (byte)(data.Length >> 8), (byte)data.Length }, data, le ? new byte[] { 0, 0 } : Array.Empty<byte>()));

        CheckSw(Tx("00A4040007627601FF000000"), 0x6A82, "SELECT coolkey AID");
        var fci = Tx("00A404000BE82B0601040181C31F020100");
        Check(Hex.Of(fci) == "62228102000082010183020000840B2B0601040181C31F0201308A0105850500 00FF0600 9000".Replace(" ", ""), "SELECT applet FCP (blank)");
        CheckSw(Tx("00A4040C0BE82B0601040181C31F0201"), 0x6A86, "SELECT applet P2=0C");
        sim.Reset();
        CheckSw(Tx("00200081"), 0x6A82, "VERIFY before any SELECT (no applet) -> 6A82");
        CheckSw(Tx("00A4040C0BE82B0601040181C31F0201"), 0x6A82, "SELECT applet P2=0C without a selected applet -> 6A82");
        Tx("00A404000BE82B0601040181C31F020100");
        CheckSw(Tx("80500000 1C 80020001 8106363438323139 82083537363231383830 910103 920102".Replace(" ", "")), 0x9000, "INITIALIZE");
        Tx("00A404000BE82B0601040181C31F020100");
        var st = Tx("8052000020" + Hex.Of(Share1) + "00");
        Check(Hex.Of(st) == "020100000000000000009000", "import share 1 -> 02 01, KCV zeros without PIN");
        st = Tx("8052000020" + Hex.Of(Share2) + "00");
        Check(Hex.Of(st) == "020000000000000000009000", "import share 2 -> 02 00, KCV zeros without PIN");
        CheckSw(Tx("8052000020" + Hex.Of(Share2) + "00"), 0x6986, "third share refused");
        CheckSw(Tx("0020008100"[..8]), 0x63C3, "PIN status 63C3");
        CheckSw(Tx("0020008106313131313131"), 0x63C2, "wrong PIN -> 63C2");
        CheckSw(Tx("0020008106363438323139"), 0x9000, "VERIFY PIN");
        CheckSw(Tx("00200081"), 0x9000, "PIN status verified");
        st = Tx("805200000000"[..8] + "00");
        Check(Hex.Of(st) == "0200" + ExpectedKcv + "9000", "key domain status shows KCV after VERIFY");
        CheckSw(Tx("00200085"), 0x6A88, "VERIFY 85 -> 6A88");

        // unwrap the EC vector into key 20, rewrap byte-identically, sign, check
        var ecBlob = BlobOfWky(File.ReadAllBytes(Path.Combine(vectors, "ec256.wky")));
        var ecDec = DkekBlob.Decode(dkek, ecBlob);
        CheckSw(Ext("80741493", ecBlob), 0x9000, "UNWRAP ec256 into key 0x14");
        var enumr = Tx("80580000000000");
        Check(Hex.Of(enumr).Contains("CC14") && Hex.Of(enumr).Contains("C414"), "ENUMERATE lists CC14/C414: " + Hex.Of(enumr));
        nextRandom = ecDec.Random8;
        var wrapped = Tx("80721492000000");
        nextRandom = null;
        Check(wrapped.Length > 2 && wrapped[..^2].AsSpan().SequenceEqual(ecBlob), "WRAP key 0x14 with the same random bytes = ec256 blob");
        var msg = File.ReadAllBytes(Path.Combine(vectors, "msg.txt"));
        var sig = sim.Process(Tlv.Concat(Hex.Parse("80681473"), new byte[] { 0, 0, (byte)msg.Length }, msg, new byte[] { 2, 0 }));
        CheckSw(sig, 0x9000, "SIGN ECDSA-SHA256 with key 0x14");
        try
        {
            var seq = (Asn1Sequence)Asn1Object.FromByteArray(sig[..^2]);
            var pub = (ECPublicKeyParameters)PublicKeyFactory.CreateKey(File.ReadAllBytes(Path.Combine(vectors, "ec256.pub.der")));
            var v = new ECDsaSigner();
            v.Init(false, pub);
            Check(v.VerifySignature(CardCrypto.Hash(new Sha256Digest(), msg), DerInteger.GetInstance(seq[0]).Value, DerInteger.GetInstance(seq[1]).Value),
                "signature verifies with ec256.pub.der");
        }
        catch (Exception ex) { Check(false, "signature parse: " + ex.Message); }

        // the other vectors
        foreach (var (name, id) in new[] { ("rsa2048", "15"), ("aes256", "16"), ("offline-rsa2048-crt", "17") })
        {
            var b = BlobOfWky(File.ReadAllBytes(Path.Combine(vectors, name + ".wky")));
            CheckSw(Ext($"8074{id}93", b), 0x9000, $"UNWRAP {name} into key 0x{id}");
        }
        var rsaDec = DkekBlob.Decode(dkek, BlobOfWky(File.ReadAllBytes(Path.Combine(vectors, "rsa2048.wky"))));
        nextRandom = rsaDec.Random8;
        var rw = Tx("80721592000000");
        nextRandom = null;
        Check(rw.Length > 2 && rw[..^2].AsSpan().SequenceEqual(BlobOfWky(File.ReadAllBytes(Path.Combine(vectors, "rsa2048.wky")))), "WRAP rsa2048 again = vector blob");
        {
            // short Le: the 587-byte blob comes in 256-byte pieces with 61xx and GET RESPONSE
            nextRandom = rsaDec.Random8;
            var parts = new List<byte>();
            var r = Tx("8072159200");
            nextRandom = null;
            int rounds = 0;
            while (r.Length >= 2 && r[^2] == 0x61 && rounds++ < 10)
            {
                parts.AddRange(r[..^2]);
                r = Tx("00C00000" + (r[^1] == 0 ? "00" : r[^1].ToString("X2")));
            }
            parts.AddRange(r[..^2]);
            Check(rounds == 2 && r[^2] == 0x90 && parts.ToArray().AsSpan().SequenceEqual(rw[..^2]), "WRAP with short Le: 61xx + GET RESPONSE deliver the whole blob");
        }
        var rsig = sim.Process(Tlv.Concat(Hex.Parse("80681533"), new byte[] { 0, 0, (byte)msg.Length }, msg, new byte[] { 2, 0 }));
        CheckSw(rsig, 0x9000, "SIGN RSA PKCS#1 SHA-256 with rsa2048");
        {
            var pub = (RsaKeyParameters)PublicKeyFactory.CreateKey(File.ReadAllBytes(Path.Combine(vectors, "rsa2048.pub.der")));
            var v = new RsaDigestSigner(new Sha256Digest());
            v.Init(false, pub);
            v.BlockUpdate(msg, 0, msg.Length);
            Check(v.VerifySignature(rsig[..^2]), "RSA signature verifies with rsa2048.pub.der");
        }
        var crtw = Tx("80721792000000");
        Check(crtw.Length > 10 && crtw[8] == DkekBlob.TypeRsa, "CRT key wraps back as type 5");

        // errors
        var badMac = (byte[])ecBlob.Clone(); badMac[^3] ^= 0x55;
        CheckSw(Ext("80742193", badMac), 0x6400, "UNWRAP with bad CMAC");
        var badKcv = (byte[])ecBlob.Clone(); badKcv[0] ^= 0x55;
        CheckSw(Ext("80742193", badKcv), 0x6400, "UNWRAP with foreign KCV");
        CheckSw(Tx("80723392000000"), 0x6A88, "WRAP of a missing key");
        // key with an algorithm list that forbids wrap: generate EC with 91 = {73}
        var gen = Tlv.Concat(Tlv.Build(0x5F29, new byte[] { 0 }), Tlv.Build(0x42, System.Text.Encoding.ASCII.GetBytes("UTCA00001")),
            Tlv.Build(0x91, new byte[] { 0x73 }),
            Tlv.Build(0x7F49, Tlv.Build(0x06, DkekBlob.OidEc), Tlv.Build(0x81, Hex.Parse("FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF"))),
            Tlv.Build(0x5F20, System.Text.Encoding.ASCII.GetBytes("ESPICOHSMTR00001")));
        var g = Ext("00462200", gen, true);
        CheckSw(g, 0x9000, "GENERATE EC key 0x22 with algorithm list {73}");
        CheckSw(Tx("80722292000000"), 0x6985, "WRAP of a key whose algorithm list forbids it");
        // upload via 2F10 then UNWRAP with no data
        var part1 = ecBlob[..200]; var part2 = ecBlob[200..];
        CheckSw(sim.Process(Tlv.Concat(Hex.Parse("00D72F10"), new byte[] { (byte)(4 + 3 + part1.Length) }, Hex.Parse("54020000"), new byte[] { 0x53, 0x81, (byte)part1.Length }, part1)), 0x9000, "write blob part 1 to 2F10");
        CheckSw(sim.Process(Tlv.Concat(Hex.Parse("00D72F10"), new byte[] { (byte)(4 + 3 + part2.Length) }, Hex.Parse("540200C8"), new byte[] { 0x53, 0x81, (byte)part2.Length }, part2)), 0x9000, "write blob part 2 to 2F10");
        CheckSw(Tx("80742393"), 0x9000, "UNWRAP from EF 2F10 into key 0x23");
        // command chaining: the blob in two short APDUs, the first with CLA 90
        CheckSw(sim.Process(Tlv.Concat(Hex.Parse("90742493"), new byte[] { 200 }, ecBlob[..200])), 0x9000, "chained UNWRAP part 1 (CLA 90)");
        CheckSw(sim.Process(Tlv.Concat(Hex.Parse("80742493"), new byte[] { (byte)(ecBlob.Length - 200) }, ecBlob[200..])), 0x9000, "chained UNWRAP last part into key 0x24");
        Tx("00A404000BE82B0601040181C31F020100");
        CheckSw(Tx("80721492000000"), 0x6982, "WRAP after SELECT (logged out)");
        CheckSw(Tx("0020008106313131313131"), 0x63C2, "wrong PIN -> 63C2");
        CheckSw(Tx("0020008106313131313131"), 0x63C1, "wrong PIN -> 63C1");
        CheckSw(Tx("0020008106313131313131"), 0x6983, "wrong PIN -> 6983 blocked");
        CheckSw(Tx("0020008106363438323139"), 0x6983, "right PIN while blocked -> 6983");
        CheckSw(Tx("002C0081 0E 3537363231383830 363438323139".Replace(" ", "")), 0x9000, "RESET RETRY COUNTER with SO-PIN");
        CheckSw(Tx("0020008106363438323139"), 0x9000, "VERIFY after unblock");

        // persistence round trip
        var json = sim.ExportState();
        var tmp = Path.GetTempFileName();
        File.WriteAllText(tmp, json);
        var sim2 = new ScHsmSimulator(new ScHsmOptions { StateFile = tmp });
        Check(sim2.GetDkek(0) is { } d0 && d0.AsSpan().SequenceEqual(dkek) && sim2.KeyReferences.Contains((byte)0x14), "state file round trip keeps DKEK and keys");
        File.Delete(tmp);

        log.WriteLine(failures == 0 ? "selftest: all checks passed" : $"selftest: {failures} FAILED");
        return failures == 0;
    }
}
