using PicoHsm.Dkek;

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
        IOException io => new PicoHsmException(PicoErrorKind.ResourceUnavailable, "FileError", io.Message, null, io),
        UnauthorizedAccessException ua => new PicoHsmException(PicoErrorKind.PermissionDenied, "FileAccessDenied", ua.Message + " Check the folder's permissions.", null, ua),
        _ => null,
    };
}
