using System.Text;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;

using PicoHsm.Core.Tests.Support;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Card;

/// <summary>
/// Drives <see cref="ScHsmCard"/> through the APDU transcripts that OpenSC 0.23 exchanged with the real
/// Pico HSM v6.0 firmware: our client must send byte for byte what OpenSC sent.
/// </summary>
public class TraceReplayTests
{
    private static readonly byte[] UserPin = "648219"u8.ToArray();
    private const string SoPinHex = "3537363231383830";
    private static readonly byte[] Share1 = Convert.FromHexString("50996a884581fd3cb5d836f12f071a192ad4a18ccc42518f2da80ebafd3375e6");
    private static readonly byte[] Share2 = Convert.FromHexString("3ab0ffc72d26db6ea3cdab7dd3df3ae3f03c9ac65cef2d7ad33e4fbcbb61fa32");
    private static readonly byte[] DkekKcv = Convert.FromHexString("d5c1a339cd295797");

    [Fact]
    public void Trace01_SelectApplet_ParsesVersion()
    {
        using var ch = new TraceReplayChannel("01-opensc-tool-an.apdu.txt");
        var card = new ScHsmCard(ch);
        ScHsmAppletInfo info = card.SelectApplet();
        Assert.Equal("6.0", info.Version);
        Assert.Equal(new byte[] { 0x00, 0x00, 0xFF, 0x06, 0x00 }, info.ProprietaryInfo);
        Assert.Equal((ushort)0x0000, info.Options);
        ch.AssertAllConsumed();
    }

    [Fact]
    public void Trace02_InitializeDevice_SendsScHsmToolTlvs()
    {
        using var ch = new TraceReplayChannel("02-initialize.apdu.txt");
        var card = new ScHsmCard(ch);
        Assert.Equal("6.0", card.SelectApplet().Version);
        card.InitializeDevice(ScHsmCard.SoPinFromHex(SoPinHex), UserPin, retryCounter: 3, dkekShares: 2);
        ch.AssertAllConsumed();
    }

    [Fact]
    public void Trace03_ImportShares_ReportsProgressAndUnknownKcv()
    {
        using (var ch = new TraceReplayChannel("03a-import-dkek-share-1.apdu.txt"))
        {
            var card = new ScHsmCard(ch);
            ScHsmAppletInfo info = card.SelectApplet();
            Assert.Equal((ushort)0x0001, info.Options);
            ScHsmKeyDomainStatus s = card.ImportDkekShare(0, Share1);
            Assert.Equal(2, s.TotalShares);
            Assert.Equal(1, s.OutstandingShares);
            Assert.Equal(1, s.ImportedShares);
            Assert.False(s.IsComplete);
            Assert.Null(s.Kcv); // Pico answers 00.. before a PIN verify: unknown, not zeros
            Assert.Null(s.KcvHex);
            ch.AssertAllConsumed();
        }
        using (var ch = new TraceReplayChannel("03b-import-dkek-share-2.apdu.txt"))
        {
            var card = new ScHsmCard(ch);
            card.SelectApplet();
            ScHsmKeyDomainStatus s = card.ImportDkekShare(0, Share2);
            Assert.Equal(2, s.TotalShares);
            Assert.Equal(0, s.OutstandingShares);
            Assert.True(s.IsComplete);
            Assert.True(s.HasDkek);
            Assert.Null(s.Kcv);
            ch.AssertAllConsumed();
        }
    }

    [Fact]
    public void Trace04_EnumerateReadFilesPinStatusVerifyAndLogout()
    {
        using var ch = new TraceReplayChannel("04-p11-login-info.apdu.txt");
        var card = new ScHsmCard(ch);
        card.SelectApplet();
        // OpenSC's PKCS#11 bind reads EF.DIR, 2F02 (with its own Le arithmetic), 2F03 and probes 85/86: not ours
        ch.SkipUntil("80 58 00 00", "ENUMERATE OBJECTS");
        IReadOnlyList<ushort> fids = card.EnumerateObjects();
        Assert.Equal(new ushort[] { 0xC400, 0xCC00 }, fids);

        byte[] prkd = card.ReadFile(0xC400);
        Assert.Equal(58, prkd.Length);
        Assert.Equal(0xA0, prkd[0]);
        // The FCP gave the size (58): OpenSC's closing empty READ BINARY is one we do not send.
        ch.SkipUntil("00 A4 00 00 02 CE 00", "OpenSC's empty read at the end of C400");
        byte[] cert = card.ReadFile(0xCE00); // 256 bytes answered with 61 A2, then 162 (OpenSC then reads once more: empty)
        Assert.Equal(418, cert.Length);
        Assert.Equal(new byte[] { 0x67, 0x82, 0x01, 0x9E }, cert[..4]);
        ch.SkipUntil("00 20 00 81", "OpenSC's empty read at the end of CE00");

        ScHsmPinStatus st = card.GetPinStatus();
        Assert.Equal(ScHsmPinState.NotVerified, st.State);
        Assert.Equal(3, st.TriesLeft);
        card.VerifyPin(UserPin);
        card.SelectApplet(); // OpenSC's logout
        ch.AssertAllConsumed();
    }

