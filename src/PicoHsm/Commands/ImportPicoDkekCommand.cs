using System.Management.Automation;
using System.Security;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Operations;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

/// <summary>Rebuilds the DKEK from any n share files and puts it on the token (a replacement device).</summary>
[Cmdlet(VerbsData.Import, "PicoDkek", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(PicoDkek))]
public sealed class ImportPicoDkekCommand : PicoSessionCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName", "ShareFiles")]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
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

    /// <summary>
    /// CKA_ID of the DKEK object on a generic PKCS#11 token, hex. Left out, the DKEK takes an id no
    /// object uses (646b656b, "dkek" in ASCII, or the first free 646b656b01, 02, …); a given id
    /// that a key already has is refused before any password is asked for.
    /// </summary>
    [Parameter]
    [ValidatePattern("^([0-9a-fA-F]{2})+$")]
    public string? Id { get; set; }

    /// <summary>Label of the DKEK object on a generic token; the label in the share files by default.</summary>
    [Parameter]
    public string? Label { get; set; }

    /// <summary>
    /// The KCV the rebuilt DKEK must have (16 hex digits, colons allowed), e.g. from Get-PicoDkek of the old
    /// device or the ceremony record. The DKEK is combined in the host first: another value and nothing is sent.
    /// sc-hsm-tool shares on a SmartCard-HSM: with all of a key domain's shares in one call; with fewer, only in the
    /// call that gives the last ones (the card's KCV is checked then), else refused (KcvNotCheckable) before any password.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ExpectedKcv { get; set; }

    /// <summary>A backup the DKEK must open: a .wky/.pkb file, a manifest.json, or a folder Backup-PicoHsm wrote; its KCV is checked as -ExpectedKcv.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? BackupPath { get; set; }

    private readonly List<string> _paths = new();

    protected override void ProcessRecordWithSession(PicoHsmSession session)
    {
        foreach (string p in Path)
            _paths.AddRange(GetResolvedProviderPathFromPSPath(p, out _));
    }

    protected override void EndProcessingWithSession(PicoHsmSession session)
    {
        // Threshold-password shares are SecureStrings (prompted per custodian when interactive);
        // the password they rebuild lives only in a zeroed buffer.
        SecretBytes? thresholdPassword = null;
        if (PasswordSharePrime is not null)
        {
            byte[] rebuilt = Run(() => PicoPasswordShare.RebuildPassword(this, PasswordSharePrime, PasswordShare, "-PasswordShare"));
            try { thresholdPassword = SecretBytes.CopyOf(rebuilt); }
            finally { Array.Clear(rebuilt); }
        }
        using var zeroed = thresholdPassword;
        string? backup = BackupPath is null ? null : SessionState.Path.GetUnresolvedProviderPathFromPSPath(BackupPath);
        var request = new DkekImportRequest(_paths, Id, Label, KeyDomain, thresholdPassword, ExpectedKcv, backup);
        using var host = OperationHost(SharePassword);
        foreach (var d in DkekImportService.Import(session.Device, request, host))
            WriteObject(d);
    }
}
