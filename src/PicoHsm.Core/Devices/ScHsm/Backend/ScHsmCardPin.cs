using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>
/// The user PIN as the backend handles it: the applet is selected only when it does not answer (a SELECT
/// would end a PKCS#11 session's login), the PIN copy is used only to VERIFY when the card says the PIN is
/// not verified, and a PIN the card refused is dropped so no further tries are spent.
/// </summary>
internal sealed class ScHsmCardPin : IDisposable
{
    private readonly ScHsmCard _card;
    private readonly DeviceContext _context;
    private SecretBytes? _copy;

    public ScHsmCardPin(ScHsmCard card, DeviceContext context, SecretBytes? pin)
    {
        _card = card;
        _context = context;
        _copy = pin is null ? null : SecretBytes.CopyOf(pin.Span);
    }

    /// <summary>Whether there is a PIN copy to VERIFY with.</summary>
    public bool HasCopy => _copy is not null;

    private string ReaderName => _card.Channel.ReaderName;

    /// <summary>Keeps a copy of <paramref name="pin"/> in place of the one held.</summary>
    public void Replace(ReadOnlySpan<byte> pin)
    {
        _copy?.Dispose();
        _copy = SecretBytes.CopyOf(pin);
    }

    /// <summary>
    /// Asks the PIN state (no SELECT); only when the applet does not answer (another applet, or a fresh
    /// power-up) selects it. Returns the PIN state and the FCP info when a SELECT was needed.
    /// </summary>
    public static (ScHsmPinStatus Pin, ScHsmAppletInfo? Info) PrepareApplet(ScHsmCard card)
    {
        var r = card.Channel.Transmit(new CommandApdu(0x00, 0x20, 0x00, ScHsmCard.UserPinReference));
        var status = ScHsmCard.ToPinStatus(r.SW);
        if (status is not null) return (status, null);
        var info = card.SelectApplet();
        return (card.GetPinStatus(), info);
    }

    /// <summary>Makes sure the applet answers; the PIN state (without verifying).</summary>
    public ScHsmPinStatus Prepare() => PrepareApplet(_card).Pin;

    /// <summary>Verifies the user PIN only when the card says it is not verified.</summary>
    public void EnsureVerified()
    {
        var status = Prepare();
        switch (status.State)
        {
            case ScHsmPinState.Verified:
                _context.SetLoggedIn(true);
                return;
            case ScHsmPinState.NotVerified:
                VerifyWithCopy();
                return;
            case ScHsmPinState.Blocked:
                throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinLocked",
                    $"The user PIN of the card in '{ReaderName}' is blocked. Unblock it with the SO-PIN (sc-hsm-tool --unlock-pin), then connect again.", _context);
            case ScHsmPinState.NotInitialized:
                throw new PicoHsmException(PicoErrorKind.InvalidOperation, "NotInitialized",
                    $"The card in '{ReaderName}' is not initialised. Initialise it first (Initialize-PicoHsm, or sc-hsm-tool --initialize --dkek-shares 1).", _context);
            default:
                throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "TransportPin",
                    $"The card in '{ReaderName}' still has a transport PIN. Change the user PIN first (pkcs11-tool --change-pin).", _context);
        }
    }

    /// <summary>VERIFY with the PIN copy (no state check: the Pico stores a new DKEK / shows its KCV only at a VERIFY).</summary>
    public void VerifyWithCopy()
    {
        if (_copy is null)
            throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "PinRequired",
                $"The user PIN of the card in '{ReaderName}' is not verified, and this session has no PIN to verify it with. Connect again with the PIN.", _context);
        try
        {
            _card.VerifyPin(_copy.Span);
            _context.SetLoggedIn(true);
        }
        catch (ScHsmCardException ex) when (ex.Error is ScHsmError.WrongPin or ScHsmError.PinBlocked)
        {
            // Never spend another try with a PIN the card refused.
            _copy.Dispose();
            _copy = null;
            _context.SetLoggedIn(false);
            throw;
        }
    }

    public void RequireInitialised(ScHsmPinStatus pin)
    {
        if (pin.State == ScHsmPinState.NotInitialized)
            throw new PicoHsmException(PicoErrorKind.InvalidOperation, "NotInitialized",
                $"The card in '{ReaderName}' is not initialised. Initialise it first (sc-hsm-tool --initialize --dkek-shares N).", _context);
    }

    /// <summary>Zeroes the PIN copy.</summary>
    public void Dispose()
    {
        _copy?.Dispose();
        _copy = null;
    }
}
