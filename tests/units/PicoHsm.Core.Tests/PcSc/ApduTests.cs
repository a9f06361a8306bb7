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
        Assert.Throws<ArgumentException>(() => ResponseApdu.Parse([0x90]));
        Assert.False(ResponseApdu.Parse([0x6A, 0x82]).IsSuccess);
    }
}

public class TransmitWrapperTests
{
    [Fact]
    public void GetResponse_LoopsAndConcatenates()
    {
        var ch = new ScriptedChannel()
            .Expect("80CA000000", "AABB6103")
            .Expect("00C0000003", "CCDDEE6102")
            .Expect("00C0000002", "FF019000");
        ResponseApdu r = ch.Transmit(new CommandApdu(0x80, 0xCA, 0x00, 0x00, default, 256));
        Assert.Equal("AABBCCDDEEFF01", Convert.ToHexString(r.Data));
        Assert.Equal((ushort)0x9000, r.SW);
        ch.AssertDone();
    }

    [Fact]
    public void GetResponse_6100MeansUpTo256()
    {
        var ch = new ScriptedChannel()
            .Expect("00CA0000", "6100")
            .Expect("00C0000000", "01029000");
        ResponseApdu r = ch.Transmit(new CommandApdu(0x00, 0xCA, 0x00, 0x00));
        Assert.Equal("0102", Convert.ToHexString(r.Data));
        ch.AssertDone();
    }

    [Fact]
    public void GetResponse_UsesLogicalChannelOfCla()
    {
        var ch = new ScriptedChannel()
            .Expect("01CA000000", "6101")
            .Expect("01C0000001", "099000");
        Assert.Equal("09", Convert.ToHexString(ch.Transmit(new CommandApdu(0x01, 0xCA, 0, 0, default, 256)).Data));
    }

    [Fact]
    public void WrongLe_ResendsWithLeFromSw2()
    {
        var ch = new ScriptedChannel()
            .Expect("00B0000000", "6C10")
            .Expect("00B0000010", "00112233445566778899AABBCCDDEEFF9000");
        ResponseApdu r = ch.Transmit(new CommandApdu(0x00, 0xB0, 0x00, 0x00, default, 256));
        Assert.Equal(16, r.Data.Length);
        Assert.True(r.IsSuccess);
        ch.AssertDone();
    }

    [Fact]
    public void WrongLe_Then61xx()
    {
        var ch = new ScriptedChannel()
            .Expect("00B0000000", "6C02")
            .Expect("00B0000002", "61 01")
            .Expect("00C0000001", "AA9000");
        Assert.Equal("AA", Convert.ToHexString(ch.Transmit(new CommandApdu(0x00, 0xB0, 0, 0, default, 256)).Data));
    }

    [Fact]
    public void FollowGetResponseOff_Returns61xxAsIs()
    {
        var ch = new ScriptedChannel().Expect("00B10000045402000000", "01026100");
        ResponseApdu r = ch.Transmit(new CommandApdu(0x00, 0xB1, 0, 0, [0x54, 0x02, 0x00, 0x00], 256), new TransmitOptions { FollowGetResponse = false });
        Assert.Equal((byte)0x61, r.SW1);
        Assert.Equal("0102", Convert.ToHexString(r.Data));
        ch.AssertDone();
    }

    [Fact]
    public void EndlessGetResponse_IsBounded()
    {
        var ch = new ScriptedChannel().Expect("00CA0000", "6101");
        for (int i = 0; i < 5; i++) ch.Expect(c => c[1] == 0xC0, "GET RESPONSE", [0x00, 0x61, 0x01]);
        Assert.Throws<InvalidOperationException>(() =>
            ch.Transmit(new CommandApdu(0x00, 0xCA, 0, 0), new TransmitOptions { MaxGetResponseRounds = 5 }));
    }
}

public class PcscErrorTests
{
    [Fact]
    public void MissingLibrary_ClearMessageNotACrash()
    {
        var ex = Assert.Throws<PcscException>(() => PcscApi.LoadUnix("libpcsclite-does-not-exist.so.9"));
        Assert.Contains("install", ex.Message);
        Assert.Contains("pcscd", ex.Message);
        Assert.Equal(0u, ex.ErrorCode);
    }

    [Theory]
    [InlineData(PcscError.SCARD_E_NO_SERVICE, "SCARD_E_NO_SERVICE", "not running")]
    [InlineData(PcscError.SCARD_W_RESET_CARD, "SCARD_W_RESET_CARD", "reset")]
    [InlineData(PcscError.SCARD_W_REMOVED_CARD, "SCARD_W_REMOVED_CARD", "removed")]
    [InlineData(PcscError.SCARD_E_NO_SMARTCARD, "SCARD_E_NO_SMARTCARD", "no card")]
    [InlineData(PcscError.SCARD_E_TIMEOUT, "SCARD_E_TIMEOUT", "Timed out")]
    [InlineData(PcscError.SCARD_E_SHARING_VIOLATION, "SCARD_E_SHARING_VIOLATION", "exclusively")]
    [InlineData(PcscError.SCARD_E_NO_READERS_AVAILABLE, "SCARD_E_NO_READERS_AVAILABLE", "No smart card reader")]
    [InlineData(PcscError.SCARD_E_UNKNOWN_READER, "SCARD_E_UNKNOWN_READER", "No reader")]
    public void Codes_HaveNamesAndMessages(uint code, string name, string part)
    {
        var ex = new PcscException(code, "SCardTest");
        Assert.Equal(name, ex.ErrorName);
        Assert.Contains(part, ex.Message);
        Assert.Contains($"0x{code:X8}", ex.Message);
        Assert.StartsWith("SCardTest: ", ex.Message);
        Assert.Equal(code, ex.ErrorCode);
    }

    [FactOnLinux("the message names pcscd, the pcsc-lite daemon")]
    public void NoService_OnLinux_SaysPcscdIsNotRunning()
    {
        Assert.Contains("pcscd is not running", new PcscException(PcscError.SCARD_E_NO_SERVICE, null).Message);
    }

    [Fact]
    public void Flags()
    {
        Assert.True(new PcscException(PcscError.SCARD_W_RESET_CARD, null).IsCardReset);
        Assert.True(new PcscException(PcscError.SCARD_W_REMOVED_CARD, null).IsCardAbsent);
        Assert.True(new PcscException(PcscError.SCARD_E_NO_SMARTCARD, null).IsCardAbsent);
    }
}
