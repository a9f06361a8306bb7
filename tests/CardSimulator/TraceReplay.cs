using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Signers;

namespace PicoHsm.CardSimulator;

/// <summary>
/// Feeds the command APDUs of recorded OpenSC &lt;-&gt; Pico HSM traces to one fresh simulator, in order (the
/// traces were taken in that order on one device), and compares the answers: byte for byte where the firmware
/// is deterministic, by structure where randomness is involved (key generation, signatures, key blobs).
/// </summary>
public static class TraceReplay
{
    public sealed record Exchange(int Line, byte[] Command, byte[] Response);

    public static List<Exchange> ParseTrace(string path)
    {
        var list = new List<Exchange>();
        var lines = File.ReadAllLines(path);
        for (int i = 0; i < lines.Length; i++)
        {
            if (!lines[i].StartsWith("> ")) continue;
            int j = i + 1;
            while (j < lines.Length && !lines[j].StartsWith("< ")) j++;
            if (j >= lines.Length) throw new FormatException($"{path}:{i + 1}: command without response");
            list.Add(new Exchange(i + 1, Hex.Parse(lines[i][2..]), Hex.Parse(lines[j][2..])));
            i = j;
        }
        return list;
    }

    /// <summary>Returns the number of mismatches (0 = all good).</summary>
    public static int Run(IReadOnlyList<string> traces, TextWriter log, bool verbose = false)
    {
        var sim = new ScHsmSimulator(new ScHsmOptions());
        int total = 0, exact = 0, structural = 0, bad = 0;
        foreach (var path in traces)
        {
            sim.Reset(); // every tool run is a new process; the traces start with detection
            var ex = ParseTrace(path);
            int fileBad = 0;
            foreach (var e in ex)
            {
                total++;
                var got = sim.Process(e.Command);
                string? problem;
                bool isStructural;
                (problem, isStructural) = Compare(sim, e, got);
                if (problem == null)
                {
                    if (isStructural) structural++; else exact++;
                    if (verbose) log.WriteLine($"  ok{(isStructural ? " (structure)" : "")}  {Path.GetFileName(path)}:{e.Line}");
                    continue;
                }
                bad++; fileBad++;
                log.WriteLine($"MISMATCH {Path.GetFileName(path)}:{e.Line}: {problem}");
                log.WriteLine($"  command : {Hex.Of(e.Command, " ")}");
                log.WriteLine($"  expected: {Hex.Of(e.Response, " ")}");
                log.WriteLine($"  got     : {Hex.Of(got, " ")}");
            }
            log.WriteLine($"{(fileBad == 0 ? "PASS" : "FAIL")} {Path.GetFileName(path)}: {ex.Count} APDUs, {fileBad} mismatches");
        }
        log.WriteLine($"replay: {total} APDUs, {exact} identical, {structural} matched by structure (random content), {bad} mismatches");
        return bad;
    }

    static ushort SwOf(byte[] r) => (ushort)((r[^2] << 8) | r[^1]);

    static (string?, bool) Compare(ScHsmSimulator sim, Exchange e, byte[] got)
    {
        var cmd = e.Command;
        var exp = e.Response;
        if (got.Length < 2) return ("answer shorter than a status word", false);
        byte ins = cmd[1];
        bool randomContent = (cmd[0] == 0x00 && ins == 0x46) || (cmd[0] == 0x80 && (ins == 0x68 || ins == 0x72));
        if (!randomContent)
            return (exp.AsSpan().SequenceEqual(got) ? null : "answer differs", false);

        if (SwOf(exp) != SwOf(got)) return ($"status word {SwOf(got):X4}, expected {SwOf(exp):X4}", true);
        var expData = exp[..^2];
        var gotData = got[..^2];
        switch (ins)
        {
            case 0x46:
            {
                var s1 = Shape(expData);
                var s2 = Shape(gotData);
                return (s1 == s2 ? null : $"CV request structure differs:\n    expected {s1}\n    got      {s2}", true);
            }
            case 0x68:
            {
                // DER ECDSA-Sig-Value for EC keys; verify it with the simulator's key when the hash is known
                try
                {
                    var seq = (Asn1Sequence)Asn1Object.FromByteArray(gotData);
                    if (seq.Count != 2) return ("signature is not SEQUENCE { r, s }", true);
                    var key = sim.GetKey(cmd[2]);
                    if (key is { Kind: CardKeyKind.Ec } && cmd[3] == 0x73)
                    {
                        var a = CommandApdu.Parse(cmd)!;
                        var v = new ECDsaSigner();
                        v.Init(false, key.EcPublic());
                        var h = CardCrypto.Hash(new Sha256Digest(), a.Data);
                        if (!v.VerifySignature(h, DerInteger.GetInstance(seq[0]).Value, DerInteger.GetInstance(seq[1]).Value))
                            return ("ECDSA signature does not verify", true);
                    }
                    return (null, true);
                }
                catch (Exception ex) { return ("signature not DER: " + ex.Message, true); }
            }
            case 0x72:
            {
                if (expData.Length != gotData.Length) return ($"blob length {gotData.Length}, expected {expData.Length}", true);
                int head = expData[8] == DkekBlob.TypeAes ? 25 : 27;
                if (!expData.AsSpan(0, head).SequenceEqual(gotData.AsSpan(0, head))) return ("blob header (KCV, type, OIDs) differs", true);
                var dkek = sim.GetDkek(0);
                if (dkek == null) return ("simulator has no complete DKEK", true);
                try { DkekBlob.Decode(dkek, gotData); } catch (BlobException ex) { return ("own blob does not decode: " + ex.Message, true); }
                return (null, true);
            }
        }
        return ("unhandled", true);
    }

    /// <summary>TLV tree as "tag(len){children}" with the lengths, values left out.</summary>
    public static string Shape(byte[] data)
    {
        try
        {
            return string.Join(" ", Tlv.Parse(data).Select(t =>
                $"{t.Tag:X}({t.Value.Length})" + (Tlv.IsConstructed(t.Tag) ? "{" + Shape(t.Value) + "}" : "")));
        }
        catch (FormatException) { return "<not TLV>"; }
    }
}