    [Fact]
    public void Trace04_EnsurePinVerified_AsksStatusThenVerifiesWithoutSelect()
    {
        using var ch = new TraceReplayChannel("04-p11-login-info.apdu.txt");
        var card = new ScHsmCard(ch);
        ch.SkipUntil("00 20 00 81", "PIN status query");
        int calls = 0;
        bool verified = card.EnsurePinVerified(() =>
        {
            calls++;
            return SecretBytes.CopyOf(UserPin);
        });
        Assert.True(verified);
        Assert.Equal(1, calls);
        Assert.Equal(2, ch.Sent.Count); // status + VERIFY, no SELECT
        Assert.Equal(0x20, ch.Sent[1][1]);
        // what is left is OpenSC's logout (re-SELECT)
        Assert.Equal(1, ch.Remaining);
    }

    [Fact]
    public void Trace05a_WriteFileWithErase_DeletesCreatesAndWritesInPieces()
    {
        using var ch = new TraceReplayChannel("05a-p11-keypairgen-ec.apdu.txt");
        var card = new ScHsmCard(ch);
        ch.SkipUntil("00 A4 00 00 02 CE 01", "replace CE01");
        byte[] request = DataWrittenByUpdateBinary(ch, "00 E4 02 00 02 CE 01", "00 A4 00 00 02 C4 01");
        Assert.Equal(490, request.Length);
        card.WriteFile(0xCE01, request, eraseFirst: true);

        // then C401 exists already: plain UPDATE BINARY at offset 0 on the current EF
        Assert.Equal(TraceReplayChannel.Hex("00 A4 00 00 02 C4 01 00"), ch.Peek()!.Command);
        byte[] prkd = DataWrittenByUpdateBinary(ch, "00 A4 00 00 02 C4 01", null);
        card.WriteFile(0xC401, prkd);
        Assert.Equal(1, ch.Remaining); // OpenSC's logout (re-SELECT)
    }

    [Fact]
    public void Trace06_ListKeys_ExcludesDeviceKey()
    {
        using var ch = new TraceReplayChannel("06-p11-list-objects.apdu.txt");
        var card = new ScHsmCard(ch);
        ch.SkipUntil("80 58 00 00", "ENUMERATE OBJECTS");
        IReadOnlyList<ScHsmKeyEntry> keys = card.ListKeys();
        Assert.Equal(new byte[] { 1, 2 }, keys.Select(k => k.KeyReference).ToArray());
        Assert.All(keys, k => Assert.True(k.HasPrivateKeyDescription));
        Assert.All(keys, k => Assert.Null(k.HasCertificate)); // Pico does not list CE xx
        Assert.Equal((ushort)0xCC01, keys[0].KeyFid);
        Assert.Equal((ushort)0xC401, keys[0].PrivateKeyDescriptionFid);
        Assert.Equal((ushort)0xCE02, keys[1].CertificateFid);
    }

    [Fact]
    public void Trace08_WrapKey_ReturnsTheRecordedBlob()
    {
        using var ch = new TraceReplayChannel("08-wrap-key-ec.apdu.txt");
        var card = new ScHsmCard(ch);
        card.SelectApplet();
        card.VerifyPin(UserPin);
        TraceReplayChannel.Exchange recorded = ch.Peek()!;
        byte[] blob = card.WrapKey(1);

        Assert.Equal(recorded.Response[..^2], blob);
        Assert.Equal(331, blob.Length);
        Assert.Equal(DkekKcv, blob[..8]);
        Assert.Equal(0x0C, blob[8]); // EC
        // sc-hsm-tool then reads C401/CE01 with its own buffer arithmetic (Le D6); the file reads are
        // covered by the 04 trace.
        Assert.Equal(TraceReplayChannel.Hex("00 A4 00 00 02 C4 01 00"), ch.Peek()!.Command);
    }

