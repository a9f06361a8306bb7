namespace PicoHsm.PcSc;

/// <summary>PC/SC return codes (identical values in winscard, pcsc-lite and Apple's PCSC framework).</summary>
public static class PcscError
{
    public const uint SCARD_S_SUCCESS = 0x00000000;
    public const uint SCARD_F_INTERNAL_ERROR = 0x80100001;
    public const uint SCARD_E_CANCELLED = 0x80100002;
    public const uint SCARD_E_INVALID_HANDLE = 0x80100003;
    public const uint SCARD_E_INVALID_PARAMETER = 0x80100004;
    public const uint SCARD_E_INVALID_TARGET = 0x80100005;
    public const uint SCARD_E_NO_MEMORY = 0x80100006;
    public const uint SCARD_F_WAITED_TOO_LONG = 0x80100007;
    public const uint SCARD_E_INSUFFICIENT_BUFFER = 0x80100008;
    public const uint SCARD_E_UNKNOWN_READER = 0x80100009;
    public const uint SCARD_E_TIMEOUT = 0x8010000A;
    public const uint SCARD_E_SHARING_VIOLATION = 0x8010000B;
    public const uint SCARD_E_NO_SMARTCARD = 0x8010000C;
    public const uint SCARD_E_UNKNOWN_CARD = 0x8010000D;
    public const uint SCARD_E_CANT_DISPOSE = 0x8010000E;
    public const uint SCARD_E_PROTO_MISMATCH = 0x8010000F;
    public const uint SCARD_E_NOT_READY = 0x80100010;
    public const uint SCARD_E_INVALID_VALUE = 0x80100011;
    public const uint SCARD_E_SYSTEM_CANCELLED = 0x80100012;
    public const uint SCARD_F_COMM_ERROR = 0x80100013;
    public const uint SCARD_F_UNKNOWN_ERROR = 0x80100014;
    public const uint SCARD_E_INVALID_ATR = 0x80100015;
    public const uint SCARD_E_NOT_TRANSACTED = 0x80100016;
    public const uint SCARD_E_READER_UNAVAILABLE = 0x80100017;
    public const uint SCARD_E_PCI_TOO_SMALL = 0x80100019;
    public const uint SCARD_E_READER_UNSUPPORTED = 0x8010001A;
    public const uint SCARD_E_DUPLICATE_READER = 0x8010001B;
    public const uint SCARD_E_CARD_UNSUPPORTED = 0x8010001C;
    public const uint SCARD_E_NO_SERVICE = 0x8010001D;
    public const uint SCARD_E_SERVICE_STOPPED = 0x8010001E;
    public const uint SCARD_E_UNEXPECTED = 0x8010001F;
    public const uint SCARD_E_NO_READERS_AVAILABLE = 0x8010002E;
    public const uint SCARD_W_UNSUPPORTED_CARD = 0x80100065;
    public const uint SCARD_W_UNRESPONSIVE_CARD = 0x80100066;
    public const uint SCARD_W_UNPOWERED_CARD = 0x80100067;
    public const uint SCARD_W_RESET_CARD = 0x80100068;
    public const uint SCARD_W_REMOVED_CARD = 0x80100069;

    /// <summary>
    /// Codes that say a card handle will never reach its card again: the card left the reader (a card put back,
    /// or the device restarted, is a new card to PC/SC), the reader or pcscd went away. A reset is not: the
    /// handle reconnects. <see cref="PcscException.IsCardAbsent"/> is the first two.
    /// </summary>
    public static bool IsConnectionGone(uint code) => code is SCARD_W_REMOVED_CARD or SCARD_E_NO_SMARTCARD
        or SCARD_E_INVALID_HANDLE or SCARD_E_READER_UNAVAILABLE or SCARD_E_UNKNOWN_READER
        or SCARD_E_NO_SERVICE or SCARD_E_SERVICE_STOPPED;

