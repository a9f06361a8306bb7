using PicoHsm.Common;

namespace PicoHsm.Devices.ScHsm.Card;

/// <summary>
/// A SmartCard-HSM / Pico HSM command answered with an error status word. The message says what
/// the status means for that command and how to fix it. It never contains command data (PINs,
/// DKEK shares, key blobs).
/// </summary>
public class ScHsmCardException : Exception
{
    public ScHsmCardException(string command, ushort statusWord, string? detail = null)
        : base(BuildMessage(command, statusWord, detail))
    {
        Command = command;
        StatusWord = statusWord;
    }

    /// <summary>The command that failed, e.g. "WRAP KEY" (see <see cref="ScHsmCommands"/>).</summary>
    public string Command { get; }

    /// <summary>SW1 SW2, e.g. 0x6A88.</summary>
    public ushort StatusWord { get; }

    /// <summary>For 63Cx: the tries left (x); otherwise null.</summary>
    public int? PinTriesLeft => (StatusWord & 0xFFF0) == 0x63C0 ? StatusWord & 0x0F : null;

    /// <summary>The kind of failure, for callers that branch on it.</summary>
    public ScHsmError Error => Classify(Command, StatusWord);

    public static ScHsmError Classify(string command, ushort sw) => sw switch
    {
        0x6982 => ScHsmError.PinNotVerified,
        0x6983 => ScHsmError.PinBlocked,
        _ when (sw & 0xFFF0) == 0x63C0 => ScHsmError.WrongPin,
        0x6A88 when command is ScHsmCommands.WrapKey or ScHsmCommands.UnwrapKey => ScHsmError.NoDkek,
        0x6A88 when command is ScHsmCommands.VerifyPin or ScHsmCommands.PinStatus => ScHsmError.NotInitialized,
        0x6A88 => ScHsmError.NotFound,
        0x6985 when command is ScHsmCommands.WrapKey => ScHsmError.WrapNotAllowed,
        0x6400 or 0x6A80 or 0x6F00 when command is ScHsmCommands.UnwrapKey => ScHsmError.DkekMismatch,
        0x6A82 => ScHsmError.NotFound,
        0x6A86 or 0x6B00 when command is ScHsmCommands.ImportDkekShare or ScHsmCommands.KeyDomainStatus => ScHsmError.NoSuchKeyDomain,
        0x6D00 or 0x6E00 => ScHsmError.NotSupported,
        _ => ScHsmError.Other,
    };

    /// <summary>
    /// The one mapping of a card status error to the module's error (the backend uses it everywhere it
    /// translates; the cmdlet layer should too): kind and reason from <see cref="Error"/>, message
    /// "Could not <paramref name="action"/>: " + this message, which says what the status means and the fix.
    /// Reasons: PinNotVerified, WrongPin, PinLocked, NotInitialized, NoDkek, KeyNotExportable, DkekMismatch,
    /// NotFound, NoSuchKeyDomain, CommandNotSupported, CardError.
    /// </summary>
    /// <param name="action">What was being done, as a verb phrase ("wrap key 01 'a'").</param>
    /// <param name="target">The error's target (session, key, reader name), or null.</param>
    public PicoHsmException ToPicoHsmException(string action, object? target)
    {
        ArgumentException.ThrowIfNullOrEmpty(action);
        var (kind, reason) = KindAndReason(Error);
        return new PicoHsmException(kind, reason, $"Could not {action}: {Message}", target, this);
    }

    /// <summary>The kind and reason <see cref="ToPicoHsmException"/> gives each failure category.</summary>
    public static (PicoErrorKind Kind, string Reason) KindAndReason(ScHsmError error) => error switch
    {
        ScHsmError.PinNotVerified => (PicoErrorKind.AuthenticationFailed, "PinNotVerified"),
        ScHsmError.WrongPin => (PicoErrorKind.AuthenticationFailed, "WrongPin"),
        ScHsmError.PinBlocked => (PicoErrorKind.AuthenticationFailed, "PinLocked"),
        ScHsmError.NotInitialized => (PicoErrorKind.InvalidOperation, "NotInitialized"),
        ScHsmError.NoDkek => (PicoErrorKind.InvalidOperation, "NoDkek"),
        ScHsmError.WrapNotAllowed => (PicoErrorKind.PermissionDenied, "KeyNotExportable"),
        ScHsmError.DkekMismatch => (PicoErrorKind.InvalidData, "DkekMismatch"),
        ScHsmError.NotFound => (PicoErrorKind.NotFound, "NotFound"),
        ScHsmError.NoSuchKeyDomain => (PicoErrorKind.InvalidArgument, "NoSuchKeyDomain"),
        ScHsmError.NotSupported => (PicoErrorKind.NotSupported, "CommandNotSupported"),
        _ => (PicoErrorKind.DeviceError, "CardError"),
    };

    private static string BuildMessage(string command, ushort sw, string? detail)
    {
        string what = Describe(command, sw);
        string d = string.IsNullOrEmpty(detail) ? "" : $" ({detail})";
        return $"{command} failed with SW {sw:X4}{d}: {what}";
    }

