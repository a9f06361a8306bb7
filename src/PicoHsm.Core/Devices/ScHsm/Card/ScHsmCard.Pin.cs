using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Card;

// SELECT and the user PIN.
public sealed partial class ScHsmCard
{
    /// <summary>
    /// SELECT the SmartCard-HSM applet (00 A4 04 00 0B AID 00) and parse FCP tag 85 for the version.
    /// Note: on the card a SELECT ends the PIN session (also that of a PKCS#11 module sharing the card);
    /// prefer <see cref="EnsurePinVerified"/>, which selects only when the applet does not answer.
    /// </summary>
    public ScHsmAppletInfo SelectApplet()
    {
        ResponseApdu r = Send(new CommandApdu(0x00, 0xA4, 0x04, 0x00, Aid, 256));
        if (r.SW == 0x6A86) // P2=00 refused: ask for the FCI instead (Pico answers 6A86 only to P2=0C)
            r = Send(new CommandApdu(0x00, 0xA4, 0x04, 0x04, Aid, 256));
        Check(r, ScHsmCommands.SelectApplet);
        AppletInfo = ParseFcp(r.Data);
        return AppletInfo;
    }

    internal static ScHsmAppletInfo ParseFcp(byte[] fcp)
    {
        byte[] info = [];
        ReadOnlySpan<byte> body = fcp;
        if (body.Length >= 2 && (body[0] == 0x62 || body[0] == 0x6F))
        {
            if (TryReadLength(body, 1, out int len, out int hdr))
                body = body.Slice(1 + hdr, Math.Min(len, body.Length - 1 - hdr));
        }
        int i = 0;
        while (i + 2 <= body.Length)
        {
            byte tag = body[i];
            if (!TryReadLength(body, i + 1, out int len, out int hdr) || i + 1 + hdr + len > body.Length) break;
            if (tag == 0x85) info = body.Slice(i + 1 + hdr, len).ToArray();
            i += 1 + hdr + len;
        }
        byte major = 0, minor = 0;
        if (info.Length >= 2)
        {
            major = info[^2];
            minor = info[^1];
        }
        return new ScHsmAppletInfo(major, minor, info, fcp);
    }

    private static bool TryReadLength(ReadOnlySpan<byte> b, int at, out int len, out int headerBytes)
    {
        len = 0;
        headerBytes = 0;
        if (at >= b.Length) return false;
        byte first = b[at];
        if (first < 0x80)
        {
            len = first;
            headerBytes = 1;
            return true;
        }
        int n = first & 0x7F;
        if (n is 0 or > 3 || at + n >= b.Length) return false;
        for (int k = 1; k <= n; k++) len = (len << 8) | b[at + k];
        headerBytes = 1 + n;
        return true;
    }

    /// <summary>User PIN state (VERIFY 00 20 00 81 with no data). Does not SELECT.</summary>
    public ScHsmPinStatus GetPinStatus()
    {
        ResponseApdu r = Send(new CommandApdu(0x00, 0x20, 0x00, UserPinReference));
        return ToPinStatus(r.SW) ?? throw new ScHsmCardException(ScHsmCommands.PinStatus, r.SW);
    }

    /// <summary>The PIN state a VERIFY status word means; null when it means something else.</summary>
    internal static ScHsmPinStatus? ToPinStatus(ushort sw)
    {
        if (sw == 0x9000) return new ScHsmPinStatus(ScHsmPinState.Verified, null, sw);
        if ((sw & 0xFFF0) == 0x63C0)
        {
            int left = sw & 0x0F;
            return new ScHsmPinStatus(left == 0 ? ScHsmPinState.Blocked : ScHsmPinState.NotVerified, left, sw);
        }
        return sw switch
        {
            0x6983 => new ScHsmPinStatus(ScHsmPinState.Blocked, 0, sw),
            0x6984 => new ScHsmPinStatus(ScHsmPinState.TransportPin, null, sw),
            0x6A88 => new ScHsmPinStatus(ScHsmPinState.NotInitialized, null, sw),
            _ => null,
        };
    }

