using System.Security.Cryptography;
using PicoHsm.Common;
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
/// </summary>
public sealed class ScHsmCard
{
    /// <summary>The applet AID E8 2B 06 01 04 01 81 C3 1F 02 01.</summary>
    public static ReadOnlySpan<byte> Aid => [0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01];

    public const byte UserPinReference = 0x81;
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

    // ------------------------------------------------------------------------------------------
    // SELECT / PIN
    // ------------------------------------------------------------------------------------------

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

    // ------------------------------------------------------------------------------------------
    // INITIALIZE / DKEK / key domains
    // ------------------------------------------------------------------------------------------

    /// <summary>
    /// INITIALIZE DEVICE (80 50 00 00, short case 3), TLVs in sc-hsm-tool's order: 80 options (2 bytes),
    /// 81 user PIN, 82 SO-PIN (8 bytes), 91 retry counter, 92 number of DKEK shares (omit: no DKEK, WRAP
    /// fails 6A88; 0: random on-device DKEK, no backup possible), 97 number of key domains (Pico).
    /// Erases every key on the device. A Pico HSM may reboot afterwards (the next command then sees a
    /// reset/removed card: reconnect).
    /// </summary>
    public void InitializeDevice(ReadOnlySpan<byte> soPin, ReadOnlySpan<byte> userPin, byte retryCounter = 3,
        byte? dkekShares = null, byte? keyDomains = null, ushort options = 0x0001)
    {
        if (soPin.Length != SoPinLength)
            throw new ArgumentException($"The SO-PIN is {SoPinLength} bytes (16 hex digits).", nameof(soPin));
        if (userPin.Length is < 1 or > 16)
            throw new ArgumentException("The user PIN must have 1 to 16 bytes (6 to 16 on a SmartCard-HSM).", nameof(userPin));
        if (retryCounter is < 1 or > 10)
            throw new ArgumentOutOfRangeException(nameof(retryCounter), "The PIN retry counter must be 1 to 10.");

        int len = 4 + 2 + userPin.Length + 2 + soPin.Length + 3 + (dkekShares is null ? 0 : 3) + (keyDomains is null ? 0 : 3);
        byte[] data = GC.AllocateArray<byte>(len, pinned: true);
        byte[]? apdu = null;
        try
        {
            int o = 0;
            data[o++] = 0x80; data[o++] = 0x02; data[o++] = (byte)(options >> 8); data[o++] = (byte)options;
            data[o++] = 0x81; data[o++] = (byte)userPin.Length; userPin.CopyTo(data.AsSpan(o)); o += userPin.Length;
            data[o++] = 0x82; data[o++] = (byte)soPin.Length; soPin.CopyTo(data.AsSpan(o)); o += soPin.Length;
            data[o++] = 0x91; data[o++] = 0x01; data[o++] = retryCounter;
            if (dkekShares is byte n) { data[o++] = 0x92; data[o++] = 0x01; data[o++] = n; }
            if (keyDomains is byte k) { data[o++] = 0x97; data[o++] = 0x01; data[o++] = k; }
            // Built here rather than with CommandApdu, which keeps its own copy of the data (the PINs)
            // that could not be zeroed. Short case 3, as sc-hsm-tool sends it (trace 02).
            apdu = GC.AllocateArray<byte>(5 + len, pinned: true);
            apdu[0] = 0x80; apdu[1] = 0x50; apdu[2] = 0x00; apdu[3] = 0x00; apdu[4] = (byte)len;
            data.CopyTo(apdu, 5);
            ResponseApdu r = ResponseApdu.Parse(Channel.Transmit(apdu));
            Check(r, ScHsmCommands.InitializeDevice);
            AppletInfo = null;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(data);
            if (apdu is not null) CryptographicOperations.ZeroMemory(apdu);
        }
    }

    /// <summary>The 8-byte SO-PIN from its 16 hex digits (sc-hsm-tool's --so-pin form).</summary>
    public static byte[] SoPinFromHex(string hex)
    {
        byte[] b = Convert.FromHexString(hex.Trim());
        if (b.Length != SoPinLength) throw new FormatException("The SO-PIN is 16 hex digits (8 bytes).");
        return b;
    }

