using PicoHsm.PcSc;

using PicoHsm.Core.Tests.Support;

namespace PicoHsm.Core.Tests.PcSc;

public class CommandApduTests
{
    private static string Hex(CommandApdu c) => Convert.ToHexString(c.ToArray());

    [Fact]
    public void Case1()
    {
        var c = new CommandApdu(0x00, 0x20, 0x00, 0x81);
        Assert.Equal("00200081", Hex(c));
        Assert.Equal(1, c.Case);
    }

    [Fact]
    public void Case2Short_Ne256IsZero()
    {
        var c = new CommandApdu(0x80, 0x52, 0x00, 0x00, default, 256);
        Assert.Equal("8052000000", Hex(c));
        Assert.Equal(2, c.Case);
        Assert.False(c.IsExtended);
        Assert.Equal("8052000010", Hex(new CommandApdu(0x80, 0x52, 0x00, 0x00, default, 16)));
    }

    [Fact]
    public void Case2Extended_Ne65536IsThreeZeros()
    {
        // 80 58 00 00 00 00 00 (ENUMERATE OBJECTS) and 80 72 01 92 00 00 00 (WRAP KEY) from the traces
        Assert.Equal("80580000000000", Hex(new CommandApdu(0x80, 0x58, 0x00, 0x00, default, 65536)));
        Assert.Equal("80720192000000", Hex(new CommandApdu(0x80, 0x72, 0x01, 0x92, default, 65536)));
        Assert.Equal("80000000000101", Hex(new CommandApdu(0x80, 0x00, 0x00, 0x00, default, 257)));
        Assert.Equal("80000000000100", Hex(new CommandApdu(0x80, 0x00, 0x00, 0x00, default, 256, forceExtended: true)));
    }

    [Fact]
    public void Case3Short()
    {
        var c = new CommandApdu(0x00, 0xE4, 0x02, 0x00, [0xCE, 0x01]);
        Assert.Equal("00E4020002CE01", Hex(c));
        Assert.Equal(3, c.Case);
    }

    [Fact]
    public void Case3Extended_WhenDataOver255OrForced()
    {
        byte[] data = new byte[331];
        string h = Hex(new CommandApdu(0x80, 0x74, 0x14, 0x93, data));
        Assert.StartsWith("8074149300014B", h);
        Assert.Equal(7 + 331, h.Length / 2);
        Assert.Equal("80741493000003010203", Hex(new CommandApdu(0x80, 0x74, 0x14, 0x93, [1, 2, 3], null, forceExtended: true)));
        Assert.StartsWith("00D70000000100", Hex(new CommandApdu(0x00, 0xD7, 0x00, 0x00, new byte[256])));
    }

    [Fact]
    public void Case4Short()
    {
        // READ BINARY odd INS from the traces: 00 B1 00 00 04 54 02 01 00 00
        var c = new CommandApdu(0x00, 0xB1, 0x00, 0x00, [0x54, 0x02, 0x01, 0x00], 256);
        Assert.Equal("00B100000454020100" + "00", Hex(c));
        Assert.Equal(4, c.Case);
        Assert.Equal("00A40000022F0200", Hex(new CommandApdu(0x00, 0xA4, 0x00, 0x00, [0x2F, 0x02], 256)));
    }

    [Fact]
    public void Case4Extended()
    {
        // 80 68 01 73 00 00 1D <29 bytes> 02 00 in trace 10 (Ne 512)
        byte[] msg = new byte[29];
        string h = Hex(new CommandApdu(0x80, 0x68, 0x01, 0x73, msg, 512));
        Assert.StartsWith("8068017300001D", h);
        Assert.EndsWith("0200", h);
        Assert.EndsWith("0000", Hex(new CommandApdu(0x80, 0x68, 0x01, 0x73, msg, 65536)));
        Assert.Equal(4 + 3 + 29 + 2, new CommandApdu(0x80, 0x68, 0x01, 0x73, msg, 65536).ToArray().Length);
        Assert.Equal(4 + 3 + 300 + 2, new CommandApdu(0x80, 0x68, 0x01, 0x73, new byte[300], 16).ToArray().Length);
    }

    [Fact]
    public void Bounds()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new CommandApdu(0, 0, 0, 0, new byte[65536]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CommandApdu(0, 0, 0, 0, default, 65537));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CommandApdu(0, 0, 0, 0, default, -1));
        Assert.Equal(1, new CommandApdu(0, 0, 0, 0, default, 0).Case); // Ne 0 = no Le
    }

    [Fact]
    public void ToStringShowsHeaderOnly()
    {
        var c = new CommandApdu(0x00, 0x20, 0x00, 0x81, "648219"u8);
        Assert.DoesNotContain("36", c.ToString().Replace("00 20 00 81", ""));
        Assert.Equal("00 20 00 81", c.HeaderHex);
    }

    [Fact]
    public void ResponseApdu_Parse()
    {
        var r = ResponseApdu.Parse([0x01, 0x02, 0x90, 0x00]);
        Assert.Equal(new byte[] { 1, 2 }, r.Data);
        Assert.Equal((ushort)0x9000, r.SW);
        Assert.True(r.IsSuccess);
        Assert.Equal(new byte[] { 1, 2, 0x90, 0x00 }, r.ToArray());
        Assert.Throws<PcscException>(() => ResponseApdu.Parse([0x90]));
        Assert.False(ResponseApdu.Parse([0x6A, 0x82]).IsSuccess);
    }
}
