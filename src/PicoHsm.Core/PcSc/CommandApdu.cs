namespace PicoHsm.PcSc;

/// <summary>
/// An ISO 7816-4 command APDU: CLA INS P1 P2, optional command data (Nc bytes) and optional
/// expected length (Ne). Encodes cases 1-4 in the short form, or the extended form when
/// Nc &gt; 255, Ne &gt; 256 or <see cref="ForceExtended"/> is set:
/// <list type="bullet">
/// <item>case 1: CLA INS P1 P2</item>
/// <item>case 2: short Le (Ne 256 = 00); extended 00 Le1 Le2 (Ne 65536 = 00 00 00)</item>
/// <item>case 3: short Lc data; extended 00 Lc1 Lc2 data</item>
/// <item>case 4: short Lc data Le; extended 00 Lc1 Lc2 data Le1 Le2 (Ne 65536 = 00 00)</item>
/// </list>
/// </summary>
public sealed class CommandApdu
{
    public const int MaxShortNc = 255;
    public const int MaxShortNe = 256;
    public const int MaxExtendedNc = 65535;
    public const int MaxExtendedNe = 65536;

    private readonly byte[] _data;

    /// <param name="ne">Expected response length; null = no Le field. 256 (short) / 65536 (extended) = "as much as there is".</param>
    public CommandApdu(byte cla, byte ins, byte p1, byte p2, ReadOnlySpan<byte> data = default, int? ne = null, bool forceExtended = false)
    {
        if (data.Length > MaxExtendedNc)
            throw new ArgumentOutOfRangeException(nameof(data), $"Command data is limited to {MaxExtendedNc} bytes.");
        if (ne is < 0 or > MaxExtendedNe)
            throw new ArgumentOutOfRangeException(nameof(ne), $"Ne must be between 0 and {MaxExtendedNe}.");
        Cla = cla;
        Ins = ins;
        P1 = p1;
        P2 = p2;
        _data = data.ToArray();
        Ne = ne == 0 ? null : ne;
        ForceExtended = forceExtended;
    }

    public byte Cla { get; }
    public byte Ins { get; }
    public byte P1 { get; }
    public byte P2 { get; }

    /// <summary>The command data (a copy).</summary>
    public byte[] Data => (byte[])_data.Clone();

    public ReadOnlySpan<byte> DataSpan => _data;

    public int Nc => _data.Length;

    /// <summary>Expected response length, or null when the APDU has no Le field.</summary>
    public int? Ne { get; }

    public bool ForceExtended { get; }

    /// <summary>True when this APDU is encoded with extended length fields.</summary>
    public bool IsExtended => ForceExtended || Nc > MaxShortNc || Ne > MaxShortNe;

    /// <summary>ISO 7816-3 case (1-4).</summary>
    public int Case => (Nc > 0, Ne is not null) switch
    {
        (false, false) => 1,
        (false, true) => 2,
        (true, false) => 3,
        _ => 4,
    };

    /// <summary>The same command with another Ne (used to resend after 6Cxx).</summary>
    public CommandApdu WithNe(int? ne) => new(Cla, Ins, P1, P2, _data, ne, ForceExtended);

    public byte[] ToArray()
    {
        bool ext = IsExtended;
        int len = 4;
        if (Nc > 0) len += (ext ? 3 : 1) + Nc;
        if (Ne is not null) len += ext ? (Nc > 0 ? 2 : 3) : 1;
        byte[] b = new byte[len];
        b[0] = Cla;
        b[1] = Ins;
        b[2] = P1;
        b[3] = P2;
        int o = 4;
        if (Nc > 0)
        {
            if (ext)
            {
                b[o++] = 0;
                b[o++] = (byte)(Nc >> 8);
                b[o++] = (byte)Nc;
            }
            else
            {
                b[o++] = (byte)Nc;
            }
            _data.CopyTo(b, o);
            o += Nc;
        }
        if (Ne is int ne)
        {
            if (ext)
            {
                if (Nc == 0) b[o++] = 0;
                int v = ne == MaxExtendedNe ? 0 : ne;
                b[o++] = (byte)(v >> 8);
                b[o++] = (byte)v;
            }
            else
            {
                b[o++] = (byte)(ne == MaxShortNe ? 0 : ne);
            }
        }
        return b;
    }

    /// <summary>Hex of the header only: safe to put into messages and logs (the data may hold a PIN or a share).</summary>
    public string HeaderHex => $"{Cla:X2} {Ins:X2} {P1:X2} {P2:X2}";

    public override string ToString() => $"{HeaderHex} (Nc={Nc}, Ne={(Ne?.ToString() ?? "-")}{(IsExtended ? ", extended" : "")})";
}
