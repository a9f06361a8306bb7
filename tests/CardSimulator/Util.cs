using System.Text;

namespace PicoHsm.CardSimulator;

/// <summary>Hex helpers (upper case, optional separators on input).</summary>
public static class Hex
{
    public static byte[] Parse(string hex)
    {
        var sb = new StringBuilder(hex.Length);
        foreach (char c in hex)
        {
            if (Uri.IsHexDigit(c)) sb.Append(c);
            else if (c == ' ' || c == ':' || c == '-' || c == '\t' || c == '\r' || c == '\n') continue;
            else throw new FormatException($"not a hex digit: '{c}'");
        }
        return Convert.FromHexString(sb.ToString());
    }

    public static string Of(ReadOnlySpan<byte> data, string sep = "") =>
        sep.Length == 0 ? Convert.ToHexString(data) : string.Join(sep, data.ToArray().Select(b => b.ToString("X2")));
}

/// <summary>A BER-TLV node (tags up to 3 bytes, definite lengths).</summary>
public sealed class Tlv
{
    public int Tag { get; }
    public byte[] Value { get; }
    /// <summary>Offset of the tag byte in the parsed buffer.</summary>
    public int Offset { get; }
    /// <summary>Total encoded length (tag + length + value).</summary>
    public int EncodedLength { get; }

    public Tlv(int tag, byte[] value, int offset = 0, int encodedLength = 0)
    {
        Tag = tag; Value = value; Offset = offset; EncodedLength = encodedLength;
    }

    public static bool IsConstructed(int tag)
    {
        int first = tag;
        while (first > 0xFF) first >>= 8;
        return (first & 0x20) != 0;
    }

    public List<Tlv> Children() => Parse(Value);

    public Tlv? Find(int tag) => Children().FirstOrDefault(t => t.Tag == tag);

    /// <summary>Parses a sequence of TLVs; throws FormatException on malformed input.</summary>
    public static List<Tlv> Parse(ReadOnlySpan<byte> data)
    {
        var list = new List<Tlv>();
        int i = 0;
        while (i < data.Length)
        {
            // Skip padding bytes 00/FF between objects (ISO 7816-4 allows them).
            if (data[i] == 0x00 || data[i] == 0xFF) { i++; continue; }
            int start = i;
            int tag = data[i++];
            if ((tag & 0x1F) == 0x1F)
            {
                do
                {
                    if (i >= data.Length) throw new FormatException("truncated tag");
                    tag = (tag << 8) | data[i];
                } while ((data[i++] & 0x80) != 0);
            }
            if (i >= data.Length) throw new FormatException("missing length");
            int len = data[i++];
            if (len > 0x80)
            {
                int n = len & 0x7F;
                if (n > 3 || i + n > data.Length) throw new FormatException("bad length");
                len = 0;
                for (int k = 0; k < n; k++) len = (len << 8) | data[i++];
            }
            else if (len == 0x80) throw new FormatException("indefinite length");
            if (i + len > data.Length) throw new FormatException("value exceeds buffer");
            list.Add(new Tlv(tag, data.Slice(i, len).ToArray(), start, i + len - start));
            i += len;
        }
        return list;
    }

    public static byte[] EncodeLength(int len)
    {
        if (len < 0x80) return new[] { (byte)len };
        if (len <= 0xFF) return new byte[] { 0x81, (byte)len };
        if (len <= 0xFFFF) return new byte[] { 0x82, (byte)(len >> 8), (byte)len };
        return new byte[] { 0x83, (byte)(len >> 16), (byte)(len >> 8), (byte)len };
    }

    public static byte[] EncodeTag(int tag)
    {
        if (tag > 0xFFFF) return new[] { (byte)(tag >> 16), (byte)(tag >> 8), (byte)tag };
        if (tag > 0xFF) return new[] { (byte)(tag >> 8), (byte)tag };
        return new[] { (byte)tag };
    }

    public static byte[] Build(int tag, params byte[][] parts)
    {
        int total = parts.Sum(p => p.Length);
        var ms = new MemoryStream();
        ms.Write(EncodeTag(tag));
        ms.Write(EncodeLength(total));
        foreach (var p in parts) ms.Write(p);
        return ms.ToArray();
    }

    public static byte[] Concat(params byte[][] parts)
    {
        var r = new byte[parts.Sum(p => p.Length)];
        int o = 0;
        foreach (var p in parts) { Buffer.BlockCopy(p, 0, r, o, p.Length); o += p.Length; }
        return r;
    }
}

/// <summary>A parsed command APDU (short or extended).</summary>
public sealed class CommandApdu
{
    public byte Cla, Ins, P1, P2;
    public byte[] Data = Array.Empty<byte>();
    /// <summary>Expected response length; 0 = none; 256 / 65536 for a zero Le.</summary>
    public int Ne;
    public bool Extended;

    /// <summary>Returns null when the encoding is inconsistent.</summary>
    public static CommandApdu? Parse(byte[] b)
    {
        if (b.Length < 4) return null;
        var a = new CommandApdu { Cla = b[0], Ins = b[1], P1 = b[2], P2 = b[3] };
        int n = b.Length;
        if (n == 4) return a;
        if (n == 5) { a.Ne = b[4] == 0 ? 256 : b[4]; return a; }
        if (b[4] != 0)
        {
            int lc = b[4];
            if (n == 5 + lc) { a.Data = b[5..(5 + lc)]; return a; }
            if (n == 6 + lc) { a.Data = b[5..(5 + lc)]; a.Ne = b[5 + lc] == 0 ? 256 : b[5 + lc]; return a; }
            return null;
        }
        // b[4] == 0: extended
        a.Extended = true;
        if (n == 7) { int le = (b[5] << 8) | b[6]; a.Ne = le == 0 ? 65536 : le; return a; }
        if (n < 7) return null;
        int elc = (b[5] << 8) | b[6];
        if (elc == 0) return null;
        if (n == 7 + elc) { a.Data = b[7..(7 + elc)]; return a; }
        if (n == 9 + elc)
        {
            a.Data = b[7..(7 + elc)];
            int le = (b[7 + elc] << 8) | b[8 + elc];
            a.Ne = le == 0 ? 65536 : le;
            return a;
        }
        return null;
    }
}
