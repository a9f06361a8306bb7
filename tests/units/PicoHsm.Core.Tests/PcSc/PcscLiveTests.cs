using Xunit.Abstractions;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.PcSc;

using PicoHsm.Core.Tests.Support;

namespace PicoHsm.Core.Tests.PcSc;


/// <summary>
/// Live tests through the real PC/SC stack (libpcsclite + pcscd + vsmartcard's vpcd reader driver,
/// which this Linux machine has): readers "Virtual PCD 00 00" and "Virtual PCD 00 01".
/// </summary>
[Collection("pcsc-live")]
public class PcscLiveTests(ITestOutputHelper output)
{
    private const string Reader0 = "Virtual PCD 00 00";
    private const string Reader1 = "Virtual PCD 00 01";
    private const int Reader1Port = 35964;

    private static readonly byte[] PicoAtr = Convert.FromHexString("3BFE1800008131FE458031815448534D31738021408107FA");

    /// <summary>A context of the pcscd the collection's <see cref="PcscDaemon"/> made sure of.</summary>
    private static PcscContext Establish() => PcscContext.Establish();

    [PcscFact]
    public void ListReaders_ShowsTheVirtualPcdReaders()
    {
        using PcscContext ctx = Establish();
        Assert.True(ctx.IsValid);
        IReadOnlyList<string> readers = ctx.ListReaders();
        output.WriteLine("readers: " + string.Join(" | ", readers));
        Assert.Contains(Reader0, readers);
        Assert.Contains(Reader1, readers);
    }

    [PcscFact]
    public void GetStatusChange_ReportsEmptyOrPresent()
    {
        using PcscContext ctx = Establish();
        PcscReaderStatus? st = ctx.GetStatusChange(Reader0, TimeSpan.FromSeconds(2));
        Assert.NotNull(st);
        output.WriteLine($"{Reader0}: {st.State}, ATR {Convert.ToHexString(st.Atr)}");
        bool empty = (st.State & PcscReaderState.Empty) != 0;
        Assert.True(empty ^ st.CardPresent, $"state {st.State} must be either empty or present");
        if (st.CardPresent) Assert.NotEmpty(st.Atr);
    }

    [PcscFact]
    public void ReaderStatuses_AndFindScHsmReaders_SendNothingToCards()
    {
        using PcscContext ctx = Establish();
        IReadOnlyList<PcscReaderStatus> all = ctx.GetReaderStatuses();
        Assert.Contains(all, s => s.Reader == Reader0);
        foreach (PcscReaderStatus s in all)
            output.WriteLine($"{s.Reader}: {s.State} {Convert.ToHexString(s.Atr)}");
        IReadOnlyList<PcscReaderStatus> hsms = ScHsmCard.FindReaders(ctx);
        Assert.All(hsms, s => Assert.True(ScHsmCard.IsScHsmAtr(s.Atr)));
    }

    [PcscFact]
    public void Connect_UnknownReader_ClearError()
    {
        using PcscContext ctx = Establish();
        var ex = Assert.Throws<PcscException>(() => ctx.Connect("No Such Reader 99"));
        Assert.Equal(PcscError.SCARD_E_UNKNOWN_READER, ex.ErrorCode);
        Assert.Contains("SCardConnect", ex.Message);
    }

