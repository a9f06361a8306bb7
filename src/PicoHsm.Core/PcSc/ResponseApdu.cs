namespace PicoHsm.PcSc;

/// <summary>A response APDU: the data and the status word SW1 SW2.</summary>
public sealed class ResponseApdu
{
    public ResponseApdu(byte[] data, byte sw1, byte sw2)
    {
        Data = data ?? [];
        SW1 = sw1;
        SW2 = sw2;
    }

    /// <summary>Splits a raw response (data followed by SW1 SW2).</summary>
    public static ResponseApdu Parse(ReadOnlySpan<byte> raw)
    {
        // A card (or a reader driver) that answers fewer than the two status bytes is faulty or hostile:
        // a typed error, so callers report it instead of crashing.
        if (raw.Length < 2) throw new PcscException($"The card answered {raw.Length} byte(s), not even the two status bytes. Remove and reinsert the card (or reconnect the reader) and try again.");
        return new ResponseApdu(raw[..^2].ToArray(), raw[^2], raw[^1]);
    }

    public byte[] Data { get; }
    public byte SW1 { get; }
    public byte SW2 { get; }

    /// <summary>SW1 SW2 as one number, e.g. 0x9000.</summary>
    public ushort SW => (ushort)((SW1 << 8) | SW2);

    /// <summary>90 00.</summary>
    public bool IsSuccess => SW == 0x9000;

    public byte[] ToArray()
    {
        byte[] b = new byte[Data.Length + 2];
        Data.CopyTo(b, 0);
        b[^2] = SW1;
        b[^1] = SW2;
        return b;
    }

    public override string ToString() => $"{Data.Length} bytes, SW {SW:X4}";
}
