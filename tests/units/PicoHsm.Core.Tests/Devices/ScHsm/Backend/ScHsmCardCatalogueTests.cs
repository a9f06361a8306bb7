using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

public sealed class ScHsmCardCatalogueTests : CardKeyTestBase
{
    [Fact]
    public void ListKeys_FromTheCardAlone()
    {
        using var h = CardHarness.WithVectorDkek();
        h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(KeyReference: 1));
        h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(KeyReference: 2));
        h.Backend.Restore(VectorFiles.Backup("aes256.wky"), new RestoreRequest(KeyReference: 4));
        var keys = h.Backend.ListKeys().OrderBy(k => k.KeyReference).ToList();
        Assert.Equal(new int?[] { 1, 2, 4 }, keys.Select(k => k.KeyReference).ToArray());
        Assert.Equal(new[] { "01", "02" }, keys.Take(2).Select(k => k.Id).ToArray()); // lower-case hex CKA_ID, as PKCS#11
        Assert.Equal(KeyKind.Rsa, keys[0].KeyType);
        Assert.Equal(2048, keys[0].Size);
        Assert.Equal(PublicKeyInfo.Fingerprint(VectorFiles.Read("rsa2048.pub.der")), keys[0].PublicKeyFingerprint);
        Assert.Equal(VectorFiles.Read("rsa2048.pub.der"), keys[0].PublicKeyInfo);
        Assert.Equal(VectorFiles.Read("ec256.pub.der"), keys[1].PublicKeyInfo);
        Assert.Equal("SecretKey", keys[2].Class);
        Assert.All(keys, k => Assert.True(k.Exportable));
        Assert.All(keys, k => Assert.Equal(0, k.KeyDomain));
        Assert.DoesNotContain(keys, k => k.KeyReference == 0); // never the device key
    }

    [Fact]
    public void ListKeys_WithoutCompleteDkek_KeysAreNotExportable_WithReason()
    {
        using var h = CardHarness.Create(shares: 2);
        GenerateEc(h, 3);
        var k = Assert.Single(h.Backend.ListKeys());
        Assert.False(k.Exportable);
        Assert.Equal("no complete DKEK in the key domain", k.ExportBlockedReason);
        Assert.Equal(KeyKind.Ec, k.KeyType);
        Assert.NotNull(k.PublicKeyFingerprint);
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Export(k, Path.Combine(_dir, "x.wky"), false));
        Assert.Equal("NoDkek", ex.Reason);
        Assert.False(File.Exists(Path.Combine(_dir, "x.wky")));
    }
}