    /// <summary>
    /// IMPORT DKEK SHARE (80 52 00 kd, short case 4: 32 share bytes, Le 00). Returns the key domain
    /// status after the import (asked separately when the device answers without data).
    /// After the last share of a Pico HSM, call <see cref="VerifyPin"/> (not <see cref="EnsurePinVerified"/>,
    /// which skips the VERIFY when the PIN already reads as verified, e.g. right after INITIALIZE): only at
    /// a VERIFY does the Pico store the DKEK for good and start reporting its KCV.
    /// </summary>
    public ScHsmKeyDomainStatus ImportDkekShare(byte keyDomain, ReadOnlySpan<byte> share)
    {
        if (share.Length != DkekShareLength)
            throw new ArgumentException($"A DKEK share is {DkekShareLength} bytes.", nameof(share));
        byte[] apdu = GC.AllocateArray<byte>(4 + 1 + DkekShareLength + 1, pinned: true);
        ResponseApdu r;
        try
        {
            apdu[0] = 0x80; apdu[1] = 0x52; apdu[2] = 0x00; apdu[3] = keyDomain;
            apdu[4] = DkekShareLength;
            share.CopyTo(apdu.AsSpan(5));
            apdu[^1] = 0x00;
            r = ResponseApdu.Parse(Channel.Transmit(apdu));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(apdu);
        }
        Check(r, ScHsmCommands.ImportDkekShare, $"key domain {keyDomain}");
        return r.Data.Length >= 10 ? ScHsmKeyDomainStatus.Parse(keyDomain, r.Data) : GetKeyDomainStatus(keyDomain);
    }

    /// <summary>
    /// Key domain status (80 52 00 kd, no data, Le 00): shares announced, outstanding, KCV (null while
    /// unknown). A domain slot that exists but was never set up (6A88) is returned with IsConfigured = false.
    /// </summary>
    public ScHsmKeyDomainStatus GetKeyDomainStatus(byte keyDomain)
    {
        ResponseApdu r = Send(new CommandApdu(0x80, 0x52, 0x00, keyDomain, default, 256));
        if (r.SW == 0x6A88) return ScHsmKeyDomainStatus.NotConfigured(keyDomain);
        Check(r, ScHsmCommands.KeyDomainStatus, $"key domain {keyDomain}");
        return ScHsmKeyDomainStatus.Parse(keyDomain, r.Data);
    }

    /// <summary>
    /// Asks key domains 0, 1, ... until the device says there is no such domain (6A86 on Pico, whose
    /// key-domain table has one entry per domain announced at INITIALIZE; 6B00 beyond its maximum).
    /// Unconfigured slots (6A88) are included with IsConfigured = false. Errors on domain 0 are thrown;
    /// a later error ends the list.
    /// </summary>
    public IReadOnlyList<ScHsmKeyDomainStatus> EnumerateKeyDomains(int maxDomains = 64)
    {
        var list = new List<ScHsmKeyDomainStatus>();
        for (int kd = 0; kd < Math.Min(maxDomains, 256); kd++)
        {
            ResponseApdu r = Send(new CommandApdu(0x80, 0x52, 0x00, (byte)kd, default, 256));
            if (r.SW == 0x9000 && r.Data.Length >= 10)
                list.Add(ScHsmKeyDomainStatus.Parse((byte)kd, r.Data));
            else if (r.SW == 0x6A88)
                list.Add(ScHsmKeyDomainStatus.NotConfigured((byte)kd));
            else if (kd == 0)
                throw new ScHsmCardException(ScHsmCommands.KeyDomainStatus, r.SW, "key domain 0");
            else
                break;
        }
        return list;
    }

    // ------------------------------------------------------------------------------------------
    // Objects and files
    // ------------------------------------------------------------------------------------------

