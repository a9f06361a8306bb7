using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;

using PicoHsm.Core.Tests.Support;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Card;

public sealed class ScHsmCardTests
{
    private const string SelectAid = "00A404000BE82B0601040181C31F020100";
    // FCP answered by Pico HSM v6.0 (traces 03a..10)
    private const string FcpHex = "62228102000082010183020000840B2B0601040181C31F0201308A0105850500" + "01FF0600";

    [Fact]
    public void WrapKey_6A88_ThrowsNoDkek()
    {
        var ch = new ScriptedChannel().Expect("80720192000000", "6A88");
        var ex = Assert.Throws<ScHsmCardException>(() => new ScHsmCard(ch).WrapKey(1));
        Assert.Equal(ScHsmError.NoDkek, ex.Error);
        Assert.Equal(ScHsmCommands.WrapKey, ex.Command);
    }

    [Fact]
    public void WrapKey_6985_ThrowsWrapNotAllowed()
    {
        var ch = new ScriptedChannel().Expect("80720292000000", "6985");
        Assert.Equal(ScHsmError.WrapNotAllowed, Assert.Throws<ScHsmCardException>(() => new ScHsmCard(ch).WrapKey(2)).Error);
    }

    [Fact]
    public void UnwrapKey_6400_ThrowsDkekMismatch()
    {
        var ch = new ScriptedChannel().Expect("8074059300000411223344", "6400");
        var ex = Assert.Throws<ScHsmCardException>(() => new ScHsmCard(ch).UnwrapKey(5, [0x11, 0x22, 0x33, 0x44]));
        Assert.Equal(ScHsmError.DkekMismatch, ex.Error);
    }

