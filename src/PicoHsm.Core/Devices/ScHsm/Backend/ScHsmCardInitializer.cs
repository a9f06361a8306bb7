using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>INITIALIZE DEVICE through the backend: the SO-PIN check, the new PIN copy, the reconnect after a reboot.</summary>
internal sealed class ScHsmCardInitializer(ScHsmCard card, ScHsmCardPin pin, ScHsmCardTransactions calls, DeviceContext context)
{
    /// <summary>
    /// Erases every key. <paramref name="dkekShares"/>: number of DKEK shares to announce (0 = a random DKEK
    /// made on the device, no backup possible; negative = no DKEK at all). <paramref name="keyDomains"/>:
    /// number of key domains (Pico). Reconnects when the device reboots. The PIN copy becomes <paramref name="userPin"/>.
    /// </summary>
    public void Initialize(ReadOnlySpan<byte> soPin8, ReadOnlySpan<byte> userPin, int dkekShares, int? keyDomains, byte retries)
    {
        if (soPin8.Length != ScHsmCard.SoPinLength)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "BadSoPin", "The SO-PIN is 8 bytes (16 hex digits).", null);
        if (dkekShares > 255) throw new ArgumentOutOfRangeException(nameof(dkekShares));
        if (keyDomains is < 0 or > 255) throw new ArgumentOutOfRangeException(nameof(keyDomains));
        if (calls.IsClosed) throw calls.Closed();
        var channel = card.Channel;
        lock (context.Gate)
        {
            try
            {
                using (channel.BeginTransaction())
                {
                    // The firmware's INITIALIZE does not check the old SO-PIN: prove it first on an initialised card.
                    if (pin.Prepare().State != ScHsmPinState.NotInitialized) ProveSoPin(soPin8);
                    card.InitializeDevice(soPin8, userPin, retries, dkekShares < 0 ? null : (byte)dkekShares, keyDomains is int k ? (byte)k : null);
                }
            }
            catch (ScHsmCardException ex) when (ex.Error is ScHsmError.PinBlocked)
            {
                throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "SoPinLocked",
                    $"The SO-PIN of the card in '{channel.ReaderName}' is blocked (0 tries left); the card cannot be initialised with it. Nothing was erased.", context, ex);
            }
            catch (ScHsmCardException ex) when (ex.Error is ScHsmError.PinNotVerified or ScHsmError.WrongPin)
            {
                // 6982 / 63Cx answer the SO-PIN here, not the user PIN.
                string left = ex.PinTriesLeft is int n ? $"{n} SO-PIN {(n == 1 ? "try" : "tries")} left" : "tries left unknown";
                throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "WrongSoPin",
                    $"The card in '{channel.ReaderName}' refused the SO-PIN ({left}; SW {ex.StatusWord:X4}). Nothing was erased. Give the card's current SO-PIN (16 hex digits); a blocked SO-PIN can never be unblocked.", context, ex);
            }
            catch (ScHsmCardException ex)
            {
                throw ex.ToPicoHsmException("initialise the card", context);
            }
            catch (PcscException ex)
            {
                throw ScHsmCardTransactions.Unavailable(ex, channel.ReaderName);
            }
            pin.Replace(userPin);
            // A Pico HSM may reboot after INITIALIZE: reconnect when the card went away, then select the applet.
            try
            {
                try
                {
                    using (channel.BeginTransaction()) pin.Prepare();
                }
                catch (PcscException)
                {
                    channel.Reconnect(reset: false);
                    using (channel.BeginTransaction()) pin.Prepare();
                }
            }
            catch (PcscException ex)
            {
                throw ScHsmCardTransactions.Unavailable(ex, channel.ReaderName);
            }
            catch (ScHsmCardException ex)
            {
                throw ex.ToPicoHsmException("reach the card after initialising it", context);
            }
        }
    }

    /// <summary>
    /// VERIFY of the SO-PIN (reference 88) before the wipe: the status first (no try spent), then one
    /// VERIFY with the given value. A wrong SO-PIN spends exactly one try and throws (63Cx); a blocked one throws 6983.
    /// A card without an SO-PIN (6A88) needs no proof.
    /// </summary>
    private void ProveSoPin(ReadOnlySpan<byte> soPin8)
    {
        var status = card.GetSoPinStatus();
        switch (status.State)
        {
            case ScHsmPinState.NotInitialized:
                return;
            case ScHsmPinState.Blocked:
                throw new ScHsmCardException(ScHsmCommands.VerifySoPin, status.StatusWord);
            default:
                card.VerifySoPin(soPin8);
                return;
        }
    }
}
