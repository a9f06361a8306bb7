using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>The card described as a token, as OpenSC names it, for sessions that have no PKCS#11 module.</summary>
internal static class ScHsmTokenReader
{
    /// <summary>
    /// Label and manufacturer from EF.TokenInfo (2F03) when it has them, else "SmartCard-HSM" and
    /// www.CardContact.de; model "SmartCard-HSM version M.m" from the applet; serial = the device
    /// certificate's holder reference (EF 2F02) without its last 5 characters. Selects the applet only
    /// when it does not answer already.
    /// </summary>
    public static PicoHsmToken ReadToken(ICardChannel channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        var card = new ScHsmCard(channel);
        try
        {
            using var tx = channel.BeginTransaction();
            var (pin, info) = ScHsmCardPin.PrepareApplet(card);
            string? version = info?.Version ?? ProbeVersion(card);
            string? serial = null;
            byte[]? devCert = card.TryReadFile(0x2F02);
            string? chr = ScHsmCardFiles.ReadHolderReference(devCert);
            if (chr is { Length: > 5 }) serial = chr[..^5];
            // OpenSC takes label and manufacturer from EF.TokenInfo when it has them (Pico HSM: "Pol Henarejos").
            var (manufacturer, label) = ScHsmCardFiles.ReadTokenInfo(card.TryReadFile(0x2F03));
            return new PicoHsmToken
            {
                ModulePath = "",
                SlotId = 0,
                SlotDescription = channel.ReaderName,
                TokenPresent = true,
                Label = label ?? ScHsmCardBackend.TokenLabelDefault,
                Model = version is null ? "SmartCard-HSM" : $"SmartCard-HSM version {version}",
                Manufacturer = manufacturer ?? ScHsmCardBackend.Manufacturer,
                SerialNumber = serial,
                FirmwareVersion = version,
                Initialized = pin.State != ScHsmPinState.NotInitialized,
                LoginRequired = true,
                UserPinInitialized = pin.State != ScHsmPinState.NotInitialized,
                UserPinCountLow = pin.TriesLeft is int l && l < 3 && l > 0,
                UserPinFinalTry = pin.TriesLeft == 1,
                UserPinLocked = pin.State == ScHsmPinState.Blocked,
                UserPinToBeChanged = pin.State == ScHsmPinState.TransportPin,
            };
        }
        catch (ScHsmCardException ex)
        {
            throw ex.ToPicoHsmException("read the card's identity", channel.ReaderName);
        }
        catch (PcscException ex)
        {
            throw ScHsmCardTransactions.Unavailable(ex, channel.ReaderName);
        }
    }

    /// <summary>
    /// Pico HSM answers INITIALIZE without data with free memory and its version (last two bytes);
    /// nothing is changed. Used only when the applet answered without a SELECT (no FCP to read).
    /// </summary>
    private static string? ProbeVersion(ScHsmCard card)
    {
        var r = card.Channel.Transmit(new CommandApdu(0x80, 0x50, 0x00, 0x00, default, 256));
        return r.IsSuccess && r.Data.Length == 7 ? $"{r.Data[5]}.{r.Data[6]}" : null;
    }
}
