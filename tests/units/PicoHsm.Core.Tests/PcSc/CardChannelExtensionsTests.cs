using PicoHsm.PcSc;

using PicoHsm.Core.Tests.Support;

namespace PicoHsm.Core.Tests.PcSc;

public class CardChannelExtensionsTests
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
