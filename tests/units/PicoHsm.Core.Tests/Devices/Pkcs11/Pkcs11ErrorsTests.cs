using Net.Pkcs11Interop.Common;
using PicoHsm.Common;
using PicoHsm.Devices.Pkcs11;

namespace PicoHsm.Core.Tests.Devices.Pkcs11;

public sealed class Pkcs11ErrorsTests
{
    [Theory]
    [InlineData(CKR.CKR_PIN_INCORRECT, PicoErrorKind.AuthenticationFailed, "WrongPin", "PIN is wrong")]
    [InlineData(CKR.CKR_PIN_LOCKED, PicoErrorKind.AuthenticationFailed, "PinLocked", "SO-PIN")]
    [InlineData(CKR.CKR_TOKEN_NOT_PRESENT, PicoErrorKind.ResourceUnavailable, "TokenRemoved", "Connect-PicoHsm")]
    [InlineData(CKR.CKR_DEVICE_REMOVED, PicoErrorKind.ResourceUnavailable, "TokenRemoved", "Connect-PicoHsm")]
    [InlineData(CKR.CKR_MECHANISM_INVALID, PicoErrorKind.NotSupported, "MechanismNotSupported", "mechanism list")]
    [InlineData(CKR.CKR_USER_NOT_LOGGED_IN, PicoErrorKind.PermissionDenied, "NotLoggedIn", "-Pin")]
    [InlineData(CKR.CKR_WRAPPED_KEY_INVALID, PicoErrorKind.InvalidData, "WrappedKeyInvalid", "another DKEK")]
    [InlineData(CKR.CKR_KEY_UNEXTRACTABLE, PicoErrorKind.PermissionDenied, "KeyNotExtractable", "CKA_EXTRACTABLE")]
    public void Translate_GivesTheKindReasonAndAdvice(CKR rv, PicoErrorKind kind, string reason, string advice)
    {
        var inner = new Pkcs11Exception("C_Something", rv);
        var e = Pkcs11Errors.Translate(inner, "do the thing", "the-target");
        Assert.Equal(kind, e.Kind);
        Assert.Equal(reason, e.Reason);
        Assert.StartsWith("Could not do the thing: ", e.Message);
        Assert.Contains(advice, e.Message);
        // The CKR_ name closes the message, for whoever reads the module's logs.
        Assert.EndsWith($"({rv})", e.Message);
        Assert.Equal("the-target", e.Target);
        Assert.Same(inner, e.InnerException);
    }

    [Fact]
    public void Translate_AnUnlistedCode_IsAGenericDeviceError_ThatStillNamesTheCode()
    {
        var e = Pkcs11Errors.Translate(new Pkcs11Exception("C_Something", CKR.CKR_RANDOM_NO_RNG), "get random bytes");
        Assert.Equal(PicoErrorKind.DeviceError, e.Kind);
        Assert.Equal("Pkcs11Error", e.Reason);
        Assert.Contains(nameof(CKR.CKR_RANDOM_NO_RNG), e.Message);
        Assert.Null(e.Target);
    }
}
