using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Card;

public sealed class ScHsmCardExceptionTests
{
    [Theory]
    [InlineData(ScHsmCommands.WrapKey, 0x6A88, ScHsmError.NoDkek, "DKEK")]
    [InlineData(ScHsmCommands.WrapKey, 0x6985, ScHsmError.WrapNotAllowed, "algorithm list")]
    [InlineData(ScHsmCommands.UnwrapKey, 0x6400, ScHsmError.DkekMismatch, "does not match")]
    [InlineData(ScHsmCommands.UnwrapKey, 0x6A80, ScHsmError.DkekMismatch, "does not match")]
    [InlineData(ScHsmCommands.UnwrapKey, 0x6A88, ScHsmError.NoDkek, "DKEK")]
    [InlineData(ScHsmCommands.WrapKey, 0x6982, ScHsmError.PinNotVerified, "verify the user PIN")]
    [InlineData(ScHsmCommands.VerifyPin, 0x63C2, ScHsmError.WrongPin, "2 tries left")]
    [InlineData(ScHsmCommands.VerifyPin, 0x63C1, ScHsmError.WrongPin, "1 try left")]
    [InlineData(ScHsmCommands.VerifyPin, 0x6983, ScHsmError.PinBlocked, "blocked")]
    [InlineData(ScHsmCommands.VerifyPin, 0x6A88, ScHsmError.NotInitialized, "not initialised")]
    [InlineData(ScHsmCommands.SelectFile, 0x6A82, ScHsmError.NotFound, "not found")]
    [InlineData(ScHsmCommands.KeyDomainStatus, 0x6A86, ScHsmError.NoSuchKeyDomain, "key domain")]
    [InlineData(ScHsmCommands.ImportDkekShare, 0x6986, ScHsmError.Other, "already been imported")]
    public void StatusWords_MapToTypedErrorsWithFix(string command, int sw, ScHsmError error, string messagePart)
    {
        var ex = new ScHsmCardException(command, (ushort)sw);
        Assert.Equal(error, ex.Error);
        Assert.Equal((ushort)sw, ex.StatusWord);
        Assert.Equal(command, ex.Command);
        Assert.Contains(messagePart, ex.Message);
        Assert.Contains($"{sw:X4}", ex.Message);
    }

    [Fact]
    public void PinTriesLeft_OnlyFor63Cx()
    {
        Assert.Equal(2, new ScHsmCardException(ScHsmCommands.VerifyPin, 0x63C2).PinTriesLeft);
        Assert.Null(new ScHsmCardException(ScHsmCommands.VerifyPin, 0x6983).PinTriesLeft);
    }

    [Theory]
    [InlineData(ScHsmCommands.WrapKey, 0x6982, PicoErrorKind.AuthenticationFailed, "PinNotVerified", "verify the user PIN")]
    [InlineData(ScHsmCommands.VerifyPin, 0x63C2, PicoErrorKind.AuthenticationFailed, "WrongPin", "2 tries left")]
    [InlineData(ScHsmCommands.VerifyPin, 0x6983, PicoErrorKind.AuthenticationFailed, "PinLocked", "unblock it with the SO-PIN")]
    [InlineData(ScHsmCommands.PinStatus, 0x6A88, PicoErrorKind.InvalidOperation, "NotInitialized", "initialise it first")]
    [InlineData(ScHsmCommands.UnwrapKey, 0x6A88, PicoErrorKind.InvalidOperation, "NoDkek", "import all shares")]
    [InlineData(ScHsmCommands.WrapKey, 0x6985, PicoErrorKind.PermissionDenied, "KeyNotExportable", "wrap algorithm 0x92")]
    [InlineData(ScHsmCommands.UnwrapKey, 0x6400, PicoErrorKind.InvalidData, "DkekMismatch", "compare the blob's KCV")]
    [InlineData(ScHsmCommands.SelectFile, 0x6A82, PicoErrorKind.NotFound, "NotFound", "not found")]
    [InlineData(ScHsmCommands.ImportDkekShare, 0x6B00, PicoErrorKind.InvalidArgument, "NoSuchKeyDomain", "no such key domain")]
    [InlineData(ScHsmCommands.EnumerateObjects, 0x6D00, PicoErrorKind.NotSupported, "CommandNotSupported", "firmware lacks this command")]
    [InlineData(ScHsmCommands.UpdateBinary, 0x6A84, PicoErrorKind.DeviceError, "CardError", "not enough memory")]
    public void ToPicoHsmException_GivesKindReasonAndTheFix(string command, int sw, PicoErrorKind kind, string reason, string fix)
    {
        var card = new ScHsmCardException(command, (ushort)sw, "key reference 3");
        var target = new object();
        var ex = card.ToPicoHsmException("wrap key 03 'a'", target);
        Assert.Equal(kind, ex.Kind);
        Assert.Equal(reason, ex.Reason);
        Assert.Same(target, ex.Target);
        Assert.Same(card, ex.InnerException);
        Assert.StartsWith("Could not wrap key 03 'a': ", ex.Message);
        Assert.Contains(fix, ex.Message);
        Assert.Contains($"SW {sw:X4}", ex.Message);
    }

    [Fact]
    public void KindAndReason_EveryCategoryHasItsOwnReason_OnlyOtherIsCardError()
    {
        var reasons = Enum.GetValues<ScHsmError>().Select(e => (Error: e, ScHsmCardException.KindAndReason(e).Reason)).ToList();
        Assert.Equal(reasons.Count, reasons.Select(r => r.Reason).Distinct().Count());
        Assert.Equal(ScHsmError.Other, Assert.Single(reasons, r => r.Reason == "CardError").Error);
        Assert.All(reasons, r => Assert.False(string.IsNullOrEmpty(r.Reason)));
    }
}
