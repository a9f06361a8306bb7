using System.Management.Automation;
using System.Runtime.InteropServices;
using System.Security;
using System.Text;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Session;

namespace PicoHsm.Module;

/// <summary>
/// What every PicoHsm cmdlet shares: Ctrl+C turned into a cancellation token, and errors from
/// the core turned into error records with an id shaped &lt;Cmdlet&gt;&lt;Reason&gt;.
/// </summary>
public abstract class PicoCmdletBase : PSCmdlet
{
    private readonly CancellationTokenSource _cancel = new();

    protected CancellationToken Cancellation => _cancel.Token;

    protected override void StopProcessing() => _cancel.Cancel();

    /// <summary>"Connect-PicoHsm" becomes "ConnectPicoHsm" for error ids.</summary>
    protected string CmdletId => MyInvocation.MyCommand.Name.Replace("-", "");

    protected ErrorRecord ToErrorRecord(PicoHsmException ex, object? target = null) =>
        new(ex, CmdletId + ex.Reason, MapCategory(ex.Kind), MapTarget(target ?? ex.Target));

    /// <summary>The core names a connection by its <see cref="Devices.DeviceContext"/>; users know it as their session.</summary>
    protected virtual object? MapTarget(object? target) => target;

    protected ErrorRecord NewError(string reason, ErrorCategory category, string message, object? target, Exception? inner = null) =>
        new(new PicoHsmException(PicoErrorKind.InvalidOperation, reason, message, target, inner), CmdletId + reason, category, target);

    internal static ErrorCategory MapCategory(PicoErrorKind kind) => kind switch
    {
        PicoErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
        PicoErrorKind.NotFound => ErrorCategory.ObjectNotFound,
        PicoErrorKind.Ambiguous => ErrorCategory.InvalidArgument,
        PicoErrorKind.AuthenticationFailed => ErrorCategory.AuthenticationError,
        PicoErrorKind.PermissionDenied => ErrorCategory.PermissionDenied,
        PicoErrorKind.NotSupported => ErrorCategory.NotImplemented,
        PicoErrorKind.InvalidOperation => ErrorCategory.InvalidOperation,
        PicoErrorKind.ResourceExists => ErrorCategory.ResourceExists,
        PicoErrorKind.DeviceError => ErrorCategory.DeviceError,
        PicoErrorKind.InvalidData => ErrorCategory.InvalidData,
        PicoErrorKind.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
        PicoErrorKind.OperationStopped => ErrorCategory.OperationStopped,
        _ => ErrorCategory.NotSpecified,
    };

    /// <summary>A terminating error from a core exception (the whole call cannot go on).</summary>
    protected void Throw(PicoHsmException ex, object? target = null) => ThrowTerminatingError(ToErrorRecord(ex, target));

    /// <summary>Runs core work; any core failure becomes a terminating error record.</summary>
    protected T Run<T>(Func<T> work, object? target = null)
    {
        try
        {
            return work();
        }
        catch (Exception ex) when (ErrorTranslation.Translate(ex) is { } p)
        {
            ThrowTerminatingError(ToErrorRecord(p, target));
            throw; // not reached
        }
    }

    /// <summary>Runs core work for one item; a failure is written as a non-terminating error and false returned.</summary>
    protected bool TryRun(Action work, object? target = null)
    {
        try
        {
            work();
            return true;
        }
        catch (Exception ex) when (ErrorTranslation.Translate(ex) is { } p)
        {
            WriteError(ToErrorRecord(p, target));
            return false;
        }
    }

    /// <summary>A non-terminating error: this item failed, the next one goes on.</summary>
    protected void WriteError(PicoHsmException ex, object? target = null) => WriteError(ToErrorRecord(ex, target));

    protected void ThrowIfStopping()
    {
        if (_cancel.IsCancellationRequested)
            throw new PipelineStoppedException();
    }

    /// <summary>UTF-8 bytes of a SecureString; the caller zeroes them. The managed char copy is zeroed here.</summary>
    internal static byte[] SecureStringToUtf8(SecureString secret)
    {
        IntPtr p = Marshal.SecureStringToGlobalAllocUnicode(secret);
        char[] chars = new char[secret.Length];
        try
        {
            Marshal.Copy(p, chars, 0, chars.Length);
            return Encoding.UTF8.GetBytes(chars);
        }
        finally
        {
            Array.Clear(chars);
            Marshal.ZeroFreeGlobalAllocUnicode(p);
        }
    }

    /// <summary>
    /// Whether a prompt could be answered. A scheduled task or a CI job has no console input;
    /// prompting there would hang forever, so such callers get an error at once instead.
    /// </summary>
    protected bool CanPrompt()
    {
        if (Environment.GetEnvironmentVariable("PICOHSM_NONINTERACTIVE") is "1" or "true") return false;
        if (!Environment.UserInteractive || Console.IsInputRedirected) return false;
        foreach (string arg in Environment.GetCommandLineArgs())
            if (arg.StartsWith("-noni", StringComparison.OrdinalIgnoreCase) && "-noninteractive".StartsWith(arg, StringComparison.OrdinalIgnoreCase))
                return false;
        return Host?.UI is not null && Host.Name != "Default Host";
    }

    internal SecureString? PromptSecretInternal(string prompt) => PromptSecret(prompt);

    /// <summary>Asks for a secret without echo; null when the host cannot prompt.</summary>
    protected SecureString? PromptSecret(string prompt)
    {
        if (!CanPrompt()) return null;
        try
        {
            Host.UI.Write(prompt + ": ");
            return Host.UI.ReadLineAsSecureString();
        }
        catch (Exception ex) when (ex is PSInvalidOperationException or System.Management.Automation.Host.HostException or NotImplementedException)
        {
            return null;
        }
    }
}

/// <summary>A cmdlet that works on a session: -Session, else the runspace's default.</summary>
public abstract class PicoSessionCmdletBase : PicoCmdletBase
{
    [Parameter(ValueFromPipeline = true)]
    [ValidateNotNull]
    public PicoHsmSession? Session { get; set; }

    private PicoHsmSession? _resolved;

    protected override object? MapTarget(object? target) =>
        target is Devices.DeviceContext c && (_resolved ?? Session) is { } s && ReferenceEquals(s.Device.Context, c) ? s : target;

    protected PicoHsmSession ResolvedSession => _resolved ??= ResolveSession();

    private PicoHsmSession ResolveSession()
    {
        var s = Session ?? SessionRegistry.Current.Default;
        if (s is null)
            ThrowTerminatingError(NewError("NoSession", ErrorCategory.ConnectionError,
                "There is no PicoHsm session. Run Connect-PicoHsm first, or pass -Session.", null));
        if (!s!.IsOpen)
            ThrowTerminatingError(NewError("SessionClosed", ErrorCategory.ConnectionError,
                $"Session {s.Id} to '{s.TokenLabel}' is closed. Run Connect-PicoHsm again.", s));
        return s;
    }

    protected void RequireLogin()
    {
        if (!ResolvedSession.IsLoggedIn)
            ThrowTerminatingError(NewError("NotLoggedIn", ErrorCategory.PermissionDenied,
                $"Session {ResolvedSession.Id} is not logged in. Connect with -Pin or -Credential to use private keys.", ResolvedSession));
    }
}
