using PicoHsm.PcSc;

using PicoHsm.Core.Tests.Support;

namespace PicoHsm.Core.Tests.PcSc;

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

    [Theory]
    [InlineData(PcscError.SCARD_W_REMOVED_CARD, true)]
    [InlineData(PcscError.SCARD_E_NO_SMARTCARD, true)]
    [InlineData(PcscError.SCARD_E_INVALID_HANDLE, true)]
    [InlineData(PcscError.SCARD_E_READER_UNAVAILABLE, true)]
    [InlineData(PcscError.SCARD_E_NO_SERVICE, true)]
    [InlineData(PcscError.SCARD_W_RESET_CARD, false)] // reconnects
    [InlineData(PcscError.SCARD_E_TIMEOUT, false)]
    public void IsConnectionGone_AbsentCardsAndLostReaders_NotAReset(uint code, bool gone)
    {
        Assert.Equal(gone, PcscError.IsConnectionGone(code));
        // every absent card is a gone connection
        if (new PcscException(code, null).IsCardAbsent) Assert.True(gone);
    }
}
