using PicoHsm.Common;
using PicoHsm.Dkek;
using PicoHsm.Operations;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>
/// Issue 11, the ceremony: each password is checked as it is typed (length, confirmation, not used
/// by another custodian) and only that entry is asked again; given up front, the first problem is
/// one typed error naming the share, and no share file is written.
/// </summary>
public sealed class SharePasswordPromptTests : IDisposable
{
    private const string One = "custodian one long passphrase";
    private const string Two = "custodian two long passphrase";
    private const string Three = "custodian three long passphrase";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "picohsm-prompt-" + Guid.NewGuid().ToString("n")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private DkekCeremonyRequest ThreeShares() => new(3, 2, false, _dir, Import: false);

    [Fact]
    public void Ceremony_AWeakARepeatedAndAMistypedEntry_AreEachAskedAgainAlone()
    {
        var host = new PromptHost(
            One, One,                       // share 1: fine
            "short",                        // share 2: too short, asked again before any confirmation
            One,                            // share 2: custodian 1's password, asked again
            Two, "custodian two typo",      // share 2: confirmation differs, asked again
            Two, Two,                       // share 2: fine
            Three, Three);                  // share 3: fine

        var made = DkekCeremonyService.Create(null, ThreeShares(), host);

        Assert.NotNull(made);
        Assert.Equal(3, Directory.GetFiles(_dir).Length);
        Assert.Equal(2, host.Prompts.Count(p => p.Contains("share 1 of 3", StringComparison.Ordinal)));
        Assert.Equal(6, host.Prompts.Count(p => p.Contains("share 2 of 3", StringComparison.Ordinal)));
        Assert.Equal(2, host.Prompts.Count(p => p.Contains("share 3 of 3", StringComparison.Ordinal)));
        Assert.Equal(3, host.Warnings.Count);
        Assert.All(host.Warnings, w => Assert.StartsWith("Share 2 of 3", w));
        Assert.Contains("too short", host.Warnings[0]);
        Assert.Contains("same as the password of share 1", host.Warnings[1]);
        Assert.Contains("differ", host.Warnings[2]);
        Assert.All(host.Warnings, w => Assert.DoesNotContain("passphrase", w));

        // Each custodian's password opens their share: nothing was mixed up by the retries.
        var files = made!.ShareFiles.Select(DkekCeremony.ReadShareFile).ToList();
        using var dkek = DkekCeremony.Rebuild(new[] { files[1], files[2] }, new[] { Two.ToCharArray(), Three.ToCharArray() });
        Assert.Equal(made.KeyCheckValue, KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span)));
    }

    [Fact]
    public void Ceremony_GivenPasswordsWithARepeat_IsOneTypedErrorBeforeAnyFile()
    {
        var e = Assert.Throws<PicoHsmException>(() => DkekCeremonyService.Create(null, ThreeShares(), new ListHost(One, Two, One)));
        Assert.Equal("DuplicatePassword", e.Reason);
        Assert.Equal(PicoErrorKind.InvalidArgument, e.Kind);
        Assert.Equal(3, e.Target);
        Assert.Contains("share 3 of 3", e.Message);
        Assert.Contains("share 1", e.Message);
        Assert.Contains("-SharePassword", e.Message);
        Assert.DoesNotContain("passphrase", e.Message);
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Ceremony_GivenWeakOrEmptyPassword_NamesTheShare()
    {
        var e = Assert.Throws<PicoHsmException>(() => DkekCeremonyService.Create(null, ThreeShares(), new ListHost(One, "short pw", Three)));
        Assert.Equal("WeakPassword", e.Reason);
        Assert.Equal(2, e.Target);
        e = Assert.Throws<PicoHsmException>(() => DkekCeremonyService.Create(null, ThreeShares(), new ListHost(One, Two, "")));
        Assert.Equal("PasswordEmpty", e.Reason);
        Assert.Equal(3, e.Target);
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Ceremony_NobodyToAnswer_IsPasswordRequiredBeforeAnyFile()
    {
        var host = new PromptHost();
        var e = Assert.Throws<PicoHsmException>(() => DkekCeremonyService.Create(null, ThreeShares(), host));
        Assert.Equal("PasswordRequired", e.Reason);
        Assert.Single(host.Prompts);
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Ceremony_OutputFolderUnusable_IsRefusedBeforeAnyPassword()
    {
        File.WriteAllText(_dir, "a file where the folder should be");
        try
        {
            var host = new PromptHost(One, One, Two, Two, Three, Three);
            var e = Assert.Throws<PicoHsmException>(() => DkekCeremonyService.Create(null, ThreeShares(), host));
            Assert.Equal(_dir, e.Target);
            Assert.Empty(host.Prompts);
        }
        finally { File.Delete(_dir); }
    }

    [Fact]
    public void Import_AShareThatNeverOpens_FailsAfterThreeAttemptsNamingIt()
    {
        var made = DkekCeremonyService.Create(null, ThreeShares(), new ListHost(One, Two, Three));
        using var card = Devices.ScHsm.Backend.CardHarness.Create(shares: 1);
        var host = new PromptHost(One, "wrong 1", "wrong 2", "wrong 3");

        var e = Assert.Throws<PicoHsmException>(() => DkekImportService.Import(card.Backend, new DkekImportRequest(made!.ShareFiles[..2]), host));

        Assert.Equal("ShareFileWrongPasswordOrTampered", e.Reason);
        Assert.Contains(Path.GetFileName(made!.ShareFiles[1]), e.Message);
        Assert.Equal(1 + SharePasswordPrompt.Attempts, host.Prompts.Count);
        Assert.Equal(SharePasswordPrompt.Attempts - 1, host.Warnings.Count);
        Assert.False(card.Backend.GetDkek()[0].Present);
    }
}
