using Net.Pkcs11Interop.Common;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.Pkcs11;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Operations;
using PicoHsm.Session;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>
/// A host that answers prompts like a person at the keyboard: each <see cref="ReadSecret"/> takes
/// the next scripted entry (none left: nobody can answer), and every prompt and warning is kept.
/// </summary>
internal sealed class PromptHost : IOperationHost
{
    private readonly Queue<string> _entries;
    public PromptHost(params string[] entries) => _entries = new Queue<string>(entries);
    public CancellationToken Cancellation => CancellationToken.None;
    public List<string> Prompts { get; } = new();
    public List<string> Warnings { get; } = new();
    public bool ShouldProcess(string target, string action) => true;
    public IReadOnlyList<char[]>? GivenPasswords() => null;
    public string PasswordParameter => "-SharePassword";
    public char[]? ReadSecret(string prompt)
    {
        Prompts.Add(prompt);
        return _entries.TryDequeue(out string? e) ? e.ToCharArray() : null;
    }
    public void Progress(OperationProgress progress) { }
    public void Warning(string message) => Warnings.Add(message);
    public void Verbose(string message) { }
    public void ItemFailed(PicoHsmException error, object? target) { }
}

/// <summary>
/// The DKEK ceremony and import on real SoftHSM2 tokens (issue 8, Seen 2; issue 11, the ceremony):
/// the DKEK takes an id no object uses, a taken id is refused before any password or file, a
/// failure after the shares were written leaves none, and each password is checked as it is typed.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class DkekCeremonyTokenTests : IDisposable
{
    private static readonly string[] Five = Enumerable.Range(1, 5).Select(i => $"custodian {i} long passphrase").ToArray();
    private readonly SoftHsmTokens _hsm; // the collection's SoftHSM2 configuration, set before SoftHSM2 loads
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "picohsm-ceremony-" + Guid.NewGuid().ToString("n")[..8]);

    public DkekCeremonyTokenTests(SoftHsmTokens hsm) => _hsm = hsm;

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>
    /// The class's token ("core-ceremony"), wiped by initialising it again (C_InitToken on a token
    /// with no open session), and connected: every test starts from an empty token.
    /// </summary>
    private static PicoHsmSession NewToken()
    {
        const string label = "core-ceremony", soPin = "3537363231383830";
        using var use = Pkcs11Modules.Use(SoftHsmTokens.Module, refresh: false); // raw PKCS#11 work: no connect may reload the module under it
        var lib = Pkcs11Modules.Load(SoftHsmTokens.Module);
        var slot = lib.GetSlotList(SlotsType.WithTokenPresent).First(x => x.GetTokenInfo() is { TokenFlags.TokenInitialized: true, Label: label });
        slot.InitToken(soPin, label);
        using (var so = slot.OpenSession(SessionType.ReadWrite))
        {
            so.Login(CKU.CKU_SO, soPin);
            so.InitPin(SoftHsmTokens.Pin);
            so.Logout();
        }
        return SoftHsmTokens.Connect(label);
    }

    /// <summary>A token with EC keys at ids 01..04, the ids a CA tool hands out first.</summary>
    private PicoHsmSession TokenWithKeys01To04()
    {
        var s = NewToken();
        var gen = Assert.IsAssignableFrom<IKeyGenerator>(s.Device);
        for (byte i = 1; i <= 4; i++)
            gen.GenerateKey(KeyKind.Ec, 256, "P-256", new[] { i }, $"key {i}", extractable: true);
        return s;
    }

    private static List<string> IdsOfAllObjects(PicoHsmSession s)
    {
        var p11 = ((Pkcs11DkekBackend)s.Device).Connection.Session;
        return Find(p11).Select(h => IdHex(Read(p11, h, new List<CKA> { CKA.CKA_ID })[CKA.CKA_ID]?.GetValueAsByteArray())).ToList();
    }

    private bool NoShareFiles() => !Directory.Exists(_dir) || Directory.GetFiles(_dir).Length == 0;

    [SoftHsmFact]
    public void Ceremony_OnTokenWithKeys01To04_TakesAnIdNoObjectUses()
    {
        using var s = TokenWithKeys01To04();
        var made = DkekCeremonyService.Create(s.Device, new DkekCeremonyRequest(5, 3, false, _dir), new ListHost(Five));

        Assert.NotNull(made);
        Assert.True(made!.Present);
        Assert.Equal("646b656b", made.Id);
        Assert.Equal(5, Directory.GetFiles(_dir).Length);
        var shown = s.Device.GetDkek().Single();
        Assert.True(shown.KcvVerified);
        Assert.Equal("646b656b", shown.Id);
        Assert.Equal(new[] { "01", "02", "03", "04" }, s.Device.ListKeys().Select(k => k.Id).OrderBy(i => i));
        // The DKEK key and its record carry that id; no key, public key or certificate does.
        var ids = IdsOfAllObjects(s);
        Assert.Single(ids, i => i == "646b656b");
    }

    [SoftHsmFact]
    public void Ceremony_DefaultIdTaken_TakesTheNextFreeOne()
    {
        using var s = NewToken();
        var gen = Assert.IsAssignableFrom<IKeyGenerator>(s.Device);
        gen.GenerateKey(KeyKind.Aes, 256, null, System.Text.Encoding.ASCII.GetBytes("dkek"), "a key at the default id", extractable: true);

        var made = DkekCeremonyService.Create(s.Device, new DkekCeremonyRequest(2, 2, false, _dir), new ListHost(Five[..2]));

        Assert.Equal("646b656b01", made!.Id);
        Assert.Equal("646b656b01", s.Device.GetDkek().Single().Id);
    }

    [SoftHsmFact]
    public void Ceremony_ExplicitTakenId_IsRefusedBeforeAnyPromptOrFile()
    {
        using var s = TokenWithKeys01To04();
        var prompts = new PromptHost(Five);
        var e = Assert.Throws<PicoHsmException>(() => DkekCeremonyService.Create(s.Device, new DkekCeremonyRequest(5, 3, false, _dir, Id: "03"), prompts));
        Assert.Equal("IdInUse", e.Reason);
        Assert.Contains("key 3", e.Message);
        Assert.Empty(prompts.Prompts);
        Assert.True(NoShareFiles());

        // Non-interactive with no passwords: the id is the error, not the missing passwords.
        e = Assert.Throws<PicoHsmException>(() => DkekCeremonyService.Create(s.Device, new DkekCeremonyRequest(5, 3, false, _dir, Id: "01"), new ListHost()));
        Assert.Equal("IdInUse", e.Reason);
        Assert.True(NoShareFiles());
        Assert.False(s.Device.GetDkek().Single().Present);
    }

    [SoftHsmFact]
    public void Ceremony_TokenRefusesTheImportAfterTheSharesWereWritten_LeavesNoShareFile()
    {
        // A public key alone at id 05 is no key of the catalogue, so only the token's own check
        // at the import finds the clash, after the shares were written.
        using var s = NewToken();
        var gen = Assert.IsAssignableFrom<IKeyGenerator>(s.Device);
        gen.GenerateKey(KeyKind.Ec, 256, "P-256", new byte[] { 5 }, "half a key", extractable: true);
        var p11 = ((Pkcs11DkekBackend)s.Device).Connection.Session;
        foreach (var h in Find(p11, (CKA.CKA_CLASS, CKO.CKO_PRIVATE_KEY), (CKA.CKA_ID, new byte[] { 5 }))) p11.DestroyObject(h);
        var host = new ListHost(Five[..3]);

        var e = Assert.Throws<PicoHsmException>(() => DkekCeremonyService.Create(s.Device, new DkekCeremonyRequest(3, 2, false, _dir, Id: "05"), host));

        Assert.Equal("IdInUse", e.Reason);
        Assert.True(Directory.Exists(_dir));
        Assert.Empty(Directory.GetFiles(_dir));
        Assert.Contains(host.Warnings, w => w.Contains("were removed", StringComparison.Ordinal));
        Assert.False(s.Device.GetDkek().Single().Present);
    }

    [SoftHsmFact]
    public void Import_ExplicitTakenId_IsRefusedBeforeAnyPassword()
    {
        var made = DkekCeremonyService.Create(null, new DkekCeremonyRequest(3, 2, false, _dir, Import: false), new ListHost(Five[..3]));
        using var s = TokenWithKeys01To04();
        var prompts = new PromptHost(Five);
        var e = Assert.Throws<PicoHsmException>(() => DkekImportService.Import(s.Device, new DkekImportRequest(made!.ShareFiles[..2], Id: "02"), prompts));
        Assert.Equal("IdInUse", e.Reason);
        Assert.Empty(prompts.Prompts);

        var state = DkekImportService.Import(s.Device, new DkekImportRequest(made!.ShareFiles[..2]), new ListHost(Five[..2]));
        Assert.Equal("646b656b", Assert.Single(state).Id);
        Assert.Equal(made.KeyCheckValue, state[0].KeyCheckValue);
    }

    [SoftHsmFact]
    public void ExistingDkekAtId01_IsStillFoundAndKeptOutOfTheKeys()
    {
        using var s = NewToken();
        using var dkek = SoftHsmTokens.Dkek(41);
        Assert.True(s.Device.ImportDkek(dkek, "dkek", new byte[] { 1 }));
        var d = s.Device.GetDkek().Single();
        Assert.Equal("01", d.Id);
        Assert.True(d.KcvVerified);
        Assert.Empty(s.Device.ListKeys());
    }

    [SoftHsmFact]
    public void Import_WrongPasswordForOneShare_AsksThatShareAgainOnly()
    {
        var made = DkekCeremonyService.Create(null, new DkekCeremonyRequest(5, 3, false, _dir, Import: false), new ListHost(Five));
        var files = new[] { made!.ShareFiles[0], made.ShareFiles[3], made.ShareFiles[4] };
        using var s = NewToken();
        var host = new PromptHost(Five[0], "not the password of share 4", Five[3], Five[4]);

        var state = DkekImportService.Import(s.Device, new DkekImportRequest(files), host);

        Assert.Equal(made.KeyCheckValue, Assert.Single(state).KeyCheckValue);
        Assert.Equal(4, host.Prompts.Count);
        Assert.Single(host.Prompts, p => p.Contains("share 1 of 5", StringComparison.Ordinal));
        Assert.Equal(2, host.Prompts.Count(p => p.Contains("share 4 of 5", StringComparison.Ordinal)));
        Assert.Single(host.Prompts, p => p.Contains("share 5 of 5", StringComparison.Ordinal));
        var w = Assert.Single(host.Warnings);
        Assert.Contains("share 4 of 5", w, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("not the password", w);
    }

    [SoftHsmFact]
    public void Import_OfTheDkekTheTokenHolds_AsksNoPassword()
    {
        using var s = NewToken();
        var made = DkekCeremonyService.Create(s.Device, new DkekCeremonyRequest(3, 2, false, _dir), new ListHost(Five[..3]));
        var host = new PromptHost();

        var state = DkekImportService.Import(s.Device, new DkekImportRequest(made!.ShareFiles[..2]), host);

        Assert.Empty(host.Prompts);
        Assert.Equal("Already present", Assert.Single(state).Status);
        Assert.Equal(made.KeyCheckValue, state[0].KeyCheckValue);
        Assert.Contains(host.Warnings, w => w.Contains("already holds", StringComparison.Ordinal));
    }
}
