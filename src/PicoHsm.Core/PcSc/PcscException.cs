namespace PicoHsm.PcSc;

/// <summary>
/// A PC/SC failure: the SCARD_* code returned by winscard / pcsc-lite (as a 32-bit value),
/// the function that returned it, and a message that says what to do about it.
/// </summary>
public class PcscException : Exception
{
    /// <summary>The SCARD_E_* / SCARD_W_* / SCARD_F_* code, or 0 when the library itself could not be loaded.</summary>
    public uint ErrorCode { get; }

    /// <summary>The PC/SC function that failed (e.g. "SCardConnect"), when known.</summary>
    public string? Function { get; }

    public PcscException(uint errorCode, string? function, string? detail = null)
        : base(BuildMessage(errorCode, function, detail))
    {
        ErrorCode = errorCode;
        Function = function;
        HResult = unchecked((int)errorCode);
    }

    /// <summary>For failures that have no SCARD code (library missing, bad argument).</summary>
    public PcscException(string message, Exception? inner = null) : base(message, inner)
    {
        ErrorCode = 0;
    }

    /// <summary>The symbolic name of the code, e.g. "SCARD_W_RESET_CARD".</summary>
    public string ErrorName => PcscError.Name(ErrorCode);

    /// <summary>True for SCARD_W_RESET_CARD: the card was reset by another application; reconnect.</summary>
    public bool IsCardReset => ErrorCode == PcscError.SCARD_W_RESET_CARD;

    /// <summary>True for SCARD_W_REMOVED_CARD / SCARD_E_NO_SMARTCARD.</summary>
    public bool IsCardAbsent => ErrorCode is PcscError.SCARD_W_REMOVED_CARD or PcscError.SCARD_E_NO_SMARTCARD;

    private static string BuildMessage(uint code, string? function, string? detail)
    {
        string where = function is null ? "" : $"{function}: ";
        string extra = string.IsNullOrEmpty(detail) ? "" : $" ({detail})";
        return $"{where}{PcscError.Describe(code)}{extra} [{PcscError.Name(code)} 0x{code:X8}]";
    }
}
