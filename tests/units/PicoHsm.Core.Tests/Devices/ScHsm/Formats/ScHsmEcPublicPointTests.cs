using System.Security.Cryptography;
using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Formats;

/// <summary>
/// d·G for the EC check of card-format backups (Test-PicoKeyBackup, Convert-PicoKeyBackup) is computed by
/// the platform from a zeroed pinned buffer, not through BouncyCastle's immutable BigInteger: the same
/// point as BouncyCastle's on every curve the card holds.
/// </summary>
public class ScHsmEcPublicPointTests
{
    public static TheoryData<string> Curves()
    {
        var data = new TheoryData<string>();
        foreach (var c in ScHsmCurve.Known) data.Add(c.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Curves))]
    public void ThePlatformComputesDG_AsBouncyCastleDoes(string name)
    {
        var curve = ScHsmCurve.FromName(name)!;
        // Shorter than the order, so below it; leading zero bytes as a blob may carry none or some.
        byte[] d = RandomNumberGenerator.GetBytes(curve.FieldSizeBytes - 1);
        d[0] |= 1;
        byte[] expected = ScHsmEcKeyMaterial.BouncyCastlePublicPointOf(curve, d);
        // Mono (the net472 run) has no ECDsa: there the fallback alone is checked, below.
        if (OperatingSystem.IsLinux() && Type.GetType("Mono.Runtime") is null)
        {
            byte[]? platform = ScHsmEcKeyMaterial.PlatformPublicPointOf(curve, d);
            Assert.NotNull(platform); // OpenSSL knows every curve of the list: the BigInteger path is not taken
            Assert.Equal(expected, platform);
            Assert.Equal(expected, ScHsmEcKeyMaterial.PlatformPublicPointOf(curve, [0, 0, .. d]));
        }
        Assert.Equal(expected, ScHsmEcKeyMaterial.PublicPointOf(curve, d));
    }

    [Fact]
    public void AScalarThePlatformRefuses_FallsBackToBouncyCastle()
    {
        var curve = ScHsmCurve.FromName("P-256")!;
        Assert.Null(ScHsmEcKeyMaterial.PlatformPublicPointOf(curve, new byte[32]));          // d = 0
        Assert.Null(ScHsmEcKeyMaterial.PlatformPublicPointOf(curve, new byte[33].Select(_ => (byte)0xFF).ToArray())); // wider than the field
        byte[] order = curve.Order;
        Assert.Equal(ScHsmEcKeyMaterial.BouncyCastlePublicPointOf(curve, order), ScHsmEcKeyMaterial.PublicPointOf(curve, order));
    }
}
