using System.Management.Automation;
using System.Security;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Dkek;

namespace PicoHsm.Module.Commands;

/// <summary>Rebuilds the DKEK from any n share files and puts it on the token (a replacement device).</summary>
[Cmdlet(VerbsData.Import, "PicoDkek", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(PicoDkek))]
public sealed class ImportPicoDkekCommand : PicoSessionCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName", "ShareFiles")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    /// <summary>The password of each file, in the order of -Path; asked for per file when not given.</summary>
    [Parameter]
    public SecureString[]? SharePassword { get; set; }

    /// <summary>
    /// sc-hsm-tool threshold-password share files (--pwd-shares-threshold): the prime the
    /// custodians were shown (hex with colons). With it, -PasswordShare replaces -SharePassword.
    /// </summary>
    [Parameter]
    public string? PasswordSharePrime { get; set; }

    /// <summary>
    /// The custodians' password shares, at least the threshold of them: the objects Update-PicoDkekShare
    /// writes, or SecureStrings holding "id:value" ("1:3f:3e:fa:…"); asked per custodian when not given.
    /// </summary>
    [Parameter]
    public PicoPasswordShare[]? PasswordShare { get; set; }

    /// <summary>SmartCard-HSM / Pico HSM: the key domain the shares go to.</summary>
    [Parameter]
    [ValidateRange(0, 255)]
    public int KeyDomain { get; set; }

    /// <summary>CKA_ID of the DKEK object on a generic token (as in the procedure: 01).</summary>
    [Parameter]
    [ValidatePattern("^([0-9a-fA-F]{2})+$")]
    public string Id { get; set; } = "01";

    /// <summary>Label of the DKEK object on a generic token; the label in the share files by default.</summary>
    [Parameter]
    public string? Label { get; set; }

    private readonly List<string> _paths = new();

    private static byte[] ReadHead(string path)
    {
        try { return File.ReadAllBytes(path); }
        catch (Exception) { return Array.Empty<byte>(); }
    }

    /// <summary>
    /// sc-hsm-tool share files: n-of-n, the DKEK is their XOR. A SmartCard-HSM takes them one by
    /// one (IMPORT DKEK SHARE) as announced at initialisation; a generic token gets the XOR.
    /// </summary>
    private void ImportScHsmToolShares()
    {
        var backend = ResolvedSession.Device;
        var files = _paths.Select(p => Run(() => ScHsmShareFile.Read(p), p)).ToList();
        var shares = new List<SecretBytes>();
        try
        {
            if (PasswordSharePrime is not null)
            {
                if (files.Count != 1)
                    ThrowTerminatingError(NewError("PasswordSharesForOneFile", ErrorCategory.InvalidArgument,
                        "-PasswordSharePrime and -PasswordShare open one threshold-password share file; import several files with one call each, or with -SharePassword.", null));
                byte[] password = Run(() => PicoPasswordShare.RebuildPassword(this, PasswordSharePrime, PasswordShare, "-PasswordShare"));
                try { shares.Add(Run(() => files[0].Decrypt(password), _paths[0])); }
                finally { Array.Clear(password); }
            }
            else
            {
                var names = _paths.Select(p => $"sc-hsm-tool share '{System.IO.Path.GetFileName(p)}'").ToList();
                using var passwords = Run(() => SharePasswords.Get(this, SharePassword, names, confirm: false, "-SharePassword"));
                var progress = new ProgressRecord(1, "Import-PicoDkek", "Opening sc-hsm-tool share files (10,000,000 MD5 rounds each)");
                for (int i = 0; i < files.Count; i++)
                {
                    progress.StatusDescription = $"Opening {names[i]}";
                    progress.PercentComplete = 100 * i / files.Count;
                    WriteProgress(progress);
                    byte[] pw = System.Text.Encoding.UTF8.GetBytes(passwords.Values[i]);
                    try
                    {
                        int index = i;
                        shares.Add(Run(() =>
                        {
                            try { return files[index].Decrypt(pw); }
                            catch (ScHsmWrongPasswordException)
                            {
                                throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "ShareFileWrongPassword",
                                    $"The password for '{_paths[index]}' is wrong (or the file is damaged). Nothing was imported; check the password with its custodian.", _paths[index]);
                            }
                        }, _paths[i]));
                    }
                    finally { Array.Clear(pw); }
                }
                progress.RecordType = ProgressRecordType.Completed;
                WriteProgress(progress);
            }
            using var dkek = ScHsmDkekShares.Combine(shares);
            string kcv = KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span));
            if (!ShouldProcess($"token '{ResolvedSession.TokenLabel}'", $"Import {files.Count} sc-hsm-tool share(s) of DKEK {kcv}"))
                return;
            bool imported;
            if (backend is IScHsmDevice card)
            {
                Run(() => { card.ImportShares(shares, KeyDomain); return 0; });
                imported = true;
            }
            else
            {
                imported = Run(() => backend.ImportDkek(dkek, Label ?? "dkek", Convert.FromHexString(Id)));
                if (!imported) WriteWarning($"The token '{ResolvedSession.TokenLabel}' already holds DKEK {kcv}; nothing was changed.");
            }
            foreach (var d in Run(() => backend.GetDkek()))
                WriteObject(d);
        }
        finally
        {
            foreach (var s in shares) s.Dispose();
        }
    }

    protected override void ProcessRecord()
    {
        foreach (string p in Path)
            _paths.AddRange(GetResolvedProviderPathFromPSPath(p, out _));
    }

    protected override void EndProcessing()
    {
        RequireLogin();
        if (_paths.Count == 0)
            ThrowTerminatingError(NewError("NoShareFiles", ErrorCategory.InvalidArgument, "No share files were given. Pass them with -Path.", null));
        var kinds = _paths.Select(p => ScHsmDkekShares.LooksLikeShareFile(ReadHead(p))).Distinct().ToList();
        if (kinds.Count > 1)
            ThrowTerminatingError(NewError("MixedShareFormats", ErrorCategory.InvalidArgument,
                "Some files are sc-hsm-tool shares (.pbe) and some are PicoHsm shares (.dkekshare): one DKEK's shares are all of one kind. Import them separately.", null));
        if (kinds[0])
        {
            ImportScHsmToolShares();
            return;
        }
        var files = _paths.Select(p => Run(() => DkekCeremony.ReadShareFile(p), p)).ToList();
        Run(() => { DkekCeremony.CheckSet(files, _paths); return 0; });
        string kcv = files[0].KcvHex;

        var current = Run(() => ResolvedSession.Device.GetDkek()).FirstOrDefault(d => d.Present && d.KeyCheckValue is not null);
        if (current?.KeyCheckValue is { } have && have != kcv)
            ThrowTerminatingError(NewError("OtherDkekPresent", ErrorCategory.ResourceExists,
                $"The token '{ResolvedSession.TokenLabel}' already holds DKEK {have}; these shares are of DKEK {kcv}. Backups cannot move between DKEKs; use a fresh token or the shares of {have}.", ResolvedSession));

        if (!ShouldProcess($"token '{ResolvedSession.TokenLabel}'", $"Import DKEK {kcv} rebuilt from {files.Count} of {files[0].ShareCount} shares"))
            return;

        var names = _paths.Select((p, i) => $"share {files[i].Index} of {files[i].ShareCount} ({System.IO.Path.GetFileName(p)})").ToList();
        using var passwords = Run(() => SharePasswords.Get(this, SharePassword, names, confirm: false, "-SharePassword"));
        var progress = new ProgressRecord(1, "Import-PicoDkek", "Decrypting share files");
        using SecretBytes dkek = Run(() => DkekCeremony.Rebuild(files, passwords.Values, i =>
        {
            progress.StatusDescription = $"Decrypting {names[i]}";
            progress.PercentComplete = 100 * i / files.Count;
            WriteProgress(progress);
        }));
        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);

        bool imported = Run(() => ResolvedSession.Device.ImportDkek(dkek, Label ?? files[0].Label, Convert.FromHexString(Id)));
        if (!imported)
            WriteWarning($"The token '{ResolvedSession.TokenLabel}' already holds DKEK {kcv}; nothing was changed.");
        var result = Run(() => ResolvedSession.Device.GetDkek()).FirstOrDefault(d => d.KeyCheckValue == kcv) ?? Run(() => ResolvedSession.Device.GetDkek())[0];
        WriteObject(new PicoDkek
        {
            Present = result.Present, KeyCheckValue = result.KeyCheckValue, KcvVerified = result.KcvVerified, Label = result.Label, Id = result.Id,
            Threshold = files[0].Threshold, ShareCount = files[0].ShareCount, ShareFiles = _paths.ToArray(), DeviceFamily = result.DeviceFamily,
            TokenLabel = result.TokenLabel, TokenSerial = result.TokenSerial, Status = imported ? "Imported" : "Already present",
        });
    }
}
