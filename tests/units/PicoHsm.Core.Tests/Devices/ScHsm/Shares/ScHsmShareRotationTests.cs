using System.Text;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Shares;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Shares;

/// <summary>
/// A custodian leaves: the sc-hsm-tool share file gets a new password (typed, or new n-of-m password
/// shares), the DKEK share inside stays the same, and the old file keeps opening with the old password.
/// The firmware's own files (tests/vectors) are rotated at sc-hsm-tool's real 10,000,000 rounds; the
/// other cases use a small count to stay quick (the count is not stored in the file).
/// </summary>
public class ScHsmShareRotationTests
{
    private const int Fast = 1000;
    private static readonly byte[] Old1 = Encoding.UTF8.GetBytes("share-one-pass");
    private const string ThresholdShareHex = "e5d17f37c64896520115dd3b6eac65ed792089b9de7e1ea1472e97144af6c569";

    [Fact]
    public void WithPassword_FirmwareShare_SameShareNewPasswordOldFileStillOpens()
    {
        byte[] oldFile = Vectors.Read("dkek-share-1.pbe");
        var rotated = ScHsmShareRotation.WithPassword(oldFile, Old1, Encoding.UTF8.GetBytes("the next custodian's pass"));

        Assert.Equal(ScHsmShareFile.FileLength, rotated.File.Length);
        Assert.Null(rotated.PasswordShares);
        Assert.Equal(ScHsmShareRotation.ShareKcv(Vectors.Hex(Vectors.Share1Hex)), rotated.ShareKcv);
        Assert.NotEqual(oldFile.AsSpan(8, 8).ToArray(), rotated.File.AsSpan(8, 8).ToArray()); // fresh salt
        using (var share = ScHsmShareRotation.Open(rotated.File, Encoding.UTF8.GetBytes("the next custodian's pass")))
            Assert.Equal(Vectors.Share1Hex, Convert.ToHexString(share.Span).ToLowerInvariant());
        // The old file's bytes are left as they were (it still opens until destroyed).
        Assert.Equal(Vectors.Read("dkek-share-1.pbe"), oldFile);
    }

    [Fact]
    public void WithPasswordShares_FirmwareThresholdFile_ReSplitThreeOfFive_AnyThreeOpenIt()
    {
        byte[] oldFile = Vectors.Read("dkek-share-threshold.pbe");
        byte[] oldPassword = ScHsmShareRotation.PasswordFromShares(ScHsmPasswordShares.ParseHex("c0:1b:aa:f3:4b:97:a7:03"),
            [ScHsmPasswordShare.Parse(1, "3f:3e:fa:a8:51:77:40:0b"), ScHsmPasswordShare.Parse(3, "82:ea:95:2e:f3:6a:71:8e")]);
        var rotated = ScHsmShareRotation.WithPasswordShares(oldFile, oldPassword, 3, 5);

        var split = Assert.IsType<ScHsmPasswordSplit>(rotated.PasswordShares);
        Assert.Equal(3, split.Threshold);
        Assert.Equal([1, 2, 3, 4, 5], split.Shares.Select(s => s.Id));
        Assert.NotEqual("c0:1b:aa:f3:4b:97:a7:03", split.PrimeText);
        Assert.Equal(8, split.Prime.Length);
        byte[] password = ScHsmShareRotation.PasswordFromShares(split.Prime, [split.Shares[4], split.Shares[1], split.Shares[2]]);
        Assert.NotEqual(0, password[0]);   // sc-hsm-tool could not rebuild a password with a leading zero byte
        using (var share = ScHsmShareRotation.Open(rotated.File, password))
            Assert.Equal(ThresholdShareHex, Convert.ToHexString(share.Span).ToLowerInvariant());
        Assert.Equal(ScHsmShareRotation.ShareKcv(Vectors.Hex(ThresholdShareHex)), rotated.ShareKcv);
    }