    /// <summary>ENUMERATE OBJECTS (80 58 00 00, extended case 2, Le 00 00 00): every file id on the device.</summary>
    public IReadOnlyList<ushort> EnumerateObjects()
    {
        ResponseApdu r = Send(new CommandApdu(0x80, 0x58, 0x00, 0x00, default, CommandApdu.MaxExtendedNe));
        Check(r, ScHsmCommands.EnumerateObjects);
        var fids = new List<ushort>(r.Data.Length / 2);
        for (int i = 0; i + 1 < r.Data.Length; i += 2)
            fids.Add((ushort)(r.Data[i] << 8 | r.Data[i + 1]));
        return fids;
    }

    /// <summary>
    /// The keys on the device from one ENUMERATE OBJECTS: every CC kid except CC00 (the device's own key),
    /// with flags for C4 kid (PRKD) and CE kid (certificate / CV request). Pico HSM does not list CE files
    /// in ENUMERATE OBJECTS (seen in the traces), so a CE kid that is not listed is reported as unknown
    /// (null) unless <paramref name="probeCertificates"/> asks to SELECT it (an EF select does not end the
    /// PIN session).
    /// </summary>
    public IReadOnlyList<ScHsmKeyEntry> ListKeys(bool probeCertificates = false)
    {
        using IDisposable tx = Channel.BeginTransaction();
        var fids = new HashSet<ushort>(EnumerateObjects());
        var keys = new List<ScHsmKeyEntry>();
        foreach (ushort fid in fids.Order())
        {
            if (fid >> 8 != KeyPrefix) continue;
            byte kid = (byte)fid;
            if (kid == DeviceKeyReference) continue;
            ushort ce = (ushort)(CertificatePrefix << 8 | kid);
            bool? hasCert = fids.Contains(ce) ? true : probeCertificates ? FileExists(ce) : null;
            keys.Add(new ScHsmKeyEntry(kid, fids.Contains((ushort)(PrkdPrefix << 8 | kid)), hasCert));
        }
        return keys;
    }

    /// <summary>SELECT EF (00 A4 00 00 02 FID 00). Returns the FCP, or null when the file does not exist (6A82).</summary>
    public byte[]? SelectFile(ushort fid)
    {
        ResponseApdu r = Send(new CommandApdu(0x00, 0xA4, 0x00, 0x00, Fid(fid), 256));
        if (r.SW == 0x6A82) return null;
        Check(r, ScHsmCommands.SelectFile, $"EF {fid:X4}");
        return r.Data;
    }

    public bool FileExists(ushort fid) => SelectFile(fid) is not null;

    /// <summary>Reads a whole EF; throws <see cref="ScHsmCardException"/> 6A82 when it does not exist.</summary>
    public byte[] ReadFile(ushort fid)
        => TryReadFile(fid) ?? throw new ScHsmCardException(ScHsmCommands.SelectFile, 0x6A82, $"EF {fid:X4}");

    /// <summary>
    /// SELECT EF, then READ BINARY with odd INS (00 B1 00 00 04 54 02 offset Le 00) in chunks until an
    /// answer carries no data. 61xx after a full chunk (Pico: "more left") counts as success here.
    /// Null when the file does not exist.
    /// </summary>
    public byte[]? TryReadFile(ushort fid)
    {
        using IDisposable tx = Channel.BeginTransaction();
        if (SelectFile(fid) is null) return null;
        using var content = new MemoryStream();
        int offset = 0;
        while (offset <= 0xFFFF)
        {
            byte[] data = [0x54, 0x02, (byte)(offset >> 8), (byte)offset];
            ResponseApdu r = Send(new CommandApdu(0x00, 0xB1, 0x00, 0x00, data, 256), ReadBinaryOptions);
            // 6282: end of file reached before Le bytes (data is still valid)
            if (r.SW != 0x9000 && r.SW1 != 0x61 && r.SW != 0x6282)
                throw new ScHsmCardException(ScHsmCommands.ReadBinary, r.SW, $"EF {fid:X4} at offset {offset}");
            if (r.Data.Length == 0) break;
            content.Write(r.Data);
            offset += r.Data.Length;
            if (r.SW == 0x6282) break;
        }
        return content.ToArray();
    }

    /// <summary>The PKCS#15 private key description of a key (EF C4 kid), or null when there is none.</summary>
    public byte[]? ReadPrivateKeyDescription(byte keyReference) => TryReadFile((ushort)(PrkdPrefix << 8 | keyReference));

