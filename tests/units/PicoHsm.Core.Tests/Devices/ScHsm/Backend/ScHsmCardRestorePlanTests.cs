using Sim = PicoHsm.CardSimulator;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

/// <summary>
/// The card's restore pre-flight (PlanRestore) and Restore acting on it: issue 14 Seen 1 (-Force by id, -KeyReference naming
/// the key it destroys), issue 8 Seen 8 (old PRKD / certificate never describe the new key), idempotent reruns.
/// </summary>
public sealed class ScHsmCardRestorePlanTests : CardKeyTestBase
{
    [Theory]
    [InlineData("ec256.wky")]
    [InlineData("rsa2048.wky")]
    public void SameKeyAtItsId_IsAlreadyPresent_AndARerunChangesNothing(string wky)
    {
        using var h = CardHarness.WithVectorDkek();
        var first = h.Backend.Restore(VectorFiles.Backup(wky), new RestoreRequest());
        int from = h.Channel.Sent.Count;
        var plan = h.Backend.PlanRestore(VectorFiles.Backup(wky), new RestoreRequest());
        Assert.Equal(RestoreAction.AlreadyPresent, plan.Action);
        Assert.Equal(first.Id, plan.Existing!.Id);
        Assert.Contains("nothing to do", plan.Describe());
        var again = h.Backend.Restore(VectorFiles.Backup(wky), new RestoreRequest());
        Assert.Equal(first.KeyReference, again.KeyReference);
        Assert.Equal(first.PublicKeyFingerprint, again.PublicKeyFingerprint);
        Assert.Equal(0, h.Channel.Changes(from));
        Assert.Single(UserKeys(h));
    }

