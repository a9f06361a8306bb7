using Xunit.Abstractions;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Backend;
using PicoHsm.Devices.ScHsm.Card;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

/// <summary>
/// Issue 9, the Pico path: a PlanRestore + Restore pair (what Import-PicoWrappedKey and Restore-PicoHsm send per file)
/// sent 16 APDUs for an EC key on a warm session (the pre-flight twice: PIN state, 2 key domain queries, ENUMERATE, the
/// SELECT of the target's CE file; then UNWRAP, SELECT + 2 UPDATE of CE, SELECT + UPDATE of C4), more than sc-hsm-tool's
/// 12 for --unwrap-key (trace 09). Restore now takes the plan PlanRestore just made when the card shows the same state,
/// the DKEK check asks key domain 0 only, the files are written by id, and the UNWRAP's own PIN check stands in for a
/// PIN state query. The tests after the first show that a card changed between the plan and the restore is still seen:
/// planned again, or refused by the card.
/// </summary>
public sealed class ScHsmCardRestoreReuseTests(ITestOutputHelper output) : CardKeyTestBase
{
    /// <summary>sc-hsm-tool --unwrap-key of an EC key, one process (tests/traces/09-unwrap-key-ec).</summary>
    private const int ScHsmToolUnwrap = 12;

    private static RestoreRequest Request(byte id) => new(NewId: [id], NewLabel: $"k{id:x2}");

    private static bool IsKeyDomainQuery(byte[] c) => c.Length == 5 && c[0] == 0x80 && c[1] == 0x52 && c[2] == 0x00;

    [Fact]
    public void PlanAndRestore_OfOneKey_SendFewerApdusThanScHsmTool_AndTheRestoreAsksNoKeyDomain()
    {
        using var h = CardHarness.WithVectorDkek();
        var backup = VectorFiles.Backup("ec256.wky");
        foreach (byte id in new byte[] { 1, 2 }) h.Backend.Restore(backup, Request(id)); // the session's VERIFY, its first reads
        int from = h.Channel.Sent.Count;
        var plan = h.Backend.PlanRestore(backup, Request(3));
        Assert.Equal(RestoreAction.Create, plan.Action);
        int planned = h.Channel.Sent.Count;
        var key = h.Backend.Restore(backup, Request(3));
        int done = h.Channel.Sent.Count;
        output.WriteLine($"plan {planned - from}, restore {done - planned} APDUs");
        Assert.Equal("03", key.Id);
        Assert.False(key.IsOrphan);
        Assert.Equal(3, key.KeyReference);

        // the plan: PIN state, key domain 0, ENUMERATE, SELECT CE03 (the target is free)
        Assert.Equal(1, h.Channel.Sent.Skip(from).Take(planned - from).Count(IsKeyDomainQuery));
        Assert.Equal(4, planned - from);
        // the restore: ENUMERATE, SELECT CE03 again; UNWRAP (which checks the PIN itself); the request in 2 pieces and
        // the PRKD, by id
        var restore = h.Channel.Sent.Skip(planned).ToList();
        Assert.DoesNotContain(restore, IsKeyDomainQuery);
        Assert.DoesNotContain(restore, c => c[1] == 0x20);
        Assert.Single(restore, c => c[1] == 0x58);
        Assert.Single(restore, c => c[1] == 0xA4);
        Assert.Equal(6, restore.Count);
        Assert.True(done - from < ScHsmToolUnwrap, $"{done - from} APDUs");

        // what was written is what a new session reads from the card
        var channel = new SimulatorChannel(h.Simulator);
        using var fresh = new ScHsmCardBackend(new DeviceContext(ScHsmCardBackend.ReadToken(channel)), channel, null);
        var seen = fresh.ListKeys().Single(k => k.KeyReference == 3);
        Assert.Equal(("03", "k03", key.PublicKeyFingerprint), (seen.Id, seen.Label, seen.PublicKeyFingerprint));
    }

    /// <summary>Another program (its own channel and client, the same card) between the plan and the restore.</summary>
    private static ScHsmCardBackend Other(CardHarness h, out SimulatorChannel channel)
    {
        channel = new SimulatorChannel(h.Simulator);
        using var pin = SecretBytes.CopyOf(System.Text.Encoding.ASCII.GetBytes(CardHarness.Pin));
        return new ScHsmCardBackend(new DeviceContext(ScHsmCardBackend.ReadToken(channel)), channel, pin);
    }