    /// <summary>The certificate (30..) or CV request (67..) of a key (EF CE kid), or null when there is none.</summary>
    public byte[]? ReadCertificate(byte keyReference) => TryReadFile((ushort)(CertificatePrefix << 8 | keyReference));

    /// <summary>
    /// Writes <paramref name="data"/> to EF <paramref name="fid"/> as sc-hsm-tool does: SELECT it; when
    /// missing, create it empty (00 D7 FID 06 54 02 0000 53 00); with <paramref name="eraseFirst"/> an
    /// existing file is deleted and created again (as OpenSC does at key generation). Then UPDATE BINARY on
    /// the current EF (00 D7 00 00, 54 02 offset 53 len data) in pieces of at most 255 bytes; pieces
    /// longer than fit a short APDU are sent extended. An update at offset 0 replaces the content on Pico.
    /// </summary>
    public void WriteFile(ushort fid, ReadOnlySpan<byte> data, bool eraseFirst = false)
    {
        using IDisposable tx = Channel.BeginTransaction();
        bool exists = SelectFile(fid) is not null;
        if (exists && eraseFirst)
        {
            DeleteFile(fid);
            exists = false;
        }
        if (!exists)
        {
            ResponseApdu c = Send(new CommandApdu(0x00, 0xD7, (byte)(fid >> 8), (byte)fid, [0x54, 0x02, 0x00, 0x00, 0x53, 0x00]));
            Check(c, ScHsmCommands.UpdateBinary, $"create EF {fid:X4}");
        }
        for (int offset = 0; offset < data.Length; offset += MaxWriteChunk)
        {
            ReadOnlySpan<byte> piece = data.Slice(offset, Math.Min(MaxWriteChunk, data.Length - offset));
            byte[] body = UpdateBinaryBody(offset, piece);
            ResponseApdu r = Send(new CommandApdu(0x00, 0xD7, 0x00, 0x00, body));
            Check(r, ScHsmCommands.UpdateBinary, $"EF {fid:X4} at offset {offset}");
        }
    }

    internal static byte[] UpdateBinaryBody(int offset, ReadOnlySpan<byte> piece)
    {
        if (offset > 0xFFFF) throw new ArgumentOutOfRangeException(nameof(offset), "EF offsets are 16 bits.");
        int lenBytes = piece.Length < 0x80 ? 1 : piece.Length <= 0xFF ? 2 : 3;
        byte[] b = new byte[4 + 1 + lenBytes + piece.Length];
        int o = 0;
        b[o++] = 0x54; b[o++] = 0x02; b[o++] = (byte)(offset >> 8); b[o++] = (byte)offset;
        b[o++] = 0x53;
        if (lenBytes == 1) b[o++] = (byte)piece.Length;
        else if (lenBytes == 2) { b[o++] = 0x81; b[o++] = (byte)piece.Length; }
        else { b[o++] = 0x82; b[o++] = (byte)(piece.Length >> 8); b[o++] = (byte)piece.Length; }
        piece.CopyTo(b.AsSpan(o));
        return b;
    }

    /// <summary>DELETE FILE (00 E4 02 00 02 FID).</summary>
    public void DeleteFile(ushort fid)
    {
        ResponseApdu r = Send(new CommandApdu(0x00, 0xE4, 0x02, 0x00, Fid(fid)));
        Check(r, ScHsmCommands.DeleteFile, $"EF {fid:X4}");
    }

    // ------------------------------------------------------------------------------------------
    // WRAP / UNWRAP
    // ------------------------------------------------------------------------------------------

    /// <summary>
    /// WRAP KEY (80 72 kid 92, extended case 2, Le 00 00 00): the key blob encrypted under the DKEK of the
    /// key's domain. Needs a verified user PIN and a complete DKEK.
    /// </summary>
    public byte[] WrapKey(byte keyReference)
    {
        if (keyReference == DeviceKeyReference)
            throw new ArgumentOutOfRangeException(nameof(keyReference), "Key reference 0 is the device's own key; it is never wrapped.");
        ResponseApdu r = Send(new CommandApdu(0x80, 0x72, keyReference, 0x92, default, CommandApdu.MaxExtendedNe));
        Check(r, ScHsmCommands.WrapKey, $"key reference {keyReference}");
        if (r.Data.Length == 0)
            throw new ScHsmCardException(ScHsmCommands.WrapKey, r.SW, "the device answered no key blob");
        return r.Data;
    }