    [Fact]
    public void AnotherKeyAtTheId_PlanAndRestoreRefuse_NamingTheKeyAndForce_NothingChanged()
    {
        using var h = CardHarness.WithVectorDkek();
        h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(NewId: [0x01], NewLabel: "other"));
        string before = h.Simulator.ExportState();
        int from = h.Channel.Sent.Count;
        var plan = h.Backend.PlanRestore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest());
        Assert.True(plan.IsRefused);
        var refusal = Assert.Single(plan.Refusals);
        Assert.Equal("IdInUse", refusal.Reason);
        Assert.Contains("'other'", refusal.Message);
        Assert.Contains("key reference 1", refusal.Message);
        Assert.Contains("-Force", refusal.Message);
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest()));
        Assert.Equal(refusal.Message, ex.Message);
        Assert.Equal(0, h.Channel.Changes(from));
        Assert.Equal(before, h.Simulator.ExportState());
    }

    /// <summary>Issue 14 Seen 1: -Force by id replaces the key holding the id, at its own reference, key, PRKD and certificate together.</summary>
    [Fact]
    public void ForceById_ReplacesTheKeyHoldingTheId_AndThePlanNamesIt()
    {
        using var h = CardHarness.WithVectorDkek();
        h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(KeyReference: 5, NewId: [0x01], NewLabel: "other"));
        h.Backend.Restore(VectorFiles.Backup("aes256.wky"), new RestoreRequest(KeyReference: 2));
        var plan = h.Backend.PlanRestore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(Force: true));
        Assert.Equal(RestoreAction.Replace, plan.Action);
        Assert.Contains("key reference 5", plan.Replaces);
        Assert.Contains("id 01", plan.Replaces);
        Assert.Contains("'other'", plan.Replaces);
        Assert.Contains("replacing key reference 5", plan.Describe());

        var key = h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(Force: true));
        Assert.Equal(5, key.KeyReference);
        Assert.Equal("01", key.Id);
        Assert.Equal(KeyKind.Rsa, key.KeyType);
        Assert.Equal(new byte[] { 2, 5 }, UserKeys(h).Order().ToArray());
        Assert.Equal(Sim.CardKeyKind.Rsa, h.Simulator.GetKey(5)!.Kind);
        var file = ScHsmWrappedKeyFile.Read(VectorFiles.Read("rsa2048.wky"));
        Assert.Equal(file.Certificate, h.Simulator.ReadFile(0xCE05));
        var prkd = ScHsmKeyDescription.Parse(h.Simulator.ReadFile(0xC405)!);
        Assert.Equal(KeyKind.Rsa, prkd.Kind);
        Assert.Equal(5, prkd.KeyReference);
        Assert.Equal(ScHsmKeyDescription.Parse(file.PrivateKeyDescription!).Label, prkd.Label);
        AssertSignatureVerifies(h.Backend, 5, KeyKind.Rsa, "rsa2048.pub.der");
    }

    /// <summary>Issue 14 Seen 1: -KeyReference onto an occupied reference names the key it would destroy and needs -Force.</summary>
    [Fact]
    public void KeyReferenceOntoAnotherKey_NamesTheKeyItWouldDestroy_AndNeedsForce()
    {
        using var h = CardHarness.WithVectorDkek();
        h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(KeyReference: 2, NewId: [0x02], NewLabel: "rsa-a"));
        int from = h.Channel.Sent.Count;
        var plan = h.Backend.PlanRestore(VectorFiles.Backup("aes256.wky"), new RestoreRequest(KeyReference: 2));
        var refusal = Assert.Single(plan.Refusals);
        Assert.Equal("KeyReferenceInUse", refusal.Reason);
        Assert.Contains("'rsa-a'", refusal.Message);
        Assert.Contains("id 02", refusal.Message);
        Assert.Contains("-Force", refusal.Message);
        Assert.Equal(0, h.Channel.Changes(from));

        var forced = h.Backend.PlanRestore(VectorFiles.Backup("aes256.wky"), new RestoreRequest(KeyReference: 2, Force: true));
        Assert.Equal(RestoreAction.Replace, forced.Action);
        Assert.Contains("'rsa-a'", forced.Describe());
        var key = h.Backend.Restore(VectorFiles.Backup("aes256.wky"), new RestoreRequest(KeyReference: 2, Force: true));
        Assert.Equal("SecretKey", key.Class);
        Assert.Null(h.Simulator.ReadFile(0xCE02)); // the RSA key's request is gone with it
    }

    /// <summary>-KeyReference to a free reference while another key holds the id: refused (two keys would share it).</summary>
    [Fact]
    public void KeyReferenceElsewhere_WhileAnotherKeyHoldsTheId_IsRefused()
    {
        using var h = CardHarness.WithVectorDkek();
        h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(NewId: [0x01]));
        var plan = h.Backend.PlanRestore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(KeyReference: 9, Force: true));
        Assert.Equal("IdInUse", Assert.Single(plan.Refusals).Reason);
    }

    /// <summary>
    /// Issue 8 Seen 8: -Force onto an occupied reference with a backup that has no PRKD and no certificate, on a card whose
    /// UNWRAP stores the key alone (CardContact): the old key's PRKD and certificate no longer describe the new key.
    /// </summary>
    [Fact]
    public void ForceOntoOccupiedReference_BackupWithoutFiles_OldPrkdAndCertificateDoNotDescribeTheNewKey()
    {
        var o = new Sim.ScHsmOptions { Initialized = true, DkekShares = 1, UnwrapWritesDescription = false };
        o.ImportedShares.Add(VectorFiles.Dkek);
        using var h = new CardHarness(o);
        string x509 = Ec256WithX509(out byte[] cert);
        h.Backend.Restore(BackupFiles.Read(x509), new RestoreRequest(KeyReference: 3));
        Assert.Equal(cert, h.Simulator.ReadFile(0xCE03));

        var rsa = ScHsmWrappedKeyFile.Read(VectorFiles.Read("rsa2048.wky"));
        string bare = Path.Combine(_dir, "bare-rsa.wky");
        File.WriteAllBytes(bare, new ScHsmWrappedKeyFile(rsa.KeyBlob, null, null).ToArray());
        var key = h.Backend.Restore(BackupFiles.Read(bare), new RestoreRequest(KeyReference: 3, Force: true));

        Assert.Null(h.Simulator.ReadFile(0xCE03));                // the EC key's certificate is gone
        var prkd = ScHsmKeyDescription.Parse(h.Simulator.ReadFile(0xC403)!);
        Assert.Equal(KeyKind.Rsa, prkd.Kind);                      // not the EC key's PRKD
        Assert.Equal("bare-rsa", prkd.Label);
        Assert.Equal(KeyKind.Rsa, key.KeyType);
        Assert.False(key.HasCertificate);
        Assert.False(key.IsOrphan);
        AssertSignatureVerifies(h.Backend, 3, KeyKind.Rsa, "rsa2048.pub.der");
    }

    [Fact]
    public void PlanRefusals_WrongDkekAndBadReference_ChangeNothing()
    {
        using var h = CardHarness.Create(1, new[] { Enumerable.Repeat((byte)0x11, 32).ToArray() });
        int from = h.Channel.Sent.Count;
        var plan = h.Backend.PlanRestore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(KeyReference: 300));
        Assert.Equal(new[] { "BadKeyReference", "DkekMismatch" }, plan.Refusals.Select(r => r.Reason).ToArray());
        Assert.Contains("refused", plan.Describe());
        Assert.Equal(0, h.Channel.Changes(from));
    }

    /// <summary>AES: nothing on the card proves the material is the same, so a rerun is refused (IdInUse), not "already present".</summary>
    [Fact]
    public void Aes_AtItsId_IsNotProvable_RefusedWithoutForce_ReplacedWithIt()
    {
        using var h = CardHarness.WithVectorDkek();
        var first = h.Backend.Restore(VectorFiles.Backup("aes256.wky"), new RestoreRequest());
        var plan = h.Backend.PlanRestore(VectorFiles.Backup("aes256.wky"), new RestoreRequest());
        var refusal = Assert.Single(plan.Refusals);
        Assert.Equal("IdInUse", refusal.Reason);
        Assert.Contains("cannot be compared", refusal.Message);
        var again = h.Backend.Restore(VectorFiles.Backup("aes256.wky"), new RestoreRequest(Force: true));
        Assert.Equal(first.KeyReference, again.KeyReference);
        Assert.Single(UserKeys(h));
    }

    /// <summary>Issue 8 Seen 5 on the card: Test-PicoKeyBackup -Session reports what the restore would refuse.</summary>
    [Fact]
    public void TestOfTheBackup_ReportsTheRestoresRefusal_AndAcceptsTheSameKey()
    {
        using var h = CardHarness.WithVectorDkek();
        h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(NewId: [0x01], NewLabel: "other"));
        var clash = h.Backend.Test(VectorFiles.Backup("rsa2048.wky"), restoreTest: false);
        Assert.False(clash.Passed);
        Assert.False(clash.Compatible);
        Assert.Contains(clash.Problems, m => m.Contains("Id 01 is already used") && m.Contains("-Force"));

        h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(Force: true));
        var same = h.Backend.Test(VectorFiles.Backup("rsa2048.wky"), restoreTest: false);
        Assert.True(same.Passed, string.Join(" | ", same.Problems));
        Assert.Contains("already on the card", same.Detail);
    }

    /// <summary>A refused target is a problem of the check, but the restore test still proves the file (at a free reference).</summary>
    [Fact]
    public void RestoreTest_StillRuns_WhenTheTargetWouldBeRefused()
    {
        using var h = CardHarness.WithVectorDkek();
        h.Backend.Restore(VectorFiles.Backup("aes256.wky"), new RestoreRequest());
        var t = h.Backend.Test(VectorFiles.Backup("aes256.wky"), restoreTest: true);
        Assert.True(t.Restorable, string.Join(" | ", t.Problems));
        Assert.False(t.Compatible);
        Assert.False(t.Passed);
        Assert.Contains(t.Problems, m => m.Contains("already used"));
        Assert.Single(UserKeys(h));
    }
}
