namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>
/// One BER/DER TLV element located in a buffer: just enough ASN.1 to walk sc-hsm-tool files and
/// PKCS#15 descriptions and to write them back byte for byte (definite lengths only, as OpenSC writes).
/// Multi-byte tags (e.g. 7F 21 of a CV certificate) are kept as their raw bytes.
/// </summary>
internal readonly ref struct DerElement
{
    public DerElement(ReadOnlySpan<byte> encoded, int tagLength, int headerLength)
    {
        Encoded = encoded;
        TagLength = tagLength;
        HeaderLength = headerLength;
    }

    /// <summary>The whole element: tag, length and content.</summary>
    public ReadOnlySpan<byte> Encoded { get; }
    public int TagLength { get; }
    public int HeaderLength { get; }
    public ReadOnlySpan<byte> Tag => Encoded[..TagLength];
    /// <summary>The first tag byte (class, constructed bit, low tag number).</summary>
    public byte FirstTagByte => Encoded[0];
    public ReadOnlySpan<byte> Content => Encoded[HeaderLength..];

    /// <summary>Reads the element at the start of <paramref name="data"/>.</summary>
    public static DerElement Read(ReadOnlySpan<byte> data, string what)
    {
        if (data.IsEmpty) throw new ScHsmFormatException($"Expected {what}, found the end of the data.");
        int offset = 1;
        if ((data[0] & 0x1F) == 0x1F)
        {
            while (true)
            {
                if (offset >= data.Length) throw new ScHsmFormatException($"The tag of {what} is cut short.");
                if ((data[offset++] & 0x80) == 0) break;
                if (offset > 4) throw new ScHsmFormatException($"The tag of {what} is too long.");
            }
        }
        int tagLength = offset;
        if (offset >= data.Length) throw new ScHsmFormatException($"The length of {what} is missing.");
        int first = data[offset++];
        long length;
        if (first < 0x80)
        {
            length = first;
        }
        else
        {
            int count = first & 0x7F;
            if (count == 0) throw new ScHsmFormatException($"{what} uses an indefinite length, which these files never do.");
            if (count > 3 || offset + count > data.Length) throw new ScHsmFormatException($"The length of {what} is invalid.");
            length = 0;
            for (int i = 0; i < count; i++) length = (length << 8) | data[offset++];
        }
        if (offset + length > data.Length)
            throw new ScHsmFormatException($"{what} is longer ({length} bytes) than the data holding it.");
        return new DerElement(data[..(offset + (int)length)], tagLength, offset);
    }

    /// <summary>The DER length octets for <paramref name="length"/> (minimal form).</summary>
    public static byte[] EncodeLength(int length)
    {
        if (length < 0x80) return [(byte)length];
        if (length <= 0xFF) return [0x81, (byte)length];
        if (length <= 0xFFFF) return [0x82, (byte)(length >> 8), (byte)length];
        return [0x83, (byte)(length >> 16), (byte)(length >> 8), (byte)length];
    }

    /// <summary>tag | DER length | content.</summary>
    public static byte[] Encode(byte tag, ReadOnlySpan<byte> content)
    {
        var length = EncodeLength(content.Length);
        var result = new byte[1 + length.Length + content.Length];
        result[0] = tag;
        length.CopyTo(result, 1);
        content.CopyTo(result.AsSpan(1 + length.Length));
        return result;
    }

    /// <summary>tag | DER length | the concatenated parts.</summary>
    public static byte[] Encode(byte tag, params byte[][] parts)
    {
        var content = new byte[parts.Sum(p => p.Length)];
        int offset = 0;
        foreach (var part in parts)
        {
            part.CopyTo(content, offset);
            offset += part.Length;
        }
        return Encode(tag, (ReadOnlySpan<byte>)content);
    }
}
