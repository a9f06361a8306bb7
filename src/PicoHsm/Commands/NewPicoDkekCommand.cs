using System.Management.Automation;
using System.Security;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Dkek;

namespace PicoHsm.Module.Commands;

/// <summary>Which share files New-PicoDkek writes.</summary>
public enum DkekShareFormat { PicoHsm, ScHsmTool }

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

    /// <summary>n of the n-of-m split (PicoHsm format). sc-hsm-tool shares are n-of-n: leave it out or give the share count.</summary>
    [Parameter]
    [ValidateRange(2, 255)]
    public int Threshold { get; set; }

    /// <summary>
    /// PicoHsm: n-of-m Shamir shares (.dkekshare, PBKDF2 + AES-GCM). ScHsmTool: sc-hsm-tool's
    /// share files (.pbe), XOR n-of-n, for teams that keep using sc-hsm-tool; a SmartCard-HSM
    /// announced with that many shares imports them one by one.
    /// </summary>
    [Parameter]
    public DkekShareFormat Format { get; set; } = DkekShareFormat.PicoHsm;

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
        if (Format == DkekShareFormat.ScHsmTool)
        {
            if (Threshold != 0 && Threshold != ShareCount)
                ThrowTerminatingError(NewError("ScHsmToolIsNofN", ErrorCategory.InvalidArgument,
                    $"sc-hsm-tool shares are all needed (the DKEK is their XOR): -Threshold must be left out or equal -ShareCount ({ShareCount}). For n-of-m use -Format PicoHsm.", Threshold));
            Threshold = ShareCount;
        }
        else if (Threshold == 0)
            ThrowTerminatingError(NewError("ThresholdRequired", ErrorCategory.InvalidArgument,
                "-Threshold is required: how many of the -ShareCount custodians are needed to rebuild the DKEK (e.g. -ShareCount 5 -Threshold 3).", null));
        if (Threshold > ShareCount)
            ThrowTerminatingError(NewError("ThresholdTooLarge", ErrorCategory.InvalidArgument,
                $"-Threshold {Threshold} is larger than -ShareCount {ShareCount}: the DKEK could never be rebuilt. Use a threshold of at most the share count.", Threshold));
        string dir = SessionState.Path.GetUnresolvedProviderPathFromPSPath(OutputDirectory);
        var paths = Format == DkekShareFormat.ScHsmTool
            ? DkekCeremony.ShareFilePaths(dir, Label, ShareCount).Select(p => System.IO.Path.ChangeExtension(p, ".pbe")).ToList()
            : DkekCeremony.ShareFilePaths(dir, Label, ShareCount);
        var session = NoImport ? (Session ?? SessionRegistry.Current.Default) : ResolvedSession;
        if (!NoImport) RequireLogin();
        if (!NoImport && Run(() => ResolvedSession.Device.GetDkek()).FirstOrDefault(d => d.SharesTotal is { } t && d.SharesOutstanding is { } o && o < t && !d.Present) is { } partial)
            ThrowTerminatingError(NewError("SharesPending", ErrorCategory.ResourceExists,
                $"'{ResolvedSession.TokenLabel}' already holds {partial.SharesTotal - partial.SharesOutstanding} of {partial.SharesTotal} shares of another DKEK in key domain {partial.KeyDomain}. Import the rest of those shares, or re-initialise the device first.", ResolvedSession));
        if (!NoImport && Run(() => ResolvedSession.Device.GetDkek()).FirstOrDefault(d => d.Present && d.KeyCheckValue is not null) is { } existing)
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

        Func<int, byte[]>? tokenRandom = session is { IsOpen: true, HasPkcs11: true } s ? n => s.Device.GenerateRandom(n) ?? throw new InvalidOperationException("no generator") : null;
        using SecretBytes dkek = DkekGenerator.Create(tokenRandom);
        string kcv = KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span));

        var progress = new ProgressRecord(1, "New-PicoDkek", Format == DkekShareFormat.ScHsmTool
            ? $"Encrypting {ShareCount} sc-hsm-tool share files (10,000,000 MD5 rounds each)"
            : $"Encrypting {ShareCount} share files (PBKDF2, {DkekShareFile.DefaultIterations:N0} iterations each)");
        WriteProgress(progress);
        var backend = NoImport ? null : ResolvedSession.Device;
        bool imported = false;
        if (Format == DkekShareFormat.ScHsmTool)
        {
            var shares = ScHsmDkekShares.Split(dkek.Span, ShareCount);
            try
            {
                var bytes = new List<byte[]>();
                for (int i = 0; i < shares.Count; i++)
                {
                    progress.PercentComplete = 100 * i / shares.Count;
                    WriteProgress(progress);
                    byte[] pw = System.Text.Encoding.UTF8.GetBytes(passwords.Values[i]);
                    try { bytes.Add(ScHsmShareFile.Create(shares[i].Span, pw)); }
                    finally { Array.Clear(pw); }
                }
                for (int i = 0; i < bytes.Count; i++)
                    Run(() => { AtomicFile.WriteAllBytes(paths[i], bytes[i], Force); return 0; }, paths[i]);
                if (backend is IScHsmDevice card)
                {
                    var result = Run(() => card.ImportShares(shares));
                    if (result.KeyCheckValue != kcv)
                        ThrowTerminatingError(NewError("KcvMismatch", ErrorCategory.InvalidResult,
                            $"The card reports DKEK {result.KeyCheckValue ?? "(unknown)"} after the import, not {kcv}: it held shares of another DKEK. Re-initialise it (Initialize-PicoHsm) before a new DKEK.", card));
                    imported = true;
                }
                else if (backend is not null)
                    imported = Run(() => backend.ImportDkek(dkek, Label, Convert.FromHexString(Id)));
            }
            finally
            {
                foreach (var sh in shares) sh.Dispose();
            }
        }
        else
        {
            var files = Run(() => DkekShareSet.Split(dkek.Span, Threshold, ShareCount, Label, passwords.Values, DkekGenerator.MixedRandom(tokenRandom)));
            Run(() => { DkekCeremony.WriteShareFiles(files, paths, Force); return 0; });
            if (backend is not null)
                imported = Run(() => backend.ImportDkek(dkek, Label, Convert.FromHexString(Id)));
        }
        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);
        foreach (var p in paths) WriteVerbose($"Wrote {p}");
        if (imported) WriteVerbose($"DKEK {kcv} imported into '{ResolvedSession.TokenLabel}'.");

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
            DeviceFamily = NoImport ? null : ResolvedSession.Device.Family,
            TokenLabel = NoImport ? null : ResolvedSession.TokenLabel,
            TokenSerial = NoImport ? null : ResolvedSession.SerialNumber,
            Status = NoImport ? "Shares written; not imported (-NoImport)" : "Imported",
        });
    }
}
