using System.Management.Automation;
using System.Security;
using PicoHsm.Devices;
using PicoHsm.Operations;
using PicoHsm.Session;

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

    /// <summary>
    /// CKA_ID of the DKEK object on a generic PKCS#11 token, hex. Left out, the DKEK takes an id no
    /// object uses (646b656b, "dkek" in ASCII, or the first free 646b656b01, 02, …); a given id
    /// that a key already has is refused before any password is asked for.
    /// </summary>
    [Parameter]
    [ValidatePattern("^([0-9a-fA-F]{2})+$")]
    public string? Id { get; set; }

    /// <summary>Only write the share files (an offline ceremony); the token is not changed.</summary>
    [Parameter]
    public SwitchParameter NoImport { get; set; }

    /// <summary>Overwrite existing share files of the same name.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override bool SessionOptional => NoImport;

    protected override bool RequiresLogin => !NoImport;

    protected override void EndProcessingWithSession(PicoHsmSession session) => Ceremony(session);

    protected override void EndProcessingWithoutSession() => Ceremony(null);

    private void Ceremony(PicoHsmSession? session)
    {
        var request = new DkekCeremonyRequest(ShareCount, Threshold, Format == DkekShareFormat.ScHsmTool,
            SessionState.Path.GetUnresolvedProviderPathFromPSPath(OutputDirectory), Label, Id, Import: !NoImport, Force: Force);
        using var host = OperationHost(SharePassword);
        if (DkekCeremonyService.Create(session?.Device, request, host) is { } dkek)
            WriteObject(dkek);
    }
}
