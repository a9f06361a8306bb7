using System.Management.Automation;
using System.Security;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Dkek;

namespace PicoHsm.Module.Commands;

/// <summary>
/// Re-splits the same DKEK (same KCV) for a new set of custodians, without touching any device; or, for
/// an sc-hsm-tool share file (.pbe), gives the one file a new password or new n-of-m password shares with
/// the DKEK share inside unchanged. The old share files stay valid until every copy of them is destroyed.
/// </summary>
[Cmdlet(VerbsData.Update, "PicoDkekShare", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(PicoDkek), typeof(PicoPasswordShare))]
public sealed partial class UpdatePicoDkekShareCommand : PicoCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string[] Path { get; set; } = Array.Empty<string>();

    /// <summary>Passwords of the existing share files, in the order of -Path.</summary>
    [Parameter]
    public SecureString[]? SharePassword { get; set; }

    /// <summary>PicoHsm share files: how many new shares (required for them; not used for an sc-hsm-tool file).</summary>
    [Parameter]
    [ValidateRange(2, 255)]
    public int ShareCount { get; set; }

    /// <summary>PicoHsm share files: how many new shares rebuild the DKEK (required for them).</summary>
    [Parameter]
    [ValidateRange(2, 255)]
    public int Threshold { get; set; }

    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string OutputDirectory { get; set; } = "";

    /// <summary>Passwords for the new shares, one per new custodian in share order.</summary>
    [Parameter]
    public SecureString[]? NewSharePassword { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    private readonly List<string> _paths = new();

    protected override void ProcessRecordCore()
    {
        foreach (string p in Path)
            _paths.AddRange(GetResolvedProviderPathFromPSPath(p, out _));
    }

    protected override void EndProcessingCore()
    {
        if (_paths.Count > 0 && _paths.All(IsScHsmToolFile))
        {
            UpdateScHsmToolShare();
            return;
        }
        if (_paths.Any(IsScHsmToolFile))
            ThrowTerminatingError(NewError("MixedShareFormats", ErrorCategory.InvalidArgument,
                "Some files are sc-hsm-tool shares (.pbe) and some are PicoHsm shares (.dkekshare). Update them in separate calls.", null));
        if (ShareCount == 0 || Threshold == 0)
            ThrowTerminatingError(NewError("ShareCountRequired", ErrorCategory.InvalidArgument,
                "PicoHsm share files are re-split n-of-m: give -ShareCount and -Threshold (e.g. -ShareCount 5 -Threshold 3).", null));
        if (Threshold > ShareCount)
            ThrowTerminatingError(NewError("ThresholdTooLarge", ErrorCategory.InvalidArgument,
                $"-Threshold {Threshold} is larger than -ShareCount {ShareCount}. Use a threshold of at most the share count.", Threshold));
        var files = _paths.Select(p => Run(() => DkekCeremony.ReadShareFile(p), p)).ToList();
        Run(() => { DkekCeremony.CheckSet(files, _paths); return 0; });
        string dir = SessionState.Path.GetUnresolvedProviderPathFromPSPath(OutputDirectory);
        string label = files[0].Label;
        var newPaths = DkekCeremony.ShareFilePaths(dir, label, ShareCount);
        var overlap = newPaths.Intersect(_paths, StringComparer.Ordinal).FirstOrDefault();
        if (overlap is not null)
            ThrowTerminatingError(NewError("WouldOverwriteInput", ErrorCategory.InvalidArgument,
                $"The new share '{overlap}' would overwrite one of the shares being read. Choose another -OutputDirectory.", overlap));
        if (!Force && newPaths.FirstOrDefault(File.Exists) is { } clash)
            ThrowTerminatingError(NewError("ShareFileExists", ErrorCategory.ResourceExists,
                $"'{clash}' already exists. Move it away, choose another -OutputDirectory, or use -Force.", clash));
        if (!ShouldProcess(dir, $"Re-split DKEK {files[0].KcvHex} into {Threshold}-of-{ShareCount} new share files"))
            return;

        var oldNames = _paths.Select((p, i) => $"existing share {files[i].Index} ({System.IO.Path.GetFileName(p)})").ToList();
        using var oldPasswords = Run(() => SharePasswords.Get(this, SharePassword, oldNames, confirm: false, "-SharePassword"));
        using SecretBytes dkek = Run(() => DkekCeremony.Rebuild(files, oldPasswords.Values, cancellation: Cancellation));
        var newNames = Enumerable.Range(1, ShareCount).Select(i => $"new share {i} of {ShareCount} ({System.IO.Path.GetFileName(newPaths[i - 1])})").ToList();
        using var newPasswords = Run(() => SharePasswords.Get(this, NewSharePassword, newNames, confirm: true, "-NewSharePassword"));
        Directory.CreateDirectory(dir);
        var newFiles = Run(() => DkekShareSet.Split(dkek.Span, Threshold, ShareCount, label, newPasswords.Values, cancellation: Cancellation));
        Run(() => { DkekCeremony.WriteShareFiles(newFiles, newPaths, Force); return 0; });

        WriteWarning($"The {files[0].ShareCount} old share files of DKEK {files[0].KcvHex} stay valid: any {files[0].Threshold} of them still rebuild this DKEK until every copy is destroyed. Have the old custodians destroy theirs.");
        WriteObject(new PicoDkek
        {
            Present = false, KeyCheckValue = files[0].KcvHex, Label = label, Threshold = Threshold, ShareCount = ShareCount,
            ShareFiles = newPaths.ToArray(), DeviceFamily = null, Status = "Re-split; the old shares remain valid until destroyed",
        });
    }
}
