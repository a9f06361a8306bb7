using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Card;

/// <summary>
/// The SmartCard-HSM card commands (as implemented by Pico HSM and CardContact's SmartCard-HSM /
/// Nitrokey HSM 2) needed for DKEK work: PIN, initialise, DKEK shares and key domains, object
/// enumeration, EF read/write/delete, WRAP KEY and UNWRAP KEY. APDUs are encoded exactly as OpenSC
/// 0.23 (card-sc-hsm.c / sc-hsm-tool) sends them to the firmware.
///
/// Errors become <see cref="ScHsmCardException"/>; PINs and shares never appear in messages, and the
/// buffers that carried them are zeroed after sending.
///
/// One APDU client split over partial files by command group (this file: constants, ATRs, the channel and
/// the send/check helpers; ScHsmCard.Pin.cs, .Dkek.cs, .Files.cs, .Keys.cs): the groups share the channel,
/// <see cref="AppletInfo"/> and the helpers, so they are one class, not collaborators.
/// </summary>
public sealed partial class ScHsmCard
{
    /// <summary>The applet AID E8 2B 06 01 04 01 81 C3 1F 02 01.</summary>
    public static ReadOnlySpan<byte> Aid => [0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01];

    public const byte UserPinReference = 0x81;
    /// <summary>The SO-PIN's reference (VERIFY 00 20 00 88; 8 bytes).</summary>
    public const byte SoPinReference = 0x88;
    public const byte KeyPrefix = 0xCC;
    public const byte PrkdPrefix = 0xC4;
    public const byte CertificatePrefix = 0xCE;
    public const byte DeviceKeyReference = 0x00;
    public const int DkekShareLength = 32;
    public const int SoPinLength = 8;

    /// <summary>UPDATE BINARY writes at most this many file bytes per APDU (as OpenSC does).</summary>
    public const int MaxWriteChunk = 255;

    private static readonly TransmitOptions ReadBinaryOptions = new() { FollowGetResponse = false };

    /// <summary>ATRs of SmartCard-HSM cards and tokens as listed by OpenSC's sc-hsm driver (Pico HSM uses the first).</summary>
    public static IReadOnlyList<byte[]> KnownAtrs { get; } =
    [
        Convert.FromHexString("3BFE1800008131FE458031815448534D31738021408107FA"),
        Convert.FromHexString("3B8E80018031815448534D31738021408107" + "18"),
        Convert.FromHexString("3BDE18FF8191FE1FC38031815448534D31738021408107" + "1C"),
    ];

    /// <summary>
    /// True for a SmartCard-HSM / Pico HSM ATR: one of <see cref="KnownAtrs"/>, or any ATR whose historical
    /// bytes carry the SmartCard-HSM signature "80 31 81 54 48 53 4D 31 73" ("THSM1s").
    /// </summary>
    public static bool IsScHsmAtr(ReadOnlySpan<byte> atr)
    {
        foreach (byte[] known in KnownAtrs)
            if (atr.SequenceEqual(known)) return true;
        ReadOnlySpan<byte> signature = [0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D, 0x31, 0x73];
        return atr.IndexOf(signature) >= 0;
    }

    /// <summary>
    /// Readers holding a SmartCard-HSM / Pico HSM, judged by the ATR only: nothing is sent to any card,
    /// so no PIN session of another program is disturbed.
    /// </summary>
    public static IReadOnlyList<PcscReaderStatus> FindReaders(PcscContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.GetReaderStatuses().Where(s => s.CardPresent && IsScHsmAtr(s.Atr)).ToList();
    }

    public ScHsmCard(ICardChannel channel)
    {
        Channel = channel ?? throw new ArgumentNullException(nameof(channel));
    }

    public ICardChannel Channel { get; }

    /// <summary>What the last <see cref="SelectApplet"/> answered (null before).</summary>
    public ScHsmAppletInfo? AppletInfo { get; private set; }

    private static byte[] Fid(ushort fid) => [(byte)(fid >> 8), (byte)fid];

    private ResponseApdu Send(CommandApdu command, TransmitOptions? options = null)
    {
        if (ChangesTheCard(command))
        {
            Changes++;
            if (command.Ins is 0x50 or 0x52) KeyDomainChanges++;
        }
        return Channel.Transmit(command, options);
    }

    /// <summary>
    /// How many commands that may change the card's files or keys this client has sent (UNWRAP, GENERATE,
    /// UPDATE BINARY, DELETE FILE, INITIALIZE, key domain changes), counted before each is sent, whatever it
    /// answered. A cache of what the card holds is valid only while this number is the one it was read at.
    /// </summary>
    public long Changes { get; private set; }

    /// <summary>
    /// How many of those <see cref="Changes"/> may change the key domains or their DKEK (INITIALIZE, IMPORT DKEK
    /// SHARE, key domain create / delete). A copy of the key domain list is this client's own view only while this
    /// number is the one it was read at.
    /// </summary>
    public long KeyDomainChanges { get; private set; }

    /// <summary>Counts a change sent as raw bytes (INITIALIZE, IMPORT DKEK SHARE: their buffers are zeroed after); both change the key domains.</summary>
    private void CountChange()
    {
        Changes++;
        KeyDomainChanges++;
    }

    private static bool ChangesTheCard(CommandApdu c) => c.Ins switch
    {
        0x74 or 0x46 or 0xD7 or 0xD6 or 0xE4 => true,
        0x50 => c.Nc > 0,   // INITIALIZE with data (without: the status query)
        0x52 => c.P1 != 0x00 || c.Nc > 0, // create / delete a key domain, a share (not the status query)
        _ => false,
    };

    private static void Check(ResponseApdu r, string command, string? detail = null)
    {
        if (!r.IsSuccess) throw new ScHsmCardException(command, r.SW, detail);
    }
}