    /// <summary>What <paramref name="sw"/> means as an answer to <paramref name="command"/>, with the fix.</summary>
    public static string Describe(string command, ushort sw)
    {
        if ((sw & 0xFFF0) == 0x63C0)
        {
            int left = sw & 0x0F;
            return left == 0
                ? "wrong PIN; no tries left: the PIN is now blocked (unblock it with the SO-PIN, e.g. sc-hsm-tool --unlock-pin)."
                : $"wrong PIN; {left} {(left == 1 ? "try" : "tries")} left before the PIN is blocked.";
        }
        switch (sw)
        {
            case 0x6982:
                return "the user PIN is not verified (or the PIN session ended because another program re-selected the applet or reset the card): verify the user PIN, then repeat.";
            case 0x6983:
                return "the user PIN is blocked: unblock it with the SO-PIN (sc-hsm-tool --unlock-pin --so-pin ... --pin ...), or re-initialise the device.";
            case 0x6984 when command is ScHsmCommands.VerifyPin or ScHsmCommands.PinStatus:
                return "the device still has a transport PIN: change the user PIN first (pkcs11-tool --change-pin).";
            case 0x6A88:
                return command switch
                {
                    ScHsmCommands.WrapKey =>
                        "the key cannot be wrapped: the device has no DKEK (initialised without --dkek-shares), the key's key domain has no complete DKEK (import all DKEK shares, then verify the PIN), or there is no key with this reference.",
                    ScHsmCommands.UnwrapKey =>
                        "the key cannot be unwrapped: the device has no complete DKEK (initialise with --dkek-shares and import all shares, then verify the PIN).",
                    ScHsmCommands.VerifyPin or ScHsmCommands.PinStatus =>
                        "the device has no user PIN: it is not initialised (initialise it first).",
                    ScHsmCommands.KeyDomainStatus or ScHsmCommands.ImportDkekShare =>
                        "this key domain is not set up on the device (no DKEK configured for it).",
                    _ => "referenced data not found.",
                };
            case 0x6985:
                return command switch
                {
                    ScHsmCommands.WrapKey =>
                        "the key's algorithm list does not allow wrapping (it was generated without the wrap algorithm 0x92), so it cannot be exported under the DKEK.",
                    ScHsmCommands.ImportDkekShare =>
                        "conditions not satisfied: verify the user PIN before importing into a key domain other than 0.",
                    _ => "conditions of use not satisfied.",
                };
            case 0x6400 when command is ScHsmCommands.UnwrapKey:
            case 0x6F00 when command is ScHsmCommands.UnwrapKey:
                return "the device could not unwrap the blob: its DKEK does not match the device's DKEK (compare the blob's KCV with the device's), or the blob is damaged.";
            case 0x6A80 when command is ScHsmCommands.UnwrapKey:
                return "the blob was rejected: its DKEK does not match the device's DKEK (compare the KCVs), or the blob is malformed.";
            case 0x6A80:
                return "incorrect parameters in the command data.";
            case 0x6984 when command is ScHsmCommands.UnwrapKey:
                return "the blob's key type is not supported by the device.";
            case 0x6984:
                return "invalid data.";
            case 0x6986 when command is ScHsmCommands.ImportDkekShare:
                return "all DKEK shares of this key domain have already been imported.";
            case 0x6986:
                return "command not allowed.";
            case 0x6A82:
                return command switch
                {
                    ScHsmCommands.SelectApplet => "the card has no SmartCard-HSM applet (is this a Pico HSM / SmartCard-HSM?).",
                    ScHsmCommands.WrapKey => "there is no key with this reference.",
                    _ => "file or key not found.",
                };
            case 0x6A86:
            case 0x6B00:
                return command is ScHsmCommands.ImportDkekShare or ScHsmCommands.KeyDomainStatus
                    ? "no such key domain on this device."
                    : "incorrect P1/P2.";
            case 0x6A84:
                return "not enough memory on the device.";
            case 0x6A89:
                return "the file already exists.";
            case 0x6581:
                return "memory failure on the device.";
            case 0x6700:
                return "wrong length.";
            case 0x6D00:
                return "instruction not supported (the SmartCard-HSM applet is not selected, or the firmware lacks this command).";
            case 0x6E00:
                return "class not supported (the SmartCard-HSM applet is not selected?).";
            case 0x6F00:
                return "the device reported an internal error.";
            case 0x6400:
                return "the device reported an execution error.";
            case 0x6600:
                return "the device timed out waiting for the button press / secure messaging error.";
            default:
                return "unexpected status word.";
        }
    }
}

/// <summary>Failure categories of <see cref="ScHsmCardException"/>.</summary>
public enum ScHsmError
{
    Other,
    PinNotVerified,
    WrongPin,
    PinBlocked,
    NotInitialized,
    NoDkek,
    WrapNotAllowed,
    DkekMismatch,
    NotFound,
    NoSuchKeyDomain,
    NotSupported,
}

/// <summary>Command names used in <see cref="ScHsmCardException.Command"/>.</summary>
public static class ScHsmCommands
{
    public const string SelectApplet = "SELECT applet";
    public const string PinStatus = "PIN STATUS";
    public const string VerifyPin = "VERIFY PIN";
    public const string VerifySoPin = "VERIFY SO-PIN";
    public const string InitializeDevice = "INITIALIZE DEVICE";
    public const string ImportDkekShare = "IMPORT DKEK SHARE";
    public const string KeyDomainStatus = "KEY DOMAIN STATUS";
    public const string EnumerateObjects = "ENUMERATE OBJECTS";
    public const string SelectFile = "SELECT FILE";
    public const string ReadBinary = "READ BINARY";
    public const string UpdateBinary = "UPDATE BINARY";
    public const string DeleteFile = "DELETE FILE";
    public const string WrapKey = "WRAP KEY";
    public const string UnwrapKey = "UNWRAP KEY";
}
