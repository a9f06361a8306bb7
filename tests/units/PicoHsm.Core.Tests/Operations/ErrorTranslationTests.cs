using System.Security.Cryptography;
using Net.Pkcs11Interop.Common;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Dkek;
using PicoHsm.Operations;
using PicoHsm.PcSc;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>Every core exception type becomes a PicoHsmException with a typed reason and kind, and keeps its cause.</summary>
public sealed class ErrorTranslationTests
{
    public static TheoryData<Exception, string, PicoErrorKind> Cases() => new()
    {
        { new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse", "taken"), "IdInUse", PicoErrorKind.ResourceExists },
        { new DkekShareFileException(DkekShareFileReason.WrongPasswordOrTampered, "a.dkekshare", "wrong"), "ShareFileWrongPasswordOrTampered", PicoErrorKind.AuthenticationFailed },
        { new DkekShareFileException(DkekShareFileReason.Corrupt, "a.dkekshare", "damaged"), "ShareFileCorrupt", PicoErrorKind.InvalidData },
        { new DkekShareException(DkekShareReason.NotEnoughShares, "too few"), "SharesNotEnoughShares", PicoErrorKind.InvalidArgument },
        { new Pkcs11Exception("C_Login", CKR.CKR_PIN_INCORRECT), "WrongPin", PicoErrorKind.AuthenticationFailed },
        { new BackupFileException(BackupFileReason.NotABackup, "x.json", "not a backup"), "BackupNotABackup", PicoErrorKind.InvalidArgument },
        { new BackupFileException(BackupFileReason.DigestMismatch, "x.pkb", "changed"), "BackupDigestMismatch", PicoErrorKind.InvalidData },
        { new ScHsmWrongPasswordException("bad padding"), "ShareFileWrongPassword", PicoErrorKind.AuthenticationFailed },
        { new ScHsmWrongDkekException("other DKEK"), "DkekMismatch", PicoErrorKind.InvalidData },
        { new ScHsmFormatException("not a blob"), "FileFormat", PicoErrorKind.InvalidData },
        // A raw card status error goes through the card layer's one mapping (ScHsmCardException.ToPicoHsmException).
        { new ScHsmCardException(ScHsmCommands.VerifyPin, 0x63C2), "WrongPin", PicoErrorKind.AuthenticationFailed },
        { new ScHsmCardException(ScHsmCommands.WrapKey, 0x6A88), "NoDkek", PicoErrorKind.InvalidOperation },
        { new PcscException(PcscError.SCARD_W_REMOVED_CARD, "SCardTransmit"), "PcscError", PicoErrorKind.ResourceUnavailable },
        { new FileNotFoundException("missing", "/nowhere/x"), "FileNotFound", PicoErrorKind.NotFound },
        { new IOException("disk full"), "FileError", PicoErrorKind.ResourceUnavailable },
        { new UnauthorizedAccessException("no"), "FileAccessDenied", PicoErrorKind.PermissionDenied },
        { new ArgumentException("The share count m must be 2..255.", "shareCount"), "InvalidArgument", PicoErrorKind.InvalidArgument },
        { new CryptographicException("tag mismatch"), "CryptographicFailure", PicoErrorKind.InvalidData },
        { new OperationCanceledException(), "Stopped", PicoErrorKind.OperationStopped },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void EachCoreException_HasATypedReasonAndKind(Exception ex, string reason, PicoErrorKind kind)
    {
        var p = ErrorTranslation.Translate(ex);
        Assert.NotNull(p);
        Assert.Equal(reason, p!.Reason);
        Assert.Equal(kind, p.Kind);
        Assert.False(string.IsNullOrWhiteSpace(p.Message));
        if (ex is not PicoHsmException) Assert.Same(ex, p.InnerException);
    }

    [Fact]
    public void ABug_IsNotDressedUpAsAUserError()
    {
        Assert.Null(ErrorTranslation.Translate(new NullReferenceException()));
        Assert.Null(ErrorTranslation.Translate(new InvalidOperationException("a bug")));
    }

    [Fact]
    public void AShareFileError_NamesTheFile()
    {
        var p = ErrorTranslation.Translate(new DkekShareFileException(DkekShareFileReason.Corrupt, "/c/share-2.dkekshare", "damaged"));
        Assert.Equal("/c/share-2.dkekshare", p!.Target);
    }

    [Fact]
    public void TheUserPinRule_IsSixToSixteen()
    {
        Assert.Equal("BadPin", Assert.Throws<PicoHsmException>(() => PinRules.ValidateUserPin("12345"u8)).Reason);
        Assert.Equal("BadPin", Assert.Throws<PicoHsmException>(() => PinRules.ValidateUserPin(new byte[17])).Reason);
        PinRules.ValidateUserPin("123456"u8);
        PinRules.ValidateUserPin(new byte[16]);
    }

    /// <summary>The one "device gone" rule backup and restore stop by: a removed token, a closed session, a card that
    /// does not answer, a PC/SC failure; not a file error or a refusal.</summary>
    [Fact]
    public void IsDeviceGone_TheReasonsThatStopABackupOrARestore()
    {
        foreach (string gone in new[] { "TokenRemoved", "SessionClosed", "CardUnavailable", "PcscError" })
            Assert.True(ErrorTranslation.IsDeviceGone(new PicoHsmException(PicoErrorKind.ResourceUnavailable, gone, "x", null)), gone);
        foreach (string other in new[] { "FileError", "IdInUse", "DkekMismatch", "KeyNotExportable" })
            Assert.False(ErrorTranslation.IsDeviceGone(new PicoHsmException(PicoErrorKind.ResourceUnavailable, other, "x", null)), other);
        // what a PC/SC failure translates to counts
        Assert.True(ErrorTranslation.IsDeviceGone(ErrorTranslation.Translate(new PcscException("gone"))!));
    }
}
