using PicoHsm.Common;
using System.Security.Cryptography;
using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Card;

// INITIALIZE DEVICE, DKEK shares and key domains.
public sealed partial class ScHsmCard
{
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
        // The one PIN rule of the module (6..16 bytes; SO-PIN 8), checked before anything is sent.
        PinRules.ValidateSoPin(soPin);
        PinRules.ValidateUserPin(userPin);
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
            CountChange();
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
            CountChange();
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
}
