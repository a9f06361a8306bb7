using System.Management.Automation;
using System.Runtime.InteropServices;
using System.Security;
using System.Text;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Operations;
using PicoHsm.Session;

namespace PicoHsm.Module;

/// <summary>
/// What every PicoHsm cmdlet shares: Ctrl+C turned into a cancellation token that reaches the
/// core, and ONE error path: whatever the core throws goes through the core's
/// <see cref="ErrorTranslation"/> and becomes an error record with an id shaped
/// &lt;Cmdlet&gt;&lt;Reason&gt;, its category, its target and a message with the fix. The
/// PowerShell entry points are sealed so no cmdlet can step around that: subclasses implement
/// <see cref="BeginProcessingCore"/>, <see cref="ProcessRecordCore"/>, <see cref="EndProcessingCore"/>.
/// PowerShell disposes a cmdlet that implements IDisposable however the pipeline ends.
/// </summary>
public abstract class PicoCmdletBase : PSCmdlet, IDisposable
{
    private readonly CancellationTokenSource _cancel = new();
    private bool _disposed;

    /// <summary>Cancelled by Ctrl+C (StopProcessing); pass it to every core call that loops or waits.</summary>
    protected CancellationToken Cancellation => _cancel.Token;

    protected override void StopProcessing()
    {
        // StopProcessing runs on another thread; the cmdlet may be finishing (and disposing) meanwhile.
        try { _cancel.Cancel(); }
        catch (ObjectDisposedException) { }
    }

    protected sealed override void BeginProcessing() => Guard(BeginProcessingCore);
    protected sealed override void ProcessRecord() => Guard(ProcessRecordCore);
    protected sealed override void EndProcessing() => Guard(EndProcessingCore);