    public static string Name(uint code) => code switch
    {
        SCARD_S_SUCCESS => "SCARD_S_SUCCESS",
        SCARD_F_INTERNAL_ERROR => "SCARD_F_INTERNAL_ERROR",
        SCARD_E_CANCELLED => "SCARD_E_CANCELLED",
        SCARD_E_INVALID_HANDLE => "SCARD_E_INVALID_HANDLE",
        SCARD_E_INVALID_PARAMETER => "SCARD_E_INVALID_PARAMETER",
        SCARD_E_INVALID_TARGET => "SCARD_E_INVALID_TARGET",
        SCARD_E_NO_MEMORY => "SCARD_E_NO_MEMORY",
        SCARD_F_WAITED_TOO_LONG => "SCARD_F_WAITED_TOO_LONG",
        SCARD_E_INSUFFICIENT_BUFFER => "SCARD_E_INSUFFICIENT_BUFFER",
        SCARD_E_UNKNOWN_READER => "SCARD_E_UNKNOWN_READER",
        SCARD_E_TIMEOUT => "SCARD_E_TIMEOUT",
        SCARD_E_SHARING_VIOLATION => "SCARD_E_SHARING_VIOLATION",
        SCARD_E_NO_SMARTCARD => "SCARD_E_NO_SMARTCARD",
        SCARD_E_UNKNOWN_CARD => "SCARD_E_UNKNOWN_CARD",
        SCARD_E_CANT_DISPOSE => "SCARD_E_CANT_DISPOSE",
        SCARD_E_PROTO_MISMATCH => "SCARD_E_PROTO_MISMATCH",
        SCARD_E_NOT_READY => "SCARD_E_NOT_READY",
        SCARD_E_INVALID_VALUE => "SCARD_E_INVALID_VALUE",
        SCARD_E_SYSTEM_CANCELLED => "SCARD_E_SYSTEM_CANCELLED",
        SCARD_F_COMM_ERROR => "SCARD_F_COMM_ERROR",
        SCARD_F_UNKNOWN_ERROR => "SCARD_F_UNKNOWN_ERROR",
        SCARD_E_INVALID_ATR => "SCARD_E_INVALID_ATR",
        SCARD_E_NOT_TRANSACTED => "SCARD_E_NOT_TRANSACTED",
        SCARD_E_READER_UNAVAILABLE => "SCARD_E_READER_UNAVAILABLE",
        SCARD_E_PCI_TOO_SMALL => "SCARD_E_PCI_TOO_SMALL",
        SCARD_E_READER_UNSUPPORTED => "SCARD_E_READER_UNSUPPORTED",
        SCARD_E_DUPLICATE_READER => "SCARD_E_DUPLICATE_READER",
        SCARD_E_CARD_UNSUPPORTED => "SCARD_E_CARD_UNSUPPORTED",
        SCARD_E_NO_SERVICE => "SCARD_E_NO_SERVICE",
        SCARD_E_SERVICE_STOPPED => "SCARD_E_SERVICE_STOPPED",
        SCARD_E_UNEXPECTED => "SCARD_E_UNEXPECTED",
        SCARD_E_NO_READERS_AVAILABLE => "SCARD_E_NO_READERS_AVAILABLE",
        SCARD_W_UNSUPPORTED_CARD => "SCARD_W_UNSUPPORTED_CARD",
        SCARD_W_UNRESPONSIVE_CARD => "SCARD_W_UNRESPONSIVE_CARD",
        SCARD_W_UNPOWERED_CARD => "SCARD_W_UNPOWERED_CARD",
        SCARD_W_RESET_CARD => "SCARD_W_RESET_CARD",
        SCARD_W_REMOVED_CARD => "SCARD_W_REMOVED_CARD",
        _ => "SCARD_UNKNOWN",
    };

    /// <summary>A sentence for the user: what happened and what to do.</summary>
    public static string Describe(uint code) => code switch
    {
        SCARD_S_SUCCESS => "Success.",
        SCARD_E_NO_SERVICE or SCARD_E_SERVICE_STOPPED =>
            OperatingSystem.IsWindows()
                ? "The Smart Card service is not running: start the 'Smart Card' (SCardSvr) service."
                : OperatingSystem.IsLinux()
                    ? "pcscd is not running: start it (sudo systemctl start pcscd.socket, or run pcscd)."
                    : "The PC/SC service is not running.",
        SCARD_E_NO_READERS_AVAILABLE => "No smart card reader is connected.",
        SCARD_E_UNKNOWN_READER => "No reader with this name: list the readers and use one of the names shown.",
        SCARD_E_READER_UNAVAILABLE => "The reader is not available (unplugged?).",
        SCARD_E_NO_SMARTCARD => "There is no card in the reader (is the Pico HSM plugged in and its firmware running?).",
        SCARD_W_REMOVED_CARD => "The card was removed (device unplugged or rebooted); plug it in and try again.",
        SCARD_W_RESET_CARD => "The card was reset by another application; the connection must be re-established and the PIN verified again.",
        SCARD_W_UNPOWERED_CARD => "The card is not powered.",
        SCARD_W_UNRESPONSIVE_CARD => "The card does not answer to reset (no ATR).",
        SCARD_W_UNSUPPORTED_CARD => "The card's ATR is not supported by the reader driver.",
        SCARD_E_TIMEOUT => "Timed out waiting for the card or reader.",
        SCARD_E_SHARING_VIOLATION => "Another application holds the card exclusively (close it, or stop the other program); try again.",
        SCARD_E_PROTO_MISMATCH => "The card does not support the requested protocol (T=0/T=1).",
        SCARD_E_NOT_TRANSACTED => "The card command failed to be transmitted (card busy or removed).",
        SCARD_E_INVALID_HANDLE => "The PC/SC handle is invalid (connection closed, or pcscd restarted).",
        SCARD_E_INVALID_PARAMETER or SCARD_E_INVALID_VALUE => "Invalid argument passed to PC/SC.",
        SCARD_E_INSUFFICIENT_BUFFER => "The receive buffer is too small for the card's answer.",
        SCARD_E_CANCELLED or SCARD_E_SYSTEM_CANCELLED => "The operation was cancelled.",
        SCARD_F_COMM_ERROR => "Communication error with the reader.",
        SCARD_E_NO_MEMORY => "PC/SC ran out of memory.",
        SCARD_E_CARD_UNSUPPORTED => "The card is not supported.",
        SCARD_E_NOT_READY => "The reader or card is not ready.",
        SCARD_E_PCI_TOO_SMALL => "The protocol control information is too small.",
        SCARD_F_INTERNAL_ERROR or SCARD_F_UNKNOWN_ERROR or SCARD_E_UNEXPECTED => "Internal PC/SC error.",
        _ => "PC/SC error.",
    };
}