    [Fact]
    public void DeviceKeyIsNeverWrappedOrOverwritten()
    {
        var card = new ScHsmCard(new ScriptedChannel());
        Assert.Throws<ArgumentOutOfRangeException>(() => card.WrapKey(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => card.UnwrapKey(0, [1]));
    }

    [Fact]
    public void VerifyPin_WrongPin_MessageNeverContainsThePin()
    {
        var ch = new ScriptedChannel().Expect("00200081063634383231" + "39", "63C2");
        var ex = Assert.Throws<ScHsmCardException>(() => new ScHsmCard(ch).VerifyPin("648219"u8));
        Assert.Equal(ScHsmError.WrongPin, ex.Error);
        Assert.Equal(2, ex.PinTriesLeft);
        Assert.DoesNotContain("648219", ex.ToString());
        Assert.DoesNotContain("363438323139", ex.ToString(), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("36 34 38", ex.ToString());
    }

    [Fact]
    public void GetPinStatus_States()
    {
        var ch = new ScriptedChannel()
            .Expect("00200081", "9000")
            .Expect("00200081", "63C3")
            .Expect("00200081", "6983")
            .Expect("00200081", "63C0")
            .Expect("00200081", "6A88")
            .Expect("00200081", "6984")
            .Expect("00200081", "6D00");
        var card = new ScHsmCard(ch);
        Assert.Equal(ScHsmPinState.Verified, card.GetPinStatus().State);
        var s = card.GetPinStatus();
        Assert.Equal(ScHsmPinState.NotVerified, s.State);
        Assert.Equal(3, s.TriesLeft);
        Assert.Equal(ScHsmPinState.Blocked, card.GetPinStatus().State);
        Assert.Equal(ScHsmPinState.Blocked, card.GetPinStatus().State);
        Assert.Equal(ScHsmPinState.NotInitialized, card.GetPinStatus().State);
        Assert.Equal(ScHsmPinState.TransportPin, card.GetPinStatus().State);
        Assert.Throws<ScHsmCardException>(() => card.GetPinStatus());
    }

    [Fact]
    public void EnsurePinVerified_AlreadyVerified_NoSelectNoVerifyNoPinAsked()
    {
        var ch = new ScriptedChannel().Expect("00200081", "9000");
        bool sent = new ScHsmCard(ch).EnsurePinVerified(() => throw new Exception("PIN must not be asked"));
        Assert.False(sent);
        Assert.Single(ch.Sent);
        ch.AssertDone();
    }

    [Fact]
    public void EnsurePinVerified_AppletNotSelected_SelectsThenVerifies()
    {
        var ch = new ScriptedChannel()
            .Expect("00200081", "6D00")
            .Expect(SelectAid, FcpHex + "9000")
            .Expect("00200081", "63C3")
            .Expect("00200081063634383231" + "39", "9000");
        SecretBytes? given = null;
        var card = new ScHsmCard(ch);
        bool sent = card.EnsurePinVerified(() => given = SecretBytes.CopyOf("648219"u8));
        Assert.True(sent);
        Assert.Equal("6.0", card.AppletInfo!.Version);
        Assert.Throws<ObjectDisposedException>(() => given!.Span.Length); // zeroed and disposed
        ch.AssertDone();
        Assert.Equal(0, ch.TransactionDepth);
    }

    [Fact]
    public void EnsurePinVerified_Blocked_Throws()
    {
        var ch = new ScriptedChannel().Expect("00200081", "6983");
        var ex = Assert.Throws<ScHsmCardException>(() => new ScHsmCard(ch).EnsurePinVerified(() => SecretBytes.CopyOf("1"u8)));
        Assert.Equal(ScHsmError.PinBlocked, ex.Error);
    }

    [Fact]
    public void SelectApplet_FallsBackToP2_04_On6A86()
    {
        var ch = new ScriptedChannel()
            .Expect(SelectAid, "6A86")
            .Expect("00A404040BE82B0601040181C31F020100", FcpHex + "9000");
        Assert.Equal("6.0", new ScHsmCard(ch).SelectApplet().Version);
    }

    [Fact]
    public void SelectApplet_NotPresent_ClearError()
    {
        var ch = new ScriptedChannel().Expect(SelectAid, "6A82");
        var ex = Assert.Throws<ScHsmCardException>(() => new ScHsmCard(ch).SelectApplet());
        Assert.Contains("no SmartCard-HSM applet", ex.Message);
    }

    [Fact]
    public void KeyDomainStatus_KcvKnownAfterPin_NullWhenZeros_NotConfiguredOn6A88()
    {
        var ch = new ScriptedChannel()
            .Expect("8052000000", "0200D5C1A339CD2957979000")
            .Expect("8052000100", "02010000000000000000" + "9000")
            .Expect("8052000200", "6A88");
        var card = new ScHsmCard(ch);
        var s0 = card.GetKeyDomainStatus(0);
        Assert.True(s0.IsComplete);
        Assert.Equal("d5c1a339cd295797", s0.KcvHex);
        var s1 = card.GetKeyDomainStatus(1);
        Assert.Null(s1.Kcv);
        Assert.False(s1.IsComplete);
        var s2 = card.GetKeyDomainStatus(2);
        Assert.False(s2.IsConfigured);
        Assert.False(s2.HasDkek);
    }

    [Fact]
    public void KeyDomainStatus_NoDkekConfigured_TotalZero()
    {
        var ch = new ScriptedChannel().Expect("8052000000", "0000" + "0000000000000000" + "9000");
        var s = new ScHsmCard(ch).GetKeyDomainStatus(0);
        Assert.True(s.IsConfigured);
        Assert.False(s.HasDkek);
        Assert.False(s.IsComplete);
    }

    [Fact]
    public void EnumerateKeyDomains_StopsAtNoSuchDomain()
    {
        var ch = new ScriptedChannel()
            .Expect("8052000000", "0200D5C1A339CD2957979000")
            .Expect("8052000100", "6A88")
            .Expect("8052000200", "03010000000000000000" + "9000")
            .Expect("8052000300", "6A86");
        var list = new ScHsmCard(ch).EnumerateKeyDomains();
        Assert.Equal(3, list.Count);
        Assert.True(list[0].IsComplete);
        Assert.False(list[1].IsConfigured);
        Assert.Equal(2, list[2].ImportedShares);
        ch.AssertDone();
    }

    [Fact]
    public void EnumerateKeyDomains_ErrorOnDomain0_Throws()
    {
        var ch = new ScriptedChannel().Expect("8052000000", "6D00");
        Assert.Throws<ScHsmCardException>(() => new ScHsmCard(ch).EnumerateKeyDomains());
    }

    [Fact]
    public void ImportDkekShare_NoDataAnswer_AsksStatus()
    {
        byte[] share = new byte[32];
        share[0] = 0x42;
        var ch = new ScriptedChannel()
            .Expect(c => c.Length == 38 && c[0] == 0x80 && c[1] == 0x52 && c[3] == 0x01 && c[4] == 0x20 && c[5] == 0x42 && c[37] == 0x00, "IMPORT kd 1", [0x90, 0x00])
            .Expect("8052000100", "01000000000000000000" + "9000");
        var s = new ScHsmCard(ch).ImportDkekShare(1, share);
        Assert.Equal(1, s.KeyDomain);
        Assert.True(s.IsComplete);
        Assert.Throws<ArgumentException>(() => new ScHsmCard(ch).ImportDkekShare(0, new byte[31]));
    }

    [Fact]
    public void ReadFile_Pico61xxAfterFullChunk_ReadsOnWithoutGetResponse()
    {
        string chunk = Convert.ToHexString(Enumerable.Repeat((byte)0xAB, 256).ToArray());
        var ch = new ScriptedChannel()
            .Expect("00A4000002C40100", "620E8102012C8201018302C4018A0105" + "9000")
            .Expect("00B10000045402000000", chunk + "6100")
            .Expect("00B10000045402010000", "0102039000")
            .Expect("00B10000045402010300", "9000");
        byte[] data = new ScHsmCard(ch).ReadFile(0xC401);
        Assert.Equal(259, data.Length);
        Assert.Equal(0x03, data[^1]);
        ch.AssertDone();
        Assert.True(ch.TransactionsBegun >= 1);
    }

    /// <summary>
    /// Issue 9 item 6: the firmware's SELECT FCP gives the file size (trace 08: 81 02 00 2A for a PRKD of 42 bytes);
    /// the read ends there instead of with the empty READ BINARY OpenSC ends on: one APDU less per file, two per key
    /// listed or exported. Before, this script failed on the unexpected read at offset 002A.
    /// </summary>
    [Fact]
    public void ReadFile_StopsAtTheSizeTheFcpGives_WithoutAnEmptyRead()
    {
        string prkd = "A028300D0C04742D6563030206C0040101300B0401210303073080020101A10A3008300204000202" + "0100";
        string cert = Convert.ToHexString(Enumerable.Range(0, 490).Select(i => (byte)i).ToArray());
        var ch = new ScriptedChannel()
            .Expect("00A4000002C40100", "620E8102002A8201018302C4018A0105" + "9000")
            .Expect("00B10000045402000000", prkd + "9000")
            .Expect("00A4000002CE0100", "620E810201EA8201018302CE018A0105" + "9000")
            .Expect("00B10000045402000000", cert[..512] + "9000")
            .Expect("00B10000045402010000", cert[512..] + "9000");
        var card = new ScHsmCard(ch);
        Assert.Equal(42, card.ReadPrivateKeyDescription(1)!.Length);
        Assert.Equal(490, card.ReadCertificate(1)!.Length);
        ch.AssertDone();
    }

    [Theory]
    [InlineData("620E8102002A8201018302C4018A0105", 42)]
    [InlineData("620E810201EA8201018302CE018A0105", 490)]
    [InlineData("6203800110", 16)]
    [InlineData("620A82013883023F008A0105", null)] // the applet's DF: no size
    [InlineData("", null)]
    [InlineData("6F03800110", null)]               // not an FCP
    [InlineData("620581FF0000", null)]             // a length past the end
    public void FcpFileSize_ReadsTag80Or81(string fcp, int? size) =>
        Assert.Equal(size, ScHsmCard.FcpFileSize(Convert.FromHexString(fcp)));

    [Fact]
    public void ReadFile_Missing()
    {
        var ch = new ScriptedChannel().Expect("00A4000002C40900", "6A82").Expect("00A4000002C40900", "6A82");
        var card = new ScHsmCard(ch);
        Assert.Null(card.TryReadFile(0xC409));
        Assert.Equal(ScHsmError.NotFound, Assert.Throws<ScHsmCardException>(() => card.ReadFile(0xC409)).Error);
    }

    [Fact]
    public void WriteFile_Missing_CreatesThenWritesPiecesOfAtMost255()
    {
        byte[] content = Enumerable.Range(0, 600).Select(i => (byte)i).ToArray();
        var ch = new ScriptedChannel()
            .Expect("00A4000002CE0700", "6A82")
            .Expect("00D7CE0706540200005300", "9000")
            .Expect(c => c.AsSpan(0, 7).SequenceEqual(new byte[] { 0, 0xD7, 0, 0, 0, 0x01, 0x06 }) && c.AsSpan(7, 7).SequenceEqual(new byte[] { 0x54, 2, 0, 0, 0x53, 0x81, 0xFF }) && c.Length == 7 + 262, "piece 1 (extended)", [0x90, 0])
            .Expect(c => c[4] == 0 && c[5] == 0x01 && c[6] == 0x06 && c[9] == 0x00 && c[10] == 0xFF && c[14] == content[255], "piece 2 at 00FF", [0x90, 0])
            .Expect(c => c[4] == 4 + 2 + 90 && c[7] == 0x01 && c[8] == 0xFE && c[9] == 0x53 && c[10] == 90 && c[^1] == content[^1], "piece 3 at 01FE (short)", [0x90, 0]);
        new ScHsmCard(ch).WriteFile(0xCE07, content);
        ch.AssertDone();
    }

    [Fact]
    public void WriteFile_Empty_OnlyCreates()
    {
        var ch = new ScriptedChannel()
            .Expect("00A4000002CE0700", "6A82")
            .Expect("00D7CE0706540200005300", "9000");
        new ScHsmCard(ch).WriteFile(0xCE07, ReadOnlySpan<byte>.Empty);
        ch.AssertDone();
    }

    [Fact]
    public void DeleteFile_Encoding()
    {
        var ch = new ScriptedChannel().Expect("00E4020002CE01", "9000");
        new ScHsmCard(ch).DeleteFile(0xCE01);
        ch.AssertDone();
    }

    [Fact]
    public void UpdateBinaryBody_LengthEncodings()
    {
        Assert.Equal("540200005303010203", Convert.ToHexString(ScHsmCard.UpdateBinaryBody(0, [1, 2, 3])));
        Assert.StartsWith("540200FF538180", Convert.ToHexString(ScHsmCard.UpdateBinaryBody(255, new byte[128])));
        Assert.StartsWith("54020000537F", Convert.ToHexString(ScHsmCard.UpdateBinaryBody(0, new byte[127])));
    }

    [Fact]
    public void InitializeDevice_WithKeyDomains_AndValidation()
    {
        var ch = new ScriptedChannel().Expect(
            "805000001F" + "80020001" + "8106363438323139" + "82083537363231383830" + "910103" + "920101" + "970104", "9000");
        var card = new ScHsmCard(ch);
        card.InitializeDevice(ScHsmCard.SoPinFromHex("3537363231383830"), "648219"u8, 3, dkekShares: 1, keyDomains: 4);
        ch.AssertDone();
        Assert.Equal("BadSoPin", Assert.Throws<PicoHsmException>(() => card.InitializeDevice(new byte[7], "648219"u8)).Reason);
        Assert.Equal("BadPin", Assert.Throws<PicoHsmException>(() => card.InitializeDevice(new byte[8], "12345"u8)).Reason);
        Assert.Throws<FormatException>(() => ScHsmCard.SoPinFromHex("3537"));
    }

    [Fact]
    public void EnumerateObjects_AndListKeys()
    {
        var ch = new ScriptedChannel()
            .Expect("80580000000000", "C400CC00CC01C401CE01CC059000")
            .Expect("80580000000000", "C400CC00CC01C401CE01CC059000")
            .Expect("00A4000002CE0500", "6A82");
        var card = new ScHsmCard(ch);
        Assert.Equal(6, card.EnumerateObjects().Count);
        var keys = card.ListKeys(probeCertificates: true);
        Assert.Equal(2, keys.Count);
        Assert.Equal(new ScHsmKeyEntry(1, true, true), keys[0]);
        Assert.Equal(new ScHsmKeyEntry(5, false, false), keys[1]);
    }

    [Fact]
    public void ParseFcp_Version()
    {
        var info = ScHsmCard.ParseFcp(Convert.FromHexString(FcpHex));
        Assert.Equal(6, info.VersionMajor);
        Assert.Equal(0, info.VersionMinor);
        Assert.Equal((ushort)0x0001, info.Options);
        Assert.False(info.SupportsSessionPin);
        var cc = ScHsmCard.ParseFcp(Convert.FromHexString("62068504" + "01020304"));
        Assert.Equal("3.4", cc.Version);
        Assert.Null(cc.Options);
    }

    [Theory]
    [InlineData("3BFE1800008131FE458031815448534D31738021408107FA", true)]
    [InlineData("3B8E80018031815448534D3173802140810718", true)]
    [InlineData("3BDE18FF8191FE1FC38031815448534D31738021408107" + "1C", true)]
    [InlineData("3B8F8001804F0CA000000306030001000000006A", false)]
    public void IsScHsmAtr(string atr, bool expected) => Assert.Equal(expected, ScHsmCard.IsScHsmAtr(Convert.FromHexString(atr)));
}
