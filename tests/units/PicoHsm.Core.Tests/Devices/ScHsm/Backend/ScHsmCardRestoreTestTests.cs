using System.Security.Cryptography;
using PicoHsm.Backup;
using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

public sealed class ScHsmCardRestoreTestTests : CardKeyTestBase
{
    [Theory]
    [InlineData("rsa2048.wky")]
    [InlineData("ec256.wky")]
    [InlineData("aes256.wky")]
    [InlineData("offline-rsa2048-crt.wky")]
    public void Test_RestoreTest_PassesForEachVector_AndLeavesNothingBehind(string name)
    {
        using var h = CardHarness.WithVectorDkek();
        string before = h.Simulator.ExportState();
        var r = h.Backend.Test(VectorFiles.Backup(name), restoreTest: true);
        Assert.True(r.Valid);
        Assert.True(r.DkekMatch);
        Assert.True(r.Compatible);
        Assert.True(r.Restorable, string.Join(" | ", r.Problems) + " " + r.Detail);
        Assert.Empty(r.Problems);
        Assert.True(r.Passed);
        Assert.Equal(VectorFiles.KcvHex, r.Kcv);
        Assert.Empty(UserKeys(h));
        Assert.Equal(before.Length, h.Simulator.ExportState().Length);
        // the temporary key's C4/CE files are gone too
        for (int kid = 1; kid < 255; kid++)
        {
            Assert.Null(h.Simulator.ReadFile((ushort)(0xC400 | kid)));
            Assert.Null(h.Simulator.ReadFile((ushort)(0xCE00 | kid)));
        }
        if (name != "aes256.wky")
            Assert.NotEmpty(h.Channel.SentWithIns(0x68)); // it really signed
    }

    [Fact]
    public void Test_CorruptedBlob_NotRestorable_TemporaryKeyDeleted()
    {
        using var h = CardHarness.WithVectorDkek();
        var r = h.Backend.Test(Corrupted("rsa2048.wky"), restoreTest: true);
        Assert.True(r.Valid);
        Assert.True(r.DkekMatch);
        Assert.False(r.Restorable);
        Assert.False(r.Passed);
        Assert.Empty(UserKeys(h));
    }

    [Fact]
    public void Test_WrongDkek_NoRestoreAttempted()
    {
        using var h = CardHarness.Create(1, new[] { Enumerable.Repeat((byte)0x11, 32).ToArray() });
        int from = h.Channel.Sent.Count;
        var r = h.Backend.Test(VectorFiles.Backup("ec256.wky"), restoreTest: true);
        Assert.False(r.DkekMatch);
        Assert.False(r.Restorable);
        Assert.Contains(r.Problems, p => p.Contains(VectorFiles.KcvHex));
        Assert.Equal(0, h.Channel.Changes(from));
    }

    [Fact]
    public void Test_WithoutRestoreTest_DoesNotTouchTheCard()
    {
        using var h = CardHarness.WithVectorDkek();
        int from = h.Channel.Sent.Count;
        var r = h.Backend.Test(VectorFiles.Backup("rsa2048.wky"), restoreTest: false);
        Assert.True(r.DkekMatch);
        Assert.Null(r.Restorable);
        Assert.True(r.Passed);
        Assert.Equal(0, h.Channel.Changes(from));
    }

    [Fact]
    public void Test_TheKeyPairsWithTheOriginalOnly_ATamperedPublicKeyFails()
    {
        using var h = CardHarness.WithVectorDkek();
        var other = ScHsmWrappedKeyFile.Read(VectorFiles.Read("rsa2048.wky"));
        string path = Path.Combine(_dir, "mixed.wky");
        // An RSA blob with the EC key's request: it contradicts the blob (not under its CMAC), so the file is
        // refused when read, before anything reaches the card (the offline check reports it too).
        var ec = ScHsmWrappedKeyFile.Read(VectorFiles.Read("ec256.wky"));
        File.WriteAllBytes(path, new ScHsmWrappedKeyFile(other.KeyBlob, other.PrivateKeyDescription, ec.Certificate).ToArray());
        int from = h.Channel.Sent.Count;
        Assert.Equal("BackupInconsistent", Assert.Throws<PicoHsm.Common.PicoHsmException>(() => BackupFiles.Read(path)).Reason);
        Assert.Equal(from, h.Channel.Sent.Count);
        Assert.Empty(UserKeys(h));
    }

    [Fact]
    public void Test_WithoutPin_KcvUnknown_DkekMatchIsNull_AndTheReasonIsGiven()
    {
        using var h = CardHarness.WithVectorDkek(withPin: false);
        int from = h.Channel.Sent.Count;
        var r = h.Backend.Test(VectorFiles.Backup("ec256.wky"), restoreTest: true);
        Assert.True(r.Valid);
        Assert.Null(r.DkekMatch);
        Assert.False(r.Restorable);
        Assert.Contains(r.Problems, p => p.Contains("PIN"));
        Assert.Equal(0, h.Channel.Changes(from));
    }

    [Fact]
    public void Test_PkbBackup_IsAValidFileTheCardCannotRestore_ACorruptFileIsNotValid()
    {
        using var h = CardHarness.WithVectorDkek();
        int from = h.Channel.Sent.Count;
        var pkb = new PicoKeyBackup { Path = "x.pkb", Format = "PicoHsm", Kcv = VectorFiles.KcvHex, Sha256 = "00" };
        var r = h.Backend.Test(pkb, restoreTest: true);
        Assert.True(r.Valid);
        Assert.False(r.Compatible);
        Assert.Contains(r.Problems, p => p.Contains(".wky"));

        var garbage = new PicoKeyBackup { Path = "g.wky", Format = "ScHsmTool", Kcv = VectorFiles.KcvHex, Sha256 = "00", ScHsmFile = [0x30, 0x03, 0x01] };
        var g = h.Backend.Test(garbage, restoreTest: true);
        Assert.False(g.Valid);
        Assert.False(g.Compatible);
        Assert.Equal(from, h.Channel.Sent.Count);
    }
}
