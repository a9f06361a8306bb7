namespace PicoHsm.Common;

/// <summary>
/// What went wrong, in terms the cmdlet layer maps onto PowerShell's ErrorCategory.
/// The core never references PowerShell, so it says this with its own enum.
/// </summary>
public enum PicoErrorKind
{
    InvalidArgument,
    NotFound,
    ObjectNotFound = NotFound,
    Ambiguous,
    AuthenticationFailed,
    PermissionDenied,
    NotSupported,
    InvalidOperation,
    ResourceExists,
    DeviceError,
    InvalidData,
    ResourceUnavailable,
    OperationStopped,
    /// <summary>The device did something other than what was asked (a KCV that does not match after an import).</summary>
    InvalidResult,
}

/// <summary>
/// An error the module explains to the user. <see cref="Reason"/> becomes the second half of
/// the error id (<c>&lt;Cmdlet&gt;&lt;Reason&gt;</c>); the message always says what to do.
/// Messages never contain a PIN, password, share or key.
/// </summary>
public class PicoHsmException : Exception
{
    public PicoHsmException(PicoErrorKind kind, string reason, string message, object? target = null, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        Reason = reason;
        Target = target;
    }

    public PicoErrorKind Kind { get; }
    public string Reason { get; }
    public object? Target { get; }
}
