using System.Management.Automation;
using System.Security;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Operations;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

[Cmdlet(VerbsCommunications.Connect, "PicoHsm", DefaultParameterSetName = PinSet)]
[OutputType(typeof(PicoHsmSession))]
public sealed class ConnectPicoHsmCommand : PicoCmdletBase
{
    private const string PinSet = "Pin";
    private const string CredentialSet = "Credential";

    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ModulePathCompleter))]
    public string? ModulePath { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(TokenLabelCompleter))]
    public string? TokenLabel { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? SerialNumber { get; set; }

    [Parameter]
    public ulong? SlotId { get; set; }

    /// <summary>
    /// The PC/SC reader of a SmartCard-HSM / Pico HSM. Alone (no -ModulePath): a session through
    /// PC/SC only, for hosts with pcscd and no PKCS#11 module. With -ModulePath: the reader the
    /// card channel uses when it is not the PKCS#11 slot's own.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ReaderCompleter))]
    public string? Reader { get; set; }

    [Parameter(ParameterSetName = PinSet)]
    public SecureString? Pin { get; set; }

    /// <summary>The password is the PIN; the user name is ignored (scripts keep PINs in credential stores).</summary>
    [Parameter(ParameterSetName = CredentialSet, Mandatory = true)]
    [Credential]
    public PSCredential? Credential { get; set; }

    /// <summary>Allow a login when the PIN has one try left.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void EndProcessingCore()
    {
        int selectors = (TokenLabel is null ? 0 : 1) + (SerialNumber is null ? 0 : 1) + (SlotId is null ? 0 : 1);
        if (selectors > 1)
            Fail(NewError("TooManySelectors", ErrorCategory.InvalidArgument,
                "Choose the token with one of -TokenLabel, -SerialNumber or -SlotId, not several.", null));

        var options = new ConnectOptions
        {
            ModulePath = ModulePath,
            TokenLabel = TokenLabel,
            SerialNumber = SerialNumber,
            SlotId = SlotId,
            Force = Force,
            PinSource = GetPin,
            Reader = Reader,
            CardOnly = Reader is not null && ModulePath is null,
            Verbose = WriteVerbose,
        };
        PicoHsmSession session;
        try
        {
            if (options.CardOnly && selectors > 0)
                Fail(NewError("SelectorWithoutModule", ErrorCategory.InvalidArgument,
                    "-TokenLabel, -SerialNumber and -SlotId choose a PKCS#11 token; with -Reader alone the session goes through PC/SC only. Add -ModulePath, or leave the selector out.", null));
            WriteVerbose($"Connecting to {(TokenLabel ?? SerialNumber ?? SlotId?.ToString() ?? "the only token")}.");
            session = SessionConnector.Connect(options);
        }
        catch (Exception ex) when (ErrorTranslation.Translate(ex) is { } p)
        {
            // A failed connect changes no default; say which session the next command would use,
            // so a script that goes on does not change another token unknowingly.
            var record = ToErrorRecord(p);
            record.ErrorDetails = new ErrorDetails(p.Message + " " + SessionRegistry.Current.DescribeDefault("still"));
            Fail(record);
            return;
        }
        SessionRegistry.Current.Add(session);
        WriteVerbose($"Session {session.Id}: '{session.TokenLabel}' serial {session.SerialNumber}, logged in: {session.IsLoggedIn}.");
        WriteObject(session);
    }

    /// <summary>
    /// A failed connect stops the script (as <c>throw</c> does), not only this statement: a scheduled
    /// script that goes on would work on another session, or fail later with a less clear error.
    /// try/catch and trap still catch it, with the same error record. Only an explicit
    /// -ErrorAction SilentlyContinue, Ignore or Continue asks to go on: then it ends this statement only.
    /// </summary>
    private void Fail(ErrorRecord record)
    {
        if (MyInvocation.BoundParameters.TryGetValue("ErrorAction", out object? ea) &&
            ea is ActionPreference.SilentlyContinue or ActionPreference.Ignore or ActionPreference.Continue)
            ThrowTerminatingError(record);
        // The same id ThrowTerminatingError gives ("<Cmdlet><Reason>,<cmdlet class>").
        var scriptTerminating = new ErrorRecord(record.Exception, record.FullyQualifiedErrorId + "," + GetType().FullName,
            record.CategoryInfo.Category, record.TargetObject) { ErrorDetails = record.ErrorDetails };
        InvokeCommand.InvokeScript("param($record) throw $record", false, System.Management.Automation.Runspaces.PipelineResultTypes.None, null, scriptTerminating);
    }

    private byte[]? GetPin(PicoHsmToken token)
    {
        if (Reader is not null && ModulePath is null && Pin is null && Credential is null && !CanPrompt())
            return null; // a card-only session may still list keys and DKEK state without the PIN
        SecureString? secret = Credential?.Password ?? Pin;
        if (secret is null)
        {
            if (token.ProtectedAuthenticationPath)
                return null; // the reader's PIN pad asks; nothing to send
            secret = PromptSecret($"User PIN for '{token.Label}' (serial {token.SerialNumber})");
            if (secret is null)
                throw new PicoHsmException(PicoErrorKind.InvalidArgument, "PinRequired",
                    $"A PIN is needed to log in to '{token.Label}' and this session cannot prompt (non-interactive). " +
                    "Pass it as a SecureString, e.g. -Pin (Read-Host -AsSecureString) interactively, or in a scheduled task " +
                    "-Credential (Import-Clixml pin.xml) / -Pin (Get-Secret HsmPin) from a secret store.", token);
        }
        return SecureStringToUtf8(secret);
    }
}
