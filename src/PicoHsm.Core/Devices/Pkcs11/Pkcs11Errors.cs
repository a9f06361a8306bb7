using Net.Pkcs11Interop.Common;
using PicoHsm.Common;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// Turns a PKCS#11 return value into an error a person can act on. The CKR_ name is kept at
/// the end of the message for whoever reads the module's own logs, never shown alone.
/// </summary>
public static class Pkcs11Errors
{
    public static PicoHsmException Translate(Pkcs11Exception ex, string action, object? target = null)
    {
        var (kind, reason, advice) = ex.RV switch
        {
            CKR.CKR_PIN_INCORRECT => (PicoErrorKind.AuthenticationFailed, "WrongPin",
                "The PIN is wrong. Tries are limited: after the last one the PIN is locked and only the SO-PIN can unblock it. Check the PIN before trying again."),
            CKR.CKR_PIN_LOCKED => (PicoErrorKind.AuthenticationFailed, "PinLocked",
                "The user PIN is locked. Unblock it with the SO-PIN (e.g. sc-hsm-tool --unlock-pin or pkcs11-tool --init-pin --login-type so)."),
            CKR.CKR_PIN_EXPIRED => (PicoErrorKind.AuthenticationFailed, "PinExpired", "The PIN has expired. Change it with the token's tools, then try again."),
            CKR.CKR_PIN_LEN_RANGE or CKR.CKR_PIN_INVALID => (PicoErrorKind.InvalidArgument, "PinInvalid", "The PIN has a length or characters the token does not accept."),
            CKR.CKR_USER_NOT_LOGGED_IN => (PicoErrorKind.PermissionDenied, "NotLoggedIn", "The session is not logged in. Connect with -Pin or -Credential."),
            CKR.CKR_TOKEN_NOT_PRESENT or CKR.CKR_DEVICE_REMOVED => (PicoErrorKind.ResourceUnavailable, "TokenRemoved",
                "The token was removed or is not present. Insert it and connect again (Connect-PicoHsm)."),
            CKR.CKR_SESSION_HANDLE_INVALID or CKR.CKR_SESSION_CLOSED => (PicoErrorKind.ResourceUnavailable, "SessionClosed",
                "The PKCS#11 session has ended (token removed or reset?). Connect again with Connect-PicoHsm."),
            CKR.CKR_SLOT_ID_INVALID => (PicoErrorKind.NotFound, "SlotNotFound", "That slot does not exist. List slots with Get-PicoHsmToken."),
            CKR.CKR_MECHANISM_INVALID or CKR.CKR_MECHANISM_PARAM_INVALID => (PicoErrorKind.NotSupported, "MechanismNotSupported",
                "The token does not support the mechanism needed for this. Check the token's mechanism list."),
            CKR.CKR_KEY_UNEXTRACTABLE => (PicoErrorKind.PermissionDenied, "KeyNotExtractable",
                "The key is not extractable (CKA_EXTRACTABLE is false), so the token will not wrap it. It cannot be backed up; it was created that way."),
            CKR.CKR_KEY_NOT_WRAPPABLE => (PicoErrorKind.PermissionDenied, "KeyNotWrappable", "The token will not wrap this key (CKR_KEY_NOT_WRAPPABLE)."),
            CKR.CKR_KEY_TYPE_INCONSISTENT => (PicoErrorKind.NotSupported, "KeyTypeInconsistent", "The key type does not fit the mechanism."),
            CKR.CKR_KEY_FUNCTION_NOT_PERMITTED => (PicoErrorKind.PermissionDenied, "KeyFunctionNotPermitted", "The key's attributes do not allow this use."),
            CKR.CKR_WRAPPED_KEY_INVALID or CKR.CKR_WRAPPED_KEY_LEN_RANGE or CKR.CKR_ENCRYPTED_DATA_INVALID => (PicoErrorKind.InvalidData, "WrappedKeyInvalid",
                "The token could not unwrap the key: the backup was made under another DKEK or is damaged."),
            CKR.CKR_TEMPLATE_INCONSISTENT or CKR.CKR_TEMPLATE_INCOMPLETE or CKR.CKR_ATTRIBUTE_VALUE_INVALID or CKR.CKR_ATTRIBUTE_TYPE_INVALID or CKR.CKR_ATTRIBUTE_READ_ONLY =>
                (PicoErrorKind.NotSupported, "TemplateRejected", "The token refused the key's attributes."),
            CKR.CKR_DEVICE_MEMORY or CKR.CKR_HOST_MEMORY => (PicoErrorKind.ResourceUnavailable, "OutOfMemory", "The token or host is out of memory. Free space on the token and try again."),
            CKR.CKR_TOKEN_WRITE_PROTECTED => (PicoErrorKind.PermissionDenied, "TokenWriteProtected", "The token is write-protected."),
            CKR.CKR_CRYPTOKI_NOT_INITIALIZED or CKR.CKR_FUNCTION_FAILED or CKR.CKR_GENERAL_ERROR or CKR.CKR_DEVICE_ERROR =>
                (PicoErrorKind.DeviceError, "DeviceError", "The token or its module failed. Reconnect it; if it keeps failing, check the module's logs."),
            CKR.CKR_FUNCTION_CANCELED => (PicoErrorKind.OperationStopped, "Cancelled", "The operation was cancelled."),
            _ => (PicoErrorKind.DeviceError, "Pkcs11Error", "The PKCS#11 module returned an error."),
        };
        return new PicoHsmException(kind, reason, $"Could not {action}: {advice} ({ex.RV})", target, ex);
    }
}
