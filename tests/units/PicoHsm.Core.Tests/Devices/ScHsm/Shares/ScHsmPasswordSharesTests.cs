using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Shares;

public class ScHsmPasswordSharesTests
{
    private const string Prime = "c0:1b:aa:f3:4b:97:a7:03";
    private static readonly ScHsmPasswordShare S1 = ScHsmPasswordShare.Parse(1, "3f:3e:fa:a8:51:77:40:0b");
    private static readonly ScHsmPasswordShare S2 = ScHsmPasswordShare.Parse(2, "01:06:f2:71:fc:a5:05:4b");
    private static readonly ScHsmPasswordShare S3 = ScHsmPasswordShare.Parse(3, "82:ea:95:2e:f3:6a:71:8e");

    public static TheoryData<int, int> Pairs => new() { { 0, 1 }, { 0, 2 }, { 1, 2 }, { 2, 0 } };

    [Theory]
    [MemberData(nameof(Pairs))]
    public void AnyTwoOfThree_RebuildManifestPassword(int a, int b)
    {
        var all = new[] { S1, S2, S3 };
        var password = ScHsmPasswordShares.Combine(Prime, [all[a], all[b]]);
        Assert.Equal("7d7702dea6497acb", Convert.ToHexString(password).ToLowerInvariant());
    }

    [Fact]
    public void AllThree_AlsoRebuild()
    {
        Assert.Equal(Vectors.Hex("7d7702dea6497acb"), ScHsmPasswordShares.Combine(Prime, [S3, S1, S2]));
    }

    [Fact]
    public void ThresholdShareFile_DecryptsWithRebuiltPassword()
    {
        var password = ScHsmPasswordShares.Combine(Prime, [S2, S3]);
        var file = ScHsmShareFile.Read(Vectors.Read("dkek-share-threshold.pbe"));
        Assert.Equal(Vectors.Hex("9a7e1730584c45e7"), file.Salt.ToArray());
        using var share = file.Decrypt(password);
        Assert.Equal("e5d17f37c64896520115dd3b6eac65ed792089b9de7e1ea1472e97144af6c569",
            Convert.ToHexString(share.Span).ToLowerInvariant());
    }

    [Fact]
    public void Format_MatchesToolOutput()
    {
        Assert.Equal("01:06:f2:71:fc:a5:05:4b", S2.ValueText);
        Assert.Equal(Prime, ScHsmPasswordShares.FormatHex(ScHsmPasswordShares.ParseHex("C01BAAF34B97A703")));
        Assert.Throws<ScHsmFormatException>(() => ScHsmPasswordShares.ParseHex("c0:1"));
        Assert.Throws<ScHsmFormatException>(() => ScHsmPasswordShares.ParseHex("zz"));
    }

    [Fact]
    public void VectorPrime_IsPrime_AndMillerRabinRejectsComposites()
    {
        var p = PicoHsm.Common.UnsignedBytes.ToBigInteger(ScHsmPasswordShares.ParseHex(Prime));
        Assert.True(ScHsmPasswordShares.IsProbablePrime(p));
        Assert.False(ScHsmPasswordShares.IsProbablePrime(p * 3));
        Assert.False(ScHsmPasswordShares.IsProbablePrime(new System.Numerics.BigInteger(3215031751))); // strong pseudoprime to bases 2,3,5,7
        Assert.True(ScHsmPasswordShares.IsProbablePrime(System.Numerics.BigInteger.Parse("18446744073709551557"))); // largest 64-bit prime
    }

    [Fact]
    public void Split_ThenAnyThresholdSubset_Rebuilds()
    {
        for (int round = 0; round < 20; round++)
        {
            var password = ScHsmPasswordShares.NewPassword();
            Assert.True(password[0] < 0x80);
            var split = ScHsmPasswordShares.Split(password, 3, 5);
            Assert.Equal(8, split.Prime.Length);
            Assert.True(split.Prime[0] >= 0x80);
            Assert.Equal(5, split.Shares.Count);
            Assert.Equal([1, 2, 3, 4, 5], split.Shares.Select(s => s.Id));
            Assert.Equal(password, ScHsmPasswordShares.Combine(split.Prime, [split.Shares[4], split.Shares[0], split.Shares[2]]));
            Assert.Equal(password, ScHsmPasswordShares.Combine(split.PrimeText, [split.Shares[1], split.Shares[3], split.Shares[2]]));
            // Two of a 3-threshold split give something else (with overwhelming probability).
            Assert.NotEqual(password, ScHsmPasswordShares.Combine(split.Prime, [split.Shares[0], split.Shares[1]]));
        }
    }

    [Fact]
    public void Split_ValidatesArguments()
    {
        Assert.Throws<ArgumentException>(() => ScHsmPasswordShares.Split(new byte[7], 2, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => ScHsmPasswordShares.Split(new byte[8], 1, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => ScHsmPasswordShares.Split(new byte[8], 2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => ScHsmPasswordShares.Split(new byte[8], 4, 3));
        Assert.Throws<ArgumentException>(() => ScHsmPasswordShares.Combine(Prime, [S1, S1]));
    }
}