    [Fact]
    public void Trace09_UnwrapKey_SendsTheWkyBlobInlineExtended_ThenRestoresPrkdAndRequest()
    {
        byte[] wky = File.ReadAllBytes(SharedFiles.Vector("ec256.wky"));
        List<byte[]> parts = DerSequenceElements(wky);
        Assert.Equal(0x04, parts[0][0]);
        byte[] blob = DerValue(parts[0]);
        byte[] prkd = parts[1];
        byte[] request = parts[2];
        Assert.Equal(331, blob.Length);

        using var ch = new TraceReplayChannel("09-unwrap-key-ec.apdu.txt");
        var card = new ScHsmCard(ch);
        card.SelectApplet();
        Assert.False(card.FileExists(0xC414));
        Assert.False(card.FileExists(0xCE14));
        card.VerifyPin(UserPin);
        card.UnwrapKey(0x14, blob);
        card.WriteFile(0xC414, prkd);
        card.WriteFile(0xCE14, request);
        ch.AssertAllConsumed();
    }

    [Fact]
    public void Trace10_ListKeys_ProbesUnlistedCertificates()
    {
        using var ch = new TraceReplayChannel("10-p11-sign-ecdsa-sha256.apdu.txt");
        var card = new ScHsmCard(ch);
        ch.SkipUntil("80 58 00 00", "ENUMERATE OBJECTS");
        // the trace continues with the SELECTs OpenSC made for C400 first; the probe needs CE01 next,
        // so only the ENUMERATE answer is used here
        IReadOnlyList<ushort> fids = card.EnumerateObjects();
        Assert.Equal(new ushort[] { 0xC400, 0xCC00, 0xCC01, 0xCC02, 0xCC14, 0xC401, 0xC402, 0xC414 }, fids);
    }

    [Fact]
    public void Trace10_EnsurePinVerified_AfterBind()
    {
        using var ch = new TraceReplayChannel("10-p11-sign-ecdsa-sha256.apdu.txt");
        var card = new ScHsmCard(ch);
        ch.SkipUntil("00 20 00 81", "first PIN status query");
        ScHsmPinStatus st = card.GetPinStatus();
        Assert.False(st.IsVerified);
    }

    [Fact]
    public void AllTraces_Parse()
    {
        foreach (string f in Directory.GetFiles(SharedFiles.TracesDir, "*.apdu.txt"))
        {
            var ch = new TraceReplayChannel(f);
            Assert.NotEmpty(ch.Exchanges);
        }
    }

    /// <summary>
    /// Reassembles the file content that the recorded UPDATE BINARY commands (00 D7 00 00, 54 02 off 53 len data)
    /// between the current position and the next <paramref name="stopAtPrefix"/> wrote.
    /// </summary>
    private static byte[] DataWrittenByUpdateBinary(TraceReplayChannel ch, string startHex, string? stopAtPrefix)
    {
        byte[] stop = stopAtPrefix is null ? [] : TraceReplayChannel.Hex(stopAtPrefix);
        var content = new MemoryStream();
        bool started = false;
        foreach (var e in ch.Exchanges.Skip(ch.Position + 1))
        {
            if (stopAtPrefix is not null && e.Command.AsSpan().StartsWith(stop)) break;
            byte[] c = e.Command;
            if (c[0] != 0x00 || c[1] != 0xD7 || c[2] != 0x00 || c[3] != 0x00) continue;
            started = true;
            int o = 4;
            int lc = c[o] == 0 ? (c[o + 1] << 8 | c[o + 2]) : c[o];
            o += c[o] == 0 ? 3 : 1;
            Assert.Equal(c.Length - o, lc);
            Assert.Equal(0x54, c[o]);
            o += 4;
            Assert.Equal(0x53, c[o++]);
            int len;
            if (c[o] < 0x80) { len = c[o]; o += 1; }
            else { Assert.Equal(0x81, c[o]); len = c[o + 1]; o += 2; }
            content.Write(c, o, len);
        }
        Assert.True(started, $"no UPDATE BINARY after {startHex}");
        return content.ToArray();
    }

    internal static List<byte[]> DerSequenceElements(byte[] der)
    {
        Assert.Equal(0x30, der[0]);
        int o = 1;
        int len = ReadDerLength(der, ref o);
        int end = o + len;
        var list = new List<byte[]>();
        while (o < end)
        {
            int start = o;
            o++; // tag (single byte tags only: 04, 30, A0, A8, 67)
            int l = ReadDerLength(der, ref o);
            o += l;
            list.Add(der[start..o]);
        }
        return list;
    }

    internal static byte[] DerValue(byte[] tlv)
    {
        int o = 1;
        int len = ReadDerLength(tlv, ref o);
        return tlv[o..(o + len)];
    }

    private static int ReadDerLength(byte[] b, ref int o)
    {
        int first = b[o++];
        if (first < 0x80) return first;
        int n = first & 0x7F;
        int len = 0;
        for (int i = 0; i < n; i++) len = (len << 8) | b[o++];
        return len;
    }
}
