using System.Management.Automation;
using System.Security;
using PicoHsm.Backends;
using PicoHsm.Dkek;

namespace PicoHsm.Module.Commands;

/// <summary>
/// Creates a DKEK, splits it n-of-m into password-protected share files (one per custodian) and
/// puts it on the token. Shares are written before the token is changed, so a DKEK is never on
/// a device without its backup.
/// </summary>
[Cmdlet(VerbsCommon.New, "PicoDkek", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(PicoDkek))]
public sealed class NewPicoDkekCommand : PicoSessionCmdletBase
{
    [Parameter(Mandatory = true)]
    [ValidateRange(2, 255)]
    public int ShareCount { get; set; }

    [Parameter(Mandatory = true)]
    [ValidateRange(2, 255)]
    public int Threshold { get; set; }

    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string OutputDirectory { get; set; } = "";

    /// <summary>One password per custodian, in share order; asked for (with confirmation) when not given.</summary>
    [Parameter]
    public SecureString[]? SharePassword { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Label { get; set; } = "dkek";

    [Parameter]
    [ValidatePattern("^([0-9a-fA-F]{2})+$")]
    public string Id { get; set; } = "01";

    /// <summary>Only write the share files (an offline ceremony); the token is not changed.</summary>
    [Parameter]
    public SwitchParameter NoImport { get; set; }

    /// <summary>Overwrite existing share files of the same name.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void EndProcessing()
    {
        if (Threshold > ShareCount)
            ThrowTerminatingError(NewError("ThresholdTooLarge", ErrorCategory.InvalidArgument,
                $"-Threshold {Threshold} is larger than -ShareCount {ShareCount}: the DKEK could never be rebuilt. Use a threshold of at most the share count.", Threshold));
        string dir = SessionState.Path.GetUnresolvedProviderPathFromPSPath(OutputDirectory);
        var paths = DkekCeremony.ShareFilePaths(dir, Label, ShareCount);
        var session = NoImport ? (Session ?? SessionRegistry.Current.Default) : ResolvedSession;
        if (!NoImport) RequireLogin();
        if (!NoImport && Run(() => KeyServices.Backend(ResolvedSession).GetDkek()).FirstOrDefault(d => d.Present && d.KeyCheckValue is not null) is { } existing)
            ThrowTerminatingError(NewError("DkekPresent", ErrorCategory.ResourceExists,
                $"The token '{ResolvedSession.TokenLabel}' already has a DKEK (KCV {existing.KeyCheckValue}). A new one would orphan every backup made under it. Use -NoImport to only write shares, or a fresh token.", ResolvedSession));

        string target = NoImport ? dir : $"{dir} and token '{ResolvedSession.TokenLabel}'";
        if (!ShouldProcess(target, $"Create a {Threshold}-of-{ShareCount} DKEK, write {ShareCount} share files{(NoImport ? "" : " and import the DKEK")}"))
            return;
        if (!Force)
        {
            var clash = paths.FirstOrDefault(File.Exists);
            if (clash is not null)
                ThrowTerminatingError(NewError("ShareFileExists", ErrorCategory.ResourceExists,
                    $"'{clash}' already exists (it may be another DKEK's only share). Move it away, choose another -OutputDirectory, or use -Force.", clash));
        }
        Directory.CreateDirectory(dir);

        var names = Enumerable.Range(1, ShareCount).Select(i => $"share {i} of {ShareCount} ({Path.GetFileName(paths[i - 1])})").ToList();
        using var passwords = Run(() => SharePasswords.Get(this, SharePassword, names, confirm: true, "-SharePassword"));
        foreach (var (p, i) in passwords.Values.Select((p, i) => (p, i)))
            if (!DkekPasswordPolicy.TryValidate(p, out string? problem))
                ThrowTerminatingError(NewError("WeakPassword", ErrorCategory.InvalidArgument, $"The password for share {i + 1}: {problem}", i + 1));

        Func<int, byte[]>? tokenRandom = session is { IsOpen: true } s ? n => { lock (s.Gate) return s.Pkcs11Session.GenerateRandom(n); } : null;
        using SecretBytes dkek = DkekGenerator.Create(tokenRandom);
        string kcv = KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span));

        var progress = new ProgressRecord(1, "New-PicoDkek", $"Encrypting {ShareCount} share files (PBKDF2, {DkekShareFile.DefaultIterations:N0} iterations each)");
        WriteProgress(progress);
        var files = Run(() => DkekShareSet.Split(dkek.Span, Threshold, ShareCount, Label, passwords.Values, DkekGenerator.MixedRandom(tokenRandom)));
        Run(() => { DkekCeremony.WriteShareFiles(files, paths, Force); return 0; });
        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);
        foreach (var p in paths) WriteVerbose($"Wrote {p}");

        bool imported = false;
        if (!NoImport)
        {
            imported = Run(() => KeyServices.Backend(ResolvedSession).ImportDkek(dkek, Label, Convert.FromHexString(Id)));
            WriteVerbose($"DKEK {kcv} imported into '{ResolvedSession.TokenLabel}' as '{Label}' (id {Id}).");
        }
        WriteObject(new PicoDkek
        {
            Present = imported,
            KeyCheckValue = kcv,
            KcvVerified = imported,
            Label = Label,
            Id = Id.ToLowerInvariant(),
            Threshold = Threshold,
            ShareCount = ShareCount,
            ShareFiles = paths.ToArray(),
            Backend = NoImport ? "Offline" : KeyServices.Backend(ResolvedSession).Name,
            TokenLabel = NoImport ? null : ResolvedSession.TokenLabel,
            TokenSerial = NoImport ? null : ResolvedSession.SerialNumber,
            Status = NoImport ? "Shares written; not imported (-NoImport)" : "Imported",
        });
    }
}