    [Fact]
    public void OldPassword_DoesNotOpenTheRotatedFile_OldFileStillDoes()
    {
        byte[] oldFile = ScHsmShareFile.Create(new byte[32], "leaving custodian"u8, iterations: Fast);
        var rotated = ScHsmShareRotation.WithPassword(oldFile, "leaving custodian"u8, "arriving custodian"u8, Fast);
        Assert.Equal("WrongSharePassword", Assert.Throws<PicoHsmException>(() => ScHsmShareRotation.Open(rotated.File, "leaving custodian"u8, Fast)).Reason);
        // Rotation cannot revoke a copy: the old file opens with the old password until it is destroyed.
        using var still = ScHsmShareRotation.Open(oldFile, "leaving custodian"u8, Fast);
        Assert.Equal(new byte[32], still.Span.ToArray());
        var threshold = ScHsmShareRotation.WithPasswordShares(oldFile, "leaving custodian"u8, 2, 3, Fast);
        Assert.Throws<PicoHsmException>(() => ScHsmShareRotation.Open(threshold.File, "leaving custodian"u8, Fast));
    }

    [Fact]
    public void ThresholdToPlainAndBack_KeepsTheShare()
    {
        byte[] share = Encoding.ASCII.GetBytes("0123456789abcdef0123456789abcdef");
        byte[] firstPassword = ScHsmPasswordShares.NewPassword();
        byte[] threshold = ScHsmShareFile.Create(share, firstPassword, iterations: Fast);

        var plain = ScHsmShareRotation.WithPassword(threshold, firstPassword, "a plain password"u8, Fast);
        using (var s = ScHsmShareRotation.Open(plain.File, "a plain password"u8, Fast))
            Assert.Equal(share, s.Span.ToArray());

        var back = ScHsmShareRotation.WithPasswordShares(plain.File, "a plain password"u8, 2, 3, Fast);
        var split = back.PasswordShares!;
        using (var s = ScHsmShareRotation.Open(back.File, ScHsmShareRotation.PasswordFromShares(split.Prime, [split.Shares[2], split.Shares[0]]), Fast))
            Assert.Equal(share, s.Span.ToArray());
        Assert.Equal(plain.ShareKcv, back.ShareKcv);
    }

    [Fact]
    public void WrongOldPassword_SaysSoAndWritesNothing()
    {
        byte[] file = ScHsmShareFile.Create(new byte[32], "right password"u8, iterations: Fast);
        var e = Assert.Throws<PicoHsmException>(() => ScHsmShareRotation.WithPassword(file, "wrong password"u8, "new password"u8, Fast));
        Assert.Equal("WrongSharePassword", e.Reason);
        Assert.Equal(PicoErrorKind.AuthenticationFailed, e.Kind);
        Assert.DoesNotContain("wrong password", e.Message);
    }

    [Theory]
    [InlineData(2, 10, "TooManyPasswordShares")]
    [InlineData(1, 3, "PasswordShareCounts")]
    [InlineData(2, 2, "PasswordShareCounts")]
    [InlineData(4, 3, "PasswordShareCounts")]
    public void WithPasswordShares_CountsScHsmToolCannotUse_AreRefused(int threshold, int total, string reason)
    {
        byte[] file = ScHsmShareFile.Create(new byte[32], "pw"u8, iterations: Fast);
        var e = Assert.Throws<PicoHsmException>(() => ScHsmShareRotation.WithPasswordShares(file, "pw"u8, threshold, total, Fast));
        Assert.Equal(reason, e.Reason);
    }

    [Fact]
    public void TooFewPasswordShares_AreAClearError()
    {
        var split = ScHsmPasswordShares.Split(ScHsmPasswordShares.NewPassword(), 3, 4);
        var e = Record.Exception(() =>
        {
            byte[] pw = ScHsmShareRotation.PasswordFromShares(split.Prime, [split.Shares[0]]);
        });
        Assert.Equal("PasswordSharesInvalid", Assert.IsType<PicoHsmException>(e).Reason);
    }

    [Fact]
    public void NewPassword_NeverStartsWithZero_TopBitClear()
    {
        for (int i = 0; i < 5000; i++)
        {
            var p = ScHsmPasswordShares.NewPassword();
            Assert.InRange(p[0], 1, 0x7F);
        }
    }

    [Fact]
    public void NewPasswordWithNul_IsRefused()
    {
        byte[] file = ScHsmShareFile.Create(new byte[32], "pw"u8, iterations: Fast);
        Assert.Equal("PasswordHasNul", Assert.Throws<PicoHsmException>(() => ScHsmShareRotation.WithPassword(file, "pw"u8, "a\0b"u8, Fast)).Reason);
    }
}
