using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.ScHsm.Backend;
using PicoHsm.Dkek;
using PicoHsm.Keys;
using PicoHsm.Operations;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>A host made of lists: what a service asked, showed and reported, with no runspace.</summary>
internal sealed class ListHost : IOperationHost
{
    private readonly Queue<string> _passwords;
    public ListHost(params string[] passwords) => _passwords = new Queue<string>(passwords);
    public CancellationTokenSource Cancel { get; } = new();
    public CancellationToken Cancellation => Cancel.Token;
    public bool Answer { get; set; } = true;
    public List<string> Asked { get; } = new();
    public List<string> Warnings { get; } = new();
    public List<OperationProgress> Progressed { get; } = new();
    public List<(PicoHsmException Error, object? Target)> Failed { get; } = new();
    public bool ShouldProcess(string target, string action) { Asked.Add(action); return Answer; }
    /// <summary>All the passwords the host was made with, as if given with -SharePassword; none: nobody can answer.</summary>
    public IReadOnlyList<char[]>? GivenPasswords() => _passwords.Count == 0 ? null : _passwords.Select(p => p.ToCharArray()).ToList();
    public string PasswordParameter => "-SharePassword";
    public char[]? ReadSecret(string prompt) => null;
    public void Progress(OperationProgress progress) => Progressed.Add(progress);
    public void Warning(string message) => Warnings.Add(message);
    public void Verbose(string message) { }
    public void ItemFailed(PicoHsmException error, object? target) => Failed.Add((error, target));
}

public sealed class ServiceTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "picohsm-ops-" + Guid.NewGuid().ToString("n")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Ceremony_ThenImport_PutsTheSameDkekOnACard()
    {
        var host = new ListHost("custodian one long passphrase", "custodian two long passphrase", "custodian three long passphrase");
        var made = DkekCeremonyService.Create(null, new DkekCeremonyRequest(3, 2, false, _dir, Import: false), host);
        Assert.NotNull(made);
        Assert.Equal(3, made!.ShareFiles.Length);
        Assert.All(made.ShareFiles, f => Assert.True(File.Exists(f)));
        Assert.False(made.Present);

        using var card = CardHarness.Create(shares: 1);
        var importHost = new ListHost("custodian one long passphrase", "custodian three long passphrase");
        var state = DkekImportService.Import(card.Backend, new DkekImportRequest(new[] { made.ShareFiles[0], made.ShareFiles[2] }), importHost);
        var d = Assert.Single(state);
        Assert.Equal(made.KeyCheckValue, d.KeyCheckValue);
        Assert.True(d.Present);
        Assert.Contains(importHost.Progressed, p => p.Completed);
    }

    [Fact]
    public void Ceremony_Declined_WritesNothing()
    {
        var host = new ListHost { Answer = false };
        Assert.Null(DkekCeremonyService.Create(null, new DkekCeremonyRequest(3, 2, false, _dir, Import: false), host));
        Assert.False(Directory.Exists(_dir));
    }

    [Fact]
    public void Ceremony_ThresholdAboveShareCount_IsATypedError()
    {
        var ex = Assert.Throws<PicoHsmException>(() => DkekCeremonyService.Create(null, new DkekCeremonyRequest(2, 3, false, _dir, Import: false), new ListHost()));
        Assert.Equal("ThresholdTooLarge", ex.Reason);
    }

    [Fact]
    public void Import_ScHsmToolVectorShares_WrongPassword_NamesTheFile()
    {
        using var card = CardHarness.Create(shares: 2);
        var paths = new[] { VectorFiles.PathOf("dkek-share-1.pbe"), VectorFiles.PathOf("dkek-share-2.pbe") };
        var ex = Assert.Throws<PicoHsmException>(() => DkekImportService.Import(card.Backend, new DkekImportRequest(paths), new ListHost("share-one-pass", "not it")));
        Assert.Equal("ShareFileWrongPassword", ex.Reason);
        Assert.Equal(paths[1], ex.Target);
    }

    [Fact]
    public void BackupThenRestore_OntoAFreshCardWithTheSameDkek()
    {
        using var source = CardHarness.WithVectorDkek();
        source.Backend.Restore(VectorFiles.Backup("ec256.wky"), new PicoHsm.Devices.RestoreRequest());
        source.Backend.Restore(VectorFiles.Backup("aes256.wky"), new PicoHsm.Devices.RestoreRequest());
        var host = new ListHost();
        var set = DeviceBackupService.Backup(source.Backend, _dir, force: false, host);
        Assert.NotNull(set);
        Assert.Equal(VectorFiles.KcvHex, set!.Kcv);
        Assert.Equal(2, set.Backups.Length);
        Assert.Empty(host.Failed);

        var again = Assert.Throws<PicoHsmException>(() => DeviceBackupService.Backup(source.Backend, _dir, force: false, new ListHost()));
        Assert.Equal("BackupExists", again.Reason);

        using var target = CardHarness.WithVectorDkek();
        var restored = new List<PicoKey>();
        Assert.Equal(2, DeviceRestoreService.Restore(target.Backend, _dir, force: false, new ListHost(), restored.Add));
        Assert.Equal(set.Backups.Select(b => b.KeyType).OrderBy(k => k), restored.Select(k => k.KeyType).OrderBy(k => k));
    }

    [Fact]
    public void Restore_UnderAnotherDkek_IsRefusedBeforeAnyKey()
    {
        using var source = CardHarness.WithVectorDkek();
        source.Backend.Restore(VectorFiles.Backup("aes256.wky"), new PicoHsm.Devices.RestoreRequest());
        DeviceBackupService.Backup(source.Backend, _dir, false, new ListHost());
        using var other = CardHarness.Create(shares: 1, imported: new[] { Enumerable.Repeat((byte)0x42, 32).ToArray() });
        var ex = Assert.Throws<PicoHsmException>(() => DeviceRestoreService.Restore(other.Backend, _dir, false, new ListHost(), _ => { }));
        Assert.Equal("DkekMismatch", ex.Reason);
    }

    [Fact]
    public void Backup_Cancelled_StopsBetweenKeys()
    {
        using var source = CardHarness.WithVectorDkek();
        source.Backend.Restore(VectorFiles.Backup("aes256.wky"), new PicoHsm.Devices.RestoreRequest());
        var host = new ListHost();
        host.Cancel.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => DeviceBackupService.Backup(source.Backend, _dir, false, host));
        Assert.False(File.Exists(Path.Combine(_dir, PicoHsm.Backup.BackupManifest.FileName)));
    }
}
