using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Core.Tests.Devices.ScHsm.Backend;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Formats;

public sealed class ScHsmCardFilesTests
{
    [Fact]
    public void TokenInfo_Parsed_AndDefaultsWhenAbsent()
    {
        // EF 2F03 of the Pico HSM as traced (04-p11-login-info)
        byte[] ti = Convert.FromHexString("302F020106040800000000000000000C0D506F6C2048656E6172656A6F73800D536D61727443617264" + "2D48534D03020430");
        Assert.Equal(("Pol Henarejos", "SmartCard-HSM"), ScHsmCardFiles.ReadTokenInfo(ti));
        Assert.Equal(((string?)null, (string?)null), ScHsmCardFiles.ReadTokenInfo(null));
        Assert.Equal(((string?)null, (string?)null), ScHsmCardFiles.ReadTokenInfo([0x30, 0x05, 0x01]));
    }

    [Fact]
    public void WithKeyReference_ChangesOnlyTheKeyReference()
    {
        var prkd = ScHsmWrappedKeyFile.Read(VectorFiles.Read("rsa2048.wky")).PrivateKeyDescription!;
        var changed = ScHsmCardFiles.WithKeyReference(prkd, 200);
        var a = ScHsmKeyDescription.Parse(prkd);
        var b = ScHsmKeyDescription.Parse(changed);
        Assert.Equal(1, a.KeyReference);
        Assert.Equal(200, b.KeyReference);
        Assert.Equal(a.Label, b.Label);
        Assert.Equal(a.Id, b.Id);
        Assert.Equal(a.Usage, b.Usage);
        Assert.Equal(a.KeySizeBits, b.KeySizeBits);
        Assert.Equal(prkd.Length + 1, changed.Length); // 200 needs a leading zero byte
        Assert.Equal(prkd, ScHsmCardFiles.WithKeyReference(prkd, 1));
    }
}