    protected virtual void BeginProcessingCore() { }
    protected virtual void ProcessRecordCore() { }
    protected virtual void EndProcessingCore() { }

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
        PicoErrorKind.InvalidResult => ErrorCategory.InvalidResult,
        _ => ErrorCategory.NotSpecified,
    };

    /// <summary>
    /// The core's failure as a PicoHsmException, or null: PowerShell's own exceptions already carry
    /// their record, and work cancelled by Ctrl+C is a stop (see <see cref="Guard"/>), not an error.
    /// </summary>
    private PicoHsmException? Translate(Exception ex)
    {
        if (ex is IContainsErrorRecord || ex is PipelineStoppedException) return null;
        if (ex is OperationCanceledException && _cancel.IsCancellationRequested) return null;
        return ErrorTranslation.Translate(ex);
    }

    /// <summary>
    /// Runs a cmdlet step: a core failure becomes a terminating error record; a cancellation after
    /// Ctrl+C (the core's loops and the token lock's wait see the cmdlet's token) becomes PowerShell's pipeline stop.
    /// </summary>
    private void Guard(Action step)
    {
        try
        {
            // Ctrl+C also ends a wait for another process's change to the token (TokenLock), which
            // happens inside a backend call that takes no token.
            using (TokenLock.CancelWaitsWith(_cancel.Token)) step();
        }
        catch (OperationCanceledException) when (_cancel.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
        catch (Exception ex) when (Translate(ex) is { } p)
        {
            ThrowTerminatingError(ToErrorRecord(p));
        }
    }

    /// <summary>A terminating error from a core exception (the whole call cannot go on).</summary>
    protected void Throw(PicoHsmException ex, object? target = null) => ThrowTerminatingError(ToErrorRecord(ex, target));

    /// <summary>Runs core work; any core failure becomes a terminating error record naming <paramref name="target"/>.</summary>
    protected T Run<T>(Func<T> work, object? target = null)
    {
        try
        {
            return work();
        }
        catch (Exception ex) when (Translate(ex) is { } p)
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
        catch (Exception ex) when (Translate(ex) is { } p)
        {
            WriteError(ToErrorRecord(p, target));
            return false;
        }
    }

    /// <summary>A non-terminating error: this item failed, the next one goes on.</summary>
    protected void WriteError(PicoHsmException ex, object? target = null) => WriteError(ToErrorRecord(ex, target));

    internal void WriteItemError(PicoHsmException ex, object? target) => WriteError(ToErrorRecord(ex, target));

    /// <summary>A core service's host for this cmdlet (dispose it: it zeroes the passwords it handed out).</summary>
    internal CmdletOperationHost OperationHost(System.Security.SecureString[]? sharePassword = null) => new(this, Cancellation, sharePassword);

    protected void ThrowIfStopping()
    {
        if (_cancel.IsCancellationRequested)
            throw new PipelineStoppedException();
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (_disposed) return;
        _disposed = true;
        if (disposing) _cancel.Dispose();
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
    /// Whether ShouldProcess will ask about each item: -Confirm, or $ConfirmPreference at or below Medium,
    /// the impact of every cmdlet here that asks per item (Export-PicoWrappedKey, Import-PicoWrappedKey).
    /// </summary>
    protected bool ConfirmsEachItem()
    {
        if (MyInvocation.BoundParameters.TryGetValue("Confirm", out object? c)) return c is SwitchParameter s ? s.IsPresent : true;
        object? pref = SessionState.PSVariable.GetValue("ConfirmPreference");
        if (pref is ConfirmImpact impact) return impact != ConfirmImpact.None && impact <= ConfirmImpact.Medium;
        // Set to something unexpected: counted as asking, which is only slower.
        return !(pref is string text && Enum.TryParse(text, true, out ConfirmImpact parsed) && (parsed == ConfirmImpact.None || parsed > ConfirmImpact.Medium));
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

/// <summary>
/// A cmdlet that works on a session: -Session, else the runspace's default. The session is
/// resolved (and checked open, and logged in unless <see cref="RequiresLogin"/> says otherwise) once,
/// before the first step, and handed to <see cref="ProcessRecordWithSession"/> and
/// <see cref="EndProcessingWithSession"/>: a subclass cannot forget to resolve or check it.
/// </summary>
public abstract class PicoSessionCmdletBase : PicoCmdletBase
{
    [Parameter(ValueFromPipeline = true)]
    [ValidateNotNull]
    public PicoHsmSession? Session { get; set; }

    private PicoHsmSession? _resolved;
    private bool _resolvedOnce;

    /// <summary>Whether the call needs a logged-in session (private keys, the DKEK); listing public keys does not.</summary>
    protected virtual bool RequiresLogin => true;

    /// <summary>
    /// Whether this call can run without a session (New-PicoDkek -NoImport only writes files). Then,
    /// with no open session, <see cref="EndProcessingWithoutSession"/> runs instead.
    /// </summary>
    protected virtual bool SessionOptional => false;

    protected override object? MapTarget(object? target) =>
        target is Devices.DeviceContext c && (_resolved ?? Session) is { } s && ReferenceEquals(s.Device.Context, c) ? s : target;

    protected sealed override void ProcessRecordCore()
    {
        if (Resolve() is { } s) ProcessRecordWithSession(s);
    }

    protected sealed override void EndProcessingCore()
    {
        if (Resolve() is { } s) EndProcessingWithSession(s);
        else EndProcessingWithoutSession();
    }

    /// <summary>Each pipeline input, with the resolved session.</summary>
    protected virtual void ProcessRecordWithSession(PicoHsmSession session) { }

    /// <summary>After the last input, with the resolved session.</summary>
    protected abstract void EndProcessingWithSession(PicoHsmSession session);

    /// <summary>Only when <see cref="SessionOptional"/> and there is no open session.</summary>
    protected virtual void EndProcessingWithoutSession() { }

    private PicoHsmSession? Resolve()
    {
        if (_resolvedOnce) return _resolved;
        _resolvedOnce = true;
        if (SessionOptional)
        {
            var candidate = Session ?? SessionRegistry.Current.Default;
            return _resolved = candidate is { IsOpen: true } ? candidate : null;
        }
        var s = Session ?? SessionRegistry.Current.Default;
        if (s is null)
            ThrowTerminatingError(NewError("NoSession", ErrorCategory.ConnectionError,
                "There is no PicoHsm session. Run Connect-PicoHsm first, or pass -Session.", null));
        if (!s!.IsOpen)
            ThrowTerminatingError(NewError("SessionClosed", ErrorCategory.ConnectionError,
                $"Session {s.Id} to '{s.TokenLabel}' is closed. Run Connect-PicoHsm again.", s));
        if (RequiresLogin && !s.IsLoggedIn)
            ThrowTerminatingError(NewError("NotLoggedIn", ErrorCategory.PermissionDenied,
                $"Session {s.Id} is not logged in. Connect with -Pin or -Credential to use private keys.", s));
        return _resolved = s;
    }
}
