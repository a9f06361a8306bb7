using Net.Pkcs11Interop.Common;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;

namespace PicoHsm.Core.Tests.Devices.Pkcs11;

[Collection(SoftHsmCollection.Name)]
public sealed class Pkcs11KeyStoreTests
{
    public Pkcs11KeyStoreTests(SoftHsmTokens hsm) => _ = hsm;

    [SoftHsmFact]
    public void Describe_ByHandle_AgreesWithTheListing_ForEachKind()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        var p11 = b.Connection.Session;
        var made = new[]
        {
            b.GenerateKey(KeyKind.Rsa, 2048, null, Guid.NewGuid().ToByteArray()[..5], "rsa", extractable: true),
            b.GenerateKey(KeyKind.Ec, 384, "P-384", Guid.NewGuid().ToByteArray()[..5], "ec", extractable: false),
            b.GenerateKey(KeyKind.GenericSecret, 256, null, Guid.NewGuid().ToByteArray()[..5], "hmac", extractable: true),
        };
        var listed = List(s.Device.Context, p11);
        foreach (var k in made)
        {
            var cko = k.Class == "SecretKey" ? CKO.CKO_SECRET_KEY : CKO.CKO_PRIVATE_KEY;
            var handle = Assert.Single(Find(p11, (CKA.CKA_CLASS, cko), (CKA.CKA_ID, Convert.FromHexString(k.Id))));
            var described = Describe(s.Device.Context, p11, handle, secret: k.Class == "SecretKey");
            var inList = Assert.Single(listed, l => l.Id == k.Id);
            Assert.Equal(inList with { PublicKeyInfo = null }, described with { PublicKeyInfo = null });
            Assert.Equal(inList.PublicKeyInfo, described.PublicKeyInfo);
            Assert.Equal(k with { PublicKeyInfo = null }, described with { PublicKeyInfo = null });
        }
        var rsa = listed.Single(l => l.Id == made[0].Id);
        Assert.Equal(2048, rsa.Size);
        Assert.True(rsa.HasPublicKey);
        Assert.NotNull(rsa.PublicKeyFingerprint);
        var ec = listed.Single(l => l.Id == made[1].Id);
        Assert.Equal("P-384", ec.Curve);
        Assert.False(ec.Exportable);
        Assert.Equal("CKA_EXTRACTABLE is false", ec.ExportBlockedReason);
        Assert.Equal(256, listed.Single(l => l.Id == made[2].Id).Size);
        // The catalogue is ordered by id, then class.
        Assert.Equal(listed.Select(l => l.Id).OrderBy(i => i, StringComparer.Ordinal), listed.Select(l => l.Id));
    }

    [Theory]
    [InlineData(new byte[] { 0x00, 0x80 }, 8)]
    [InlineData(new byte[] { 0x01, 0x00 }, 9)]
    [InlineData(new byte[] { 0x00, 0x00 }, 0)]
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF }, 24)]
    public void BitLength_IgnoresLeadingZeroBytes(byte[] bigEndian, int bits) => Assert.Equal(bits, BitLength(bigEndian));

    [Fact]
    public void IdHex_IsLowerCase_AndEmptyForNoId()
    {
        Assert.Equal("0aff", IdHex(new byte[] { 0x0A, 0xFF }));
        Assert.Equal("", IdHex(null));
    }
}