    /// <summary>
    /// UNWRAP KEY (80 74 kid 93) with the blob inline in one extended case-3 APDU (as OpenSC 0.23). The
    /// device stores the key as CC kid (Pico also writes a CV request CE kid and a minimal PRKD C4 kid).
    /// Needs a verified user PIN and the same DKEK as the blob's (its first 8 bytes are the DKEK's KCV).
    /// </summary>
    public void UnwrapKey(byte keyReference, ReadOnlySpan<byte> blob)
    {
        if (keyReference == DeviceKeyReference)
            throw new ArgumentOutOfRangeException(nameof(keyReference), "Key reference 0 is the device's own key; do not overwrite it.");
        if (blob.IsEmpty || blob.Length > CommandApdu.MaxExtendedNc)
            throw new ArgumentException("The key blob must have 1 to 65535 bytes.", nameof(blob));
        ResponseApdu r = Send(new CommandApdu(0x80, 0x74, keyReference, 0x93, blob, null, forceExtended: true));
        Check(r, ScHsmCommands.UnwrapKey, $"key reference {keyReference}");
    }

    // ------------------------------------------------------------------------------------------
    // SIGN / DELETE KEY
    // ------------------------------------------------------------------------------------------

    /// <summary>Algorithm id of SIGN for ECDSA with SHA-256 over the raw message (the card hashes; trace 10).</summary>
    public const byte AlgorithmEcdsaSha256 = 0x73;
    /// <summary>Algorithm id of SIGN for RSA PKCS#1 v1.5 with SHA-256 over the raw message (the card hashes).</summary>
    public const byte AlgorithmRsaPkcs1Sha256 = 0x33;

    /// <summary>Command name used in <see cref="ScHsmCardException"/> for SIGN.</summary>
    public const string SignCommand = "SIGN";

    /// <summary>
    /// SIGN (80 68 kid alg, extended case 4, Le 02 00 as OpenSC sends it): signs <paramref name="data"/> with
    /// the key at <paramref name="keyReference"/>. With <see cref="AlgorithmEcdsaSha256"/> /
    /// <see cref="AlgorithmRsaPkcs1Sha256"/> the card hashes the message itself; ECDSA answers a DER
    /// ECDSA-Sig-Value, RSA the signature block. Needs a verified user PIN.
    /// </summary>
    public byte[] Sign(byte keyReference, byte algorithm, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty || data.Length > CommandApdu.MaxExtendedNc)
            throw new ArgumentException("The data to sign must have 1 to 65535 bytes.", nameof(data));
        ResponseApdu r = Send(new CommandApdu(0x80, 0x68, keyReference, algorithm, data, 512, forceExtended: true));
        Check(r, SignCommand, $"key reference {keyReference}, algorithm {algorithm:X2}");
        return r.Data;
    }

    /// <summary>
    /// Deletes the key at <paramref name="keyReference"/> (DELETE FILE 00 E4 02 00 02 CC kid). Its PRKD (C4 kid)
    /// and certificate (CE kid) are separate files: delete them with <see cref="DeleteFile"/>.
    /// </summary>
    public void DeleteKey(byte keyReference)
    {
        if (keyReference == DeviceKeyReference)
            throw new ArgumentOutOfRangeException(nameof(keyReference), "Key reference 0 is the device's own key; it is never deleted.");
        DeleteFile((ushort)(KeyPrefix << 8 | keyReference));
    }

    // ------------------------------------------------------------------------------------------

    private static byte[] Fid(ushort fid) => [(byte)(fid >> 8), (byte)fid];

    private ResponseApdu Send(CommandApdu command, TransmitOptions? options = null) => Channel.Transmit(command, options);

    private static void Check(ResponseApdu r, string command, string? detail = null)
    {
        if (!r.IsSuccess) throw new ScHsmCardException(command, r.SW, detail);
    }
}