    /// <summary>
    /// SO-PIN state (VERIFY 00 20 00 88 with no data): 63Cx = not verified, x tries left; 6983 blocked;
    /// 6A88 no SO-PIN (a card never initialised). Spends no try. Does not SELECT.
    /// </summary>
    public ScHsmPinStatus GetSoPinStatus()
    {
        ResponseApdu r = Send(new CommandApdu(0x00, 0x20, 0x00, SoPinReference));
        return ToPinStatus(r.SW) ?? throw new ScHsmCardException(ScHsmCommands.VerifySoPin, r.SW);
    }

    /// <summary>
    /// VERIFY the SO-PIN (00 20 00 88 08 SO-PIN): a wrong one spends one try and throws
    /// <see cref="ScHsmCardException"/> with 63Cx (x tries left) or 6983 (blocked). The message never contains the SO-PIN.
    /// </summary>
    public void VerifySoPin(ReadOnlySpan<byte> soPin8)
    {
        if (soPin8.Length != SoPinLength) throw new ArgumentException("The SO-PIN is 8 bytes.", nameof(soPin8));
        byte[] apdu = GC.AllocateArray<byte>(5 + SoPinLength, pinned: true);
        try
        {
            apdu[0] = 0x00;
            apdu[1] = 0x20;
            apdu[2] = 0x00;
            apdu[3] = SoPinReference;
            apdu[4] = SoPinLength;
            soPin8.CopyTo(apdu.AsSpan(5));
            ResponseApdu r = ResponseApdu.Parse(Channel.Transmit(apdu));
            Check(r, ScHsmCommands.VerifySoPin);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(apdu);
        }
    }

    /// <summary>
    /// VERIFY the user PIN (00 20 00 81 Lc PIN; the PIN is the ASCII bytes, e.g. "648219").
    /// Throws <see cref="ScHsmCardException"/> (63Cx wrong PIN with tries left, 6983 blocked); the
    /// message never contains the PIN.
    /// </summary>
    public void VerifyPin(ReadOnlySpan<byte> pin)
    {
        if (pin.IsEmpty || pin.Length > 255) throw new ArgumentException("The PIN must have 1 to 255 bytes.", nameof(pin));
        byte[] apdu = GC.AllocateArray<byte>(5 + pin.Length, pinned: true);
        try
        {
            apdu[0] = 0x00;
            apdu[1] = 0x20;
            apdu[2] = 0x00;
            apdu[3] = UserPinReference;
            apdu[4] = (byte)pin.Length;
            pin.CopyTo(apdu.AsSpan(5));
            ResponseApdu r = ResponseApdu.Parse(Channel.Transmit(apdu));
            Check(r, ScHsmCommands.VerifyPin);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(apdu);
        }
    }

    /// <summary>
    /// Makes sure the user PIN is verified, touching the card as little as possible: asks the PIN
    /// state first (the state belongs to the card, so a PKCS#11 login of another program counts),
    /// selects the applet only when it does not answer (a SELECT would end that other program's PIN
    /// session), and calls <paramref name="pinProvider"/> and VERIFY only when the PIN is not verified.
    /// The provided <see cref="SecretBytes"/> is disposed (zeroed) here.
    /// Returns true when a VERIFY was sent.
    /// </summary>
    public bool EnsurePinVerified(Func<SecretBytes> pinProvider)
    {
        ArgumentNullException.ThrowIfNull(pinProvider);
        using IDisposable tx = Channel.BeginTransaction();
        ResponseApdu r = Send(new CommandApdu(0x00, 0x20, 0x00, UserPinReference));
        ScHsmPinStatus? status = ToPinStatus(r.SW);
        if (status is null)
        {
            // 6D00 / 6E00 / 6A82 / 6A86 ...: another applet (or none) is selected
            SelectApplet();
            status = GetPinStatus();
        }
        switch (status.State)
        {
            case ScHsmPinState.Verified:
                return false;
            case ScHsmPinState.NotVerified:
                using (SecretBytes pin = pinProvider() ?? throw new InvalidOperationException("The PIN provider returned no PIN."))
                    VerifyPin(pin.Span);
                return true;
            default:
                throw new ScHsmCardException(ScHsmCommands.PinStatus, status.StatusWord);
        }
    }
}
