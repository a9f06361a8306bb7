using System.Management.Automation;
using System.Security;
using PicoHsm.Backends;
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

    /// <summary>CKA_ID of the DKEK object on a generic token (as in the procedure: 01).</summary>
    [Parameter]
    [ValidatePattern("^([0-9a-fA-F]{2})+$")]
    public string Id { get; set; } = "01";

    /// <summary>Label of the DKEK object on a generic token; the label in the share files by default.</summary>
    [Parameter]
    public string? Label { get; set; }

    private readonly List<string> _paths = new();

    protected override void ProcessRecord()
    {
        foreach (string p in Path)
            _paths.AddRange(GetResolvedProviderPathFromPSPath(p, out _));
    }

    protected override void EndProcessing()
    {
        RequireLogin();
        var files = _paths.Select(p => Run(() => DkekCeremony.ReadShareFile(p), p)).ToList();
        Run(() => { DkekCeremony.CheckSet(files, _paths); return 0; });
        string kcv = files[0].KcvHex;

        var current = Run(() => KeyServices.Backend(ResolvedSession).GetDkek()).FirstOrDefault(d => d.Present && d.KeyCheckValue is not null);
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

        bool imported = Run(() => KeyServices.Backend(ResolvedSession).ImportDkek(dkek, Label ?? files[0].Label, Convert.FromHexString(Id)));
        if (!imported)
            WriteWarning($"The token '{ResolvedSession.TokenLabel}' already holds DKEK {kcv}; nothing was changed.");
        var result = Run(() => KeyServices.Backend(ResolvedSession).GetDkek()).FirstOrDefault(d => d.KeyCheckValue == kcv) ?? Run(() => KeyServices.Backend(ResolvedSession).GetDkek())[0];
        WriteObject(new PicoDkek
        {
            Present = result.Present, KeyCheckValue = result.KeyCheckValue, KcvVerified = result.KcvVerified, Label = result.Label, Id = result.Id,
            Threshold = files[0].Threshold, ShareCount = files[0].ShareCount, ShareFiles = _paths.ToArray(), Backend = result.Backend,
            TokenLabel = result.TokenLabel, TokenSerial = result.TokenSerial, Status = imported ? "Imported" : "Already present",
        });
    }
}