    /// <summary>
    /// End to end through pcscd: a scripted SmartCard-HSM on vpcd port 35964 ("Virtual PCD 00 01"), driven
    /// by PcscCardChannel + ScHsmCard: ATR, SELECT, extended APDUs both ways, transactions, and the
    /// SCARD_W_RESET_CARD reconnect-and-retry after another connection resets the card.
    /// </summary>
    [PcscFact(emptyReader: Reader1)]
    public void EndToEnd_ScriptedCardOnVpcd()
    {
        using PcscContext ctx = Establish();
        PcscReaderStatus? before = PcscFactAttribute.WaitUntilEmpty(ctx, Reader1);
        if (before is { CardPresent: true }) // it was empty when the tests were discovered
            Assert.Fail($"{Reader1} got a card (ATR {Convert.ToHexString(before.Atr)}) from another process during the run; not interfering with it.");

        byte[] blob = Enumerable.Range(0, 3000).Select(i => (byte)(i * 7)).ToArray();
        byte[] fcp = Convert.FromHexString("62228102000082010183020000840B2B0601040181C31F0201308A010585050001FF0600");
        byte[] enumerate = Enumerable.Range(0, 400).SelectMany(i => new byte[] { 0xCC, (byte)i }).ToArray();
        byte[]? unwrapped = null;

        using var card = new VpcdTestCard(PicoAtr, apdu =>
        {
            if (apdu.AsSpan().StartsWith(new byte[] { 0x00, 0xA4, 0x04, 0x00, 0x0B, 0xE8 })) return [.. fcp, 0x90, 0x00];
            if (apdu.AsSpan().StartsWith(new byte[] { 0x80, 0x58, 0x00, 0x00, 0x00, 0x00, 0x00 })) return [.. enumerate, 0x90, 0x00];
            if (apdu.AsSpan().StartsWith(new byte[] { 0x80, 0x72, 0x05, 0x92, 0x00, 0x00, 0x00 })) return [.. blob, 0x90, 0x00];
            if (apdu.AsSpan().StartsWith(new byte[] { 0x80, 0x74, 0x06, 0x93, 0x00 }))
            {
                unwrapped = apdu[7..];
                return [0x90, 0x00];
            }
            if (apdu.AsSpan().SequenceEqual(new byte[] { 0x00, 0x20, 0x00, 0x81 })) return [0x63, 0xC3];
            return [0x6D, 0x00];
        });
        if (!card.TryConnect(Reader1Port, out string? err))
            Assert.Fail($"vpcd does not listen on 127.0.0.1:{Reader1Port} ({err}); is pcscd running with vsmartcard-vpcd?");

        PcscReaderStatus? present = ctx.GetStatusChange(Reader1, TimeSpan.FromSeconds(10), before?.State ?? PcscReaderState.Unaware);
        for (int i = 0; i < 20 && present is not { CardPresent: true }; i++)
            present = ctx.GetStatusChange(Reader1, TimeSpan.FromMilliseconds(500), present?.State ?? PcscReaderState.Unaware);
        Assert.True(present is { CardPresent: true }, $"card did not appear in {Reader1}");
        Assert.Equal(PicoAtr, present!.Atr);

        using PcscCardChannel channel = ctx.Connect(Reader1);
        Assert.Equal(PicoAtr, channel.Atr);
        Assert.Equal(Reader1, channel.ReaderName);
        output.WriteLine($"protocol {channel.ActiveProtocol}");

        var hsm = new ScHsmCard(channel);
        using (channel.BeginTransaction())
        {
            Assert.Equal("6.0", hsm.SelectApplet().Version);
            Assert.Equal(400, hsm.EnumerateObjects().Count); // 800-byte extended answer
        }
        Assert.Equal(ScHsmPinState.NotVerified, hsm.GetPinStatus().State);
        Assert.Equal(blob, hsm.WrapKey(5));                   // 3000-byte extended answer
        hsm.UnwrapKey(6, blob);                                // 3000-byte extended command
        Assert.Equal(blob, unwrapped);

        // another connection resets the card: our next command gets SCARD_W_RESET_CARD, reconnects, retries
        using (PcscCardChannel other = ctx.Connect(Reader1))
            other.Reconnect(reset: true);
        Assert.Equal("6.0", hsm.SelectApplet().Version);
        Assert.Equal(1, channel.ResetCount);
        Assert.True(card.Resets + card.PowerOns >= 1);

        var unsupported = Assert.Throws<ScHsmCardException>(() => hsm.DeleteFile(0xCE01));
        Assert.Equal((ushort)0x6D00, unsupported.StatusWord);
    }
}
