using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Dkek;
using PicoHsm.PcSc;

namespace PicoHsm.Module;

/// <summary>
/// Core exceptions that are not <see cref="PicoHsmException"/> (share files, share sets,
/// backups, card status words) become one, so every error record has an id shaped
/// &lt;Cmdlet&gt;&lt;Reason&gt;, a category and a message with the fix. Anything else is a bug and
/// is left to PowerShell as it is.
/// </summary>
internal static class ErrorTranslation
{
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
        ScHsmWrongPasswordException w => new PicoHsmException(PicoErrorKind.AuthenticationFailed, "ShareFileWrongPassword", w.Message, null, w),
        ScHsmWrongDkekException d => new PicoHsmException(PicoErrorKind.InvalidData, "DkekMismatch", d.Message, null, d),
        ScHsmFormatException f => new PicoHsmException(PicoErrorKind.InvalidData, "FileFormat", f.Message, null, f),
        ScHsmCardException c => new PicoHsmException(c.Error switch
            {
                ScHsmError.WrongPin or ScHsmError.PinBlocked => PicoErrorKind.AuthenticationFailed,
                ScHsmError.PinNotVerified => PicoErrorKind.PermissionDenied,
                ScHsmError.WrapNotAllowed => PicoErrorKind.PermissionDenied,
                ScHsmError.NoDkek or ScHsmError.NotFound or ScHsmError.NoSuchKeyDomain => PicoErrorKind.NotFound,
                ScHsmError.DkekMismatch => PicoErrorKind.InvalidData,
                ScHsmError.NotSupported => PicoErrorKind.NotSupported,
                ScHsmError.NotInitialized => PicoErrorKind.InvalidOperation,
                _ => PicoErrorKind.DeviceError,
            }, "Card" + c.Error, c.Message, null, c),
        PcscException pc => new PicoHsmException(pc.IsCardAbsent ? PicoErrorKind.ResourceUnavailable : PicoErrorKind.DeviceError,
            "PcscError", pc.Message, null, pc),
        IOException io => new PicoHsmException(PicoErrorKind.ResourceUnavailable, "FileError", io.Message, null, io),
        UnauthorizedAccessException ua => new PicoHsmException(PicoErrorKind.PermissionDenied, "FileAccessDenied", ua.Message + " Check the folder's permissions.", null, ua),
        _ => null,
    };
}
