using System.Security.Cryptography;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Dkek;
using PicoHsm.PcSc;

namespace PicoHsm.Operations;

/// <summary>
/// The one place where an exception from the core becomes a <see cref="PicoHsmException"/>: a
/// typed reason (the second half of the error id &lt;Cmdlet&gt;&lt;Reason&gt;), a kind (the error
/// category) and a message that says what to do. Decisions read exception types and typed
/// reasons, never message text. Anything not listed is a bug and is left to the host as it is.
/// </summary>
public static class ErrorTranslation
{
    /// <summary>
    /// The device went away: the token was removed, the session was closed, the card does not answer or
    /// PC/SC lost it. Every later command to that device fails too, so a run over many keys (backup,
    /// restore) stops at the first such error instead of failing each remaining key.
    /// </summary>
    public static bool IsDeviceGone(PicoHsmException p)
    {
        ArgumentNullException.ThrowIfNull(p);
        return p.Reason is "TokenRemoved" or "SessionClosed" or "CardUnavailable" or "PcscError";
    }

    public static PicoHsmException? Translate(Exception ex) => ex switch
    {
        PicoHsmException p => p,
        DkekShareFileException f => new PicoHsmException(
            f.Reason == DkekShareFileReason.WrongPasswordOrTampered ? PicoErrorKind.AuthenticationFailed : PicoErrorKind.InvalidData,
            "ShareFile" + f.Reason, f.Message, f.SourceName, f),
        DkekShareException s => new PicoHsmException(PicoErrorKind.InvalidArgument, "Shares" + s.Reason, s.Message, null, s),
        Net.Pkcs11Interop.Common.Pkcs11Exception pk => Pkcs11Errors.Translate(pk, "complete the operation"),
        BackupFileException b => new PicoHsmException(b.Reason == BackupFileReason.NotABackup ? PicoErrorKind.InvalidArgument : PicoErrorKind.InvalidData,
            "Backup" + b.Reason, b.Message, b.SourceName, b),
        ScHsmWrongPasswordException w => new PicoHsmException(PicoErrorKind.AuthenticationFailed, "ShareFileWrongPassword",
            w.Message + " Check the password with the share's custodian.", null, w),
        ScHsmWrongDkekException d => new PicoHsmException(PicoErrorKind.InvalidData, "DkekMismatch", d.Message, null, d),
        ScHsmFormatException f => new PicoHsmException(PicoErrorKind.InvalidData, "FileFormat", f.Message, null, f),
        // The card layer's one mapping of a status word (the backend uses the same).
        ScHsmCardException c => c.ToPicoHsmException("complete the card operation", null),
        PcscException pc => new PicoHsmException(pc.IsCardAbsent ? PicoErrorKind.ResourceUnavailable : PicoErrorKind.DeviceError,
            "PcscError", pc.Message, null, pc),
        FileNotFoundException nf => new PicoHsmException(PicoErrorKind.NotFound, "FileNotFound",
            $"{nf.Message} Check the path.", nf.FileName, nf),
        DirectoryNotFoundException dn => new PicoHsmException(PicoErrorKind.NotFound, "FileNotFound",
            $"{dn.Message} Check the path.", null, dn),
        IOException io => new PicoHsmException(PicoErrorKind.ResourceUnavailable, "FileError", io.Message, null, io),
        UnauthorizedAccessException ua => new PicoHsmException(PicoErrorKind.PermissionDenied, "FileAccessDenied", ua.Message + " Check the folder's permissions.", null, ua),
        // Cancelled work (Ctrl+C) is stopped, not failed; a host that knows it was stopping says so its own way.
        OperationCanceledException oc => new PicoHsmException(PicoErrorKind.OperationStopped, "Stopped",
            "The operation was stopped before it finished; nothing after that point was done. Run it again to complete it.", null, oc),
        // A value the core refused: the message says which and why (never a secret).
        ArgumentException a => new PicoHsmException(PicoErrorKind.InvalidArgument, "InvalidArgument",
            $"{a.Message} Correct the value and try again.", a.ParamName, a),
        // A failed integrity or crypto check: a damaged file or key material that does not fit.
        CryptographicException ce => new PicoHsmException(PicoErrorKind.InvalidData, "CryptographicFailure",
            $"A cryptographic check failed: {ce.Message} The file or key may be damaged; try another copy.", null, ce),
        _ => null,
    };
}
