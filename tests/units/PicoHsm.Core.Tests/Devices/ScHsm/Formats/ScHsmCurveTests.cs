using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Formats;

public class ScHsmCurveTests
{
    [Fact]
    public void EveryKnownCurve_IsFoundByItsPrime()
    {
        foreach (var curve in ScHsmCurve.Known)
        {
            Assert.Same(curve, ScHsmCurve.FromPrime(curve.Prime));
            Assert.Same(curve, ScHsmCurve.FromPrime([0, .. curve.Prime]));
            Assert.Same(curve, ScHsmCurve.FromOid(curve.Oid));
        }
        Assert.Null(ScHsmCurve.FromPrime([0x01, 0x02]));
    }

    [Theory]
    [InlineData("P-256", "1.2.840.10045.3.1.7", true)]
    [InlineData("P-384", "1.3.132.0.34", true)]
    [InlineData("P-521", "1.3.132.0.35", true)]
    [InlineData("secp256k1", "1.3.132.0.10", true)]
    [InlineData("brainpoolP256r1", "1.3.36.3.3.2.8.1.1.7", false)]
    [InlineData("brainpoolP384r1", "1.3.36.3.3.2.8.1.1.11", false)]
    [InlineData("brainpoolP512r1", "1.3.36.3.3.2.8.1.1.13", false)]
    public void Curves_HaveOidAndFirmwareAEncoding(string name, string oid, bool omitsA)
    {
        var curve = ScHsmCurve.FromName(name)!;
        Assert.Equal(oid, curve.Oid);
        Assert.Equal(omitsA, curve.FirmwareOmitsA);
    }

    [Fact]
    public void Aliases_Resolve()
    {
        Assert.Equal("P-256", ScHsmCurve.FromName("prime256v1")!.Name);
        Assert.Equal("P-256", ScHsmCurve.FromName("secp256r1")!.Name);
        Assert.Equal("P-384", ScHsmCurve.FromName("nistP384")!.Name);
        Assert.Equal(66, ScHsmCurve.FromName("P-521")!.FieldSizeBytes);
    }
}
