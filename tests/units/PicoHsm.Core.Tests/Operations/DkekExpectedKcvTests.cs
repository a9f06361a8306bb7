using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.Pkcs11;
using PicoHsm.Core.Tests.Devices.ScHsm.Backend;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Operations;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>
/// Issue 14, Seen 4: shares of two ceremonies. With -ExpectedKcv / -BackupPath the DKEK is combined in
/// the host from the decrypted shares and compared before anything reaches the device.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class DkekExpectedKcvTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("picohsm-kcv-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>A share of another ceremony (another 32-byte value), as sc-hsm-tool writes it.</summary>
    private string OtherCeremonyShare()
    {
        byte[] share = RandomNumberGenerator.GetBytes(32);
        string path = Path.Combine(_dir, "other-ceremony-share-2.pbe");
        File.WriteAllBytes(path, ScHsmShareFile.Create(share, "other-pass"u8));
        CryptographicOperations.ZeroMemory(share);
        return path;
    }

    private string[] MixedShares => new[] { VectorFiles.PathOf("dkek-share-1.pbe"), OtherCeremonyShare() };

    [Fact]
    public void Card_SharesOfTwoCeremonies_WithExpectedKcv_Refused_NothingSent()
    {
        using var card = CardHarness.Create(shares: 2);
        var before = card.Backend.GetDkek().Select(d => (d.Present, d.KeyCheckValue)).ToList();
        int from = card.Channel.Sent.Count;
        var host = new ListHost("share-one-pass", "other-pass");

        var ex = Assert.Throws<PicoHsmException>(() => DkekImportService.Import(card.Backend,
            new DkekImportRequest(MixedShares, ExpectedKcv: VectorFiles.KcvHex), host));

        Assert.Equal("KcvMismatch", ex.Reason);
        Assert.Contains(VectorFiles.KcvHex, ex.Message);
        Assert.DoesNotContain("share-one-pass", ex.Message);
        Assert.Empty(host.Asked); // refused before the confirmation
        Assert.DoesNotContain(card.Channel.SentWithIns(0x52, from), c => c[0] == 0x80 && c.Length > 5 && c[4] != 0x00); // no IMPORT DKEK SHARE
        Assert.Equal(0, card.Channel.Changes(from));
        Assert.Null(card.Simulator.GetDkek());
        Assert.Equal(before, card.Backend.GetDkek().Select(d => (d.Present, d.KeyCheckValue)).ToList());
    }

    [Fact]
    public void Card_SharesOfTwoCeremonies_WithBackupPath_Refused_ThenTheRightShares_Import()
    {
        using var card = CardHarness.Create(shares: 2);
        string backup = VectorFiles.PathOf("ec256.wky"); // wrapped under the vectors' DKEK
        int from = card.Channel.Sent.Count;
        var ex = Assert.Throws<PicoHsmException>(() => DkekImportService.Import(card.Backend,
            new DkekImportRequest(MixedShares, BackupPath: backup), new ListHost("share-one-pass", "other-pass")));
        Assert.Equal("KcvMismatch", ex.Reason);
        Assert.Equal(0, card.Channel.Changes(from));

        var host = new ListHost("share-one-pass", "share-two-pass");
        var state = DkekImportService.Import(card.Backend, new DkekImportRequest(
            new[] { VectorFiles.PathOf("dkek-share-1.pbe"), VectorFiles.PathOf("dkek-share-2.pbe") }, BackupPath: backup), host);
        Assert.Equal(VectorFiles.KcvHex, state.First(d => d.Present).KeyCheckValue);
        Assert.Equal(VectorFiles.Dkek, card.Simulator.GetDkek());
        // checked: no "not checked" warning (the vectors are checked out 0644: their permission warning is not this one)
        Assert.Empty(host.Warnings.Where(w => !w.Contains("can be read by users other than its owner")));
    }

    [Fact]
    public void Card_NoExpectation_ShowsTheKcvItIsAboutToCreate_AndAsks()
    {
        using var card = CardHarness.Create(shares: 2);
        var host = new ListHost("share-one-pass", "share-two-pass") { Answer = false };
        var state = DkekImportService.Import(card.Backend, new DkekImportRequest(
            new[] { VectorFiles.PathOf("dkek-share-1.pbe"), VectorFiles.PathOf("dkek-share-2.pbe") }), host);
        Assert.Empty(state);
        Assert.Contains(host.Warnings, w => w.Contains(VectorFiles.KcvHex) && w.Contains("-ExpectedKcv"));
        Assert.Contains(VectorFiles.KcvHex, Assert.Single(host.Asked));
        Assert.Null(card.Simulator.GetDkek());
    }

    [Fact]
    public void ExpectedKcv_AndBackupPath_Disagreeing_AreRefusedBeforeAnyPassword()
    {
        using var card = CardHarness.Create(shares: 2);
        var ex = Assert.Throws<PicoHsmException>(() => DkekImportService.Import(card.Backend,
            new DkekImportRequest(MixedShares, ExpectedKcv: "00:11:22:33:44:55:66:77", BackupPath: VectorFiles.PathOf("ec256.wky")), new ListHost()));
        Assert.Equal("ExpectedKcvConflict", ex.Reason);
    }

    [Fact]
    public void GenericToken_ScHsmToolSharesOfTwoCeremonies_WithExpectedKcv_Refused_TokenUnchanged()
    {
        using var session = SoftHsmTokens.Connect("core-ceremony");
        var before = session.Device.GetDkek().Select(d => (d.Present, d.KeyCheckValue)).ToList();
        var ex = Assert.Throws<PicoHsmException>(() => DkekImportService.Import(session.Device,
            new DkekImportRequest(MixedShares, ExpectedKcv: VectorFiles.KcvHex), new ListHost("share-one-pass", "other-pass")));
        Assert.Equal("KcvMismatch", ex.Reason);
        Assert.Equal(before, session.Device.GetDkek().Select(d => (d.Present, d.KeyCheckValue)).ToList());
    }

    [Fact]
    public void GenericToken_PicoHsmShares_OfAnotherDkek_RefusedBeforeAnyPassword()
    {
        var made = DkekCeremonyService.Create(null, new DkekCeremonyRequest(2, 2, false, _dir, Import: false),
            new ListHost("custodian one long passphrase", "custodian two long passphrase"));
        Assert.NotNull(made);
        using var session = SoftHsmTokens.Connect("core-ceremony");
        var host = new ListHost(); // no password: none may be asked for
        var ex = Assert.Throws<PicoHsmException>(() => DkekImportService.Import(session.Device,
            new DkekImportRequest(made.ShareFiles, ExpectedKcv: VectorFiles.KcvHex), host));
        Assert.Equal("KcvMismatch", ex.Reason);
        Assert.Contains(made.KeyCheckValue!, ex.Message);
        Assert.Empty(host.Asked);
    }
}