    [Fact]
    public void AKeyWrittenAtThePlannedReference_BeforeTheRestore_IsKept_AndTheRestoreGoesElsewhere()
    {
        using var h = CardHarness.WithVectorDkek();
        var plan = h.Backend.PlanRestore(VectorFiles.Backup("ec256.wky"), Request(0x11));
        Assert.Equal(RestoreAction.Create, plan.Action);
        Assert.Contains("key reference 1 ", plan.Target + " ");
        using (var other = Other(h, out _))
            other.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(NewId: [0x22], NewLabel: "theirs", KeyReference: 1));
        var key = h.Backend.Restore(VectorFiles.Backup("ec256.wky"), Request(0x11));
        Assert.NotEqual(1, key.KeyReference);
        var keys = h.Backend.ListKeys();
        Assert.Equal("theirs", keys.Single(k => k.KeyReference == 1).Label);
        Assert.Equal("k11", keys.Single(k => k.KeyReference == key.KeyReference).Label);
    }

    [Fact]
    public void ACertificateFileWrittenAtThePlannedReference_WhichEnumerateDoesNotList_IsKept()
    {
        using var h = CardHarness.WithVectorDkek();
        var plan = h.Backend.PlanRestore(VectorFiles.Backup("ec256.wky"), Request(0x11));
        Assert.Equal(RestoreAction.Create, plan.Action);
        byte[] theirs = VectorFiles.Backup("rsa2048.wky").ScHsmFile is { } f ? ScHsmWrappedKeyFileCertificate(f) : throw new InvalidOperationException();
        using (var other = Other(h, out _)) other.Card.WriteFile(0xCE01, theirs); // no key: not listed by ENUMERATE
        var key = h.Backend.Restore(VectorFiles.Backup("ec256.wky"), Request(0x11));
        Assert.NotEqual(1, key.KeyReference);
        Assert.Equal(theirs, h.Simulator.ReadFile(0xCE01));
    }

    private static byte[] ScHsmWrappedKeyFileCertificate(byte[] file) =>
        PicoHsm.Devices.ScHsm.Formats.ScHsmWrappedKeyFile.Read(file).Certificate ?? throw new InvalidOperationException("the vector has a certificate");

    [Fact]
    public void ADkekReplacedBetweenPlanAndRestore_TheCardRefusesTheUnwrap_AndTheRefusalSaysDkekMismatch()
    {
        using var h = CardHarness.WithVectorDkek();
        var backup = RestoreOneAndPlanTheSecond(h);
        // another program deletes domain 0's DKEK and imports another (the PIN stays verified, the file list the same)
        using (var other = Other(h, out var ch))
        {
            Assert.Equal(0x9000, Sw(ch.Transmit([0x80, 0x52, 0x04, 0x00, 0x00])));
            byte[] share = new byte[32];
            share[0] = 0x5A;
            Assert.Equal(0x9000, Sw(ch.Transmit([0x80, 0x52, 0x00, 0x00, 0x20, .. share, 0x00])));
        }
        string before = h.Simulator.ExportState();
        int from = h.Channel.Sent.Count;
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Restore(backup, Request(0x02)));
        Assert.Equal("DkekMismatch", ex.Reason);
        Assert.Contains(VectorFiles.KcvHex, ex.Message);
        Assert.Equal(before, h.Simulator.ExportState());
        Assert.Single(h.Channel.SentWithIns(0x74, from)); // the card itself refused the UNWRAP
    }

    private static int Sw(byte[] r) => r[^2] << 8 | r[^1];

    /// <summary>ec256.wky restored under id 01, then planned under id 02 (a plan the restore of id 02 may take).</summary>
    private static PicoHsm.Backup.PicoKeyBackup RestoreOneAndPlanTheSecond(CardHarness h)
    {
        var backup = VectorFiles.Backup("ec256.wky");
        h.Backend.Restore(backup, Request(0x01));
        Assert.Equal(RestoreAction.Create, h.Backend.PlanRestore(backup, Request(0x02)).Action);
        return backup;
    }

    [Fact]
    public void ACardResetBetweenPlanAndRestore_IsPlannedAgain_WithAVerify()
    {
        using var h = CardHarness.WithVectorDkek();
        var backup = VectorFiles.Backup("ec256.wky");
        Assert.Equal(RestoreAction.Create, h.Backend.PlanRestore(backup, Request(0x05)).Action);
        h.Simulator.Reset();
        int from = h.Channel.Sent.Count;
        var key = h.Backend.Restore(backup, Request(0x05));
        Assert.Equal("05", key.Id);
        Assert.Contains(h.Channel.SentWithIns(0x20, from), c => c.Length > 5); // VERIFY with the PIN copy
        Assert.Contains(h.Channel.Sent.Skip(from), IsKeyDomainQuery);           // and the full plan again
    }

    [Fact]
    public void APinSessionEndedBetweenPlanAndRestore_TheCardRefusesTheUnwrap_ThenTheRestoreVerifiesPlansAgainAndWritesOnce()
    {
        using var h = CardHarness.WithVectorDkek();
        var backup = RestoreOneAndPlanTheSecond(h);
        // another program selects the applet (the card logs the PIN out), and changes nothing else
        var other = new ScHsmCard(new SimulatorChannel(h.Simulator));
        other.SelectApplet();
        Assert.Equal(ScHsmPinState.NotVerified, other.GetPinStatus().State);
        int from = h.Channel.Sent.Count;
        var key = h.Backend.Restore(backup, Request(0x02));
        Assert.Equal(("02", "k02", false), (key.Id, key.Label, key.IsOrphan));
        var unwraps = h.Channel.SentWithIns(0x74, from).ToList();
        Assert.Equal(2, unwraps.Count);                                          // refused (6982, nothing written), then done
        Assert.Contains(h.Channel.SentWithIns(0x20, from), c => c.Length > 5); // VERIFY with the PIN copy between them
        Assert.Contains(h.Channel.Sent.Skip(from), IsKeyDomainQuery);           // and the full plan again
        var keys = h.Backend.ListKeys();
        Assert.Equal(2, keys.Count);
        Assert.Single(keys, k => k.Id == "02" && k.KeyReference == key.KeyReference);
    }

    [Fact]
    public void APlanForAnotherFileOrRequest_IsNotTaken()
    {
        using var h = CardHarness.WithVectorDkek();
        var ec = VectorFiles.Backup("ec256.wky");
        h.Backend.Restore(ec, Request(0x01));
        Assert.Equal(RestoreAction.Create, h.Backend.PlanRestore(ec, Request(0x02)).Action);
        // another file under the id the first restore took: planned again, and refused (the plan was for ec256.wky, id 02)
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), Request(0x01)));
        Assert.Equal("IdInUse", ex.Reason);
        Assert.Single(h.Backend.ListKeys());
    }
}
