using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Core.Tests.Devices.Pkcs11;

/// <summary>
/// PKCS#11 calls per key of a backup, a restore and a label search (issue 9), counted with
/// pkcs11-spy: what a key costs must not include a second C_WrapKey, a scan of the token, or a
/// DKEK lookup, and a search by label must not read every object. Counts, never timings.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class Pkcs11ScaleCallTests
{
    private static readonly byte[] DkekId = { 0xD1, 0xE0 };
    private readonly SoftHsmTokens _hsm;

    public Pkcs11ScaleCallTests(SoftHsmTokens hsm) => _hsm = hsm;

    private static Pkcs11DkekBackend WithDkek(PicoHsmSession s)
    {
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        using var dkek = SoftHsmTokens.Dkek(3); // the DKEK the other tests of core-count import
        b.ImportDkek(dkek, "DKEK", DkekId);
        return b;
    }

    private static byte[] NewId() => Guid.NewGuid().ToByteArray()[..6];

    [SoftHsmFact(needsSpy: true)]
    public void Wrap_AfterTheFirstKey_IsOneCWrapKey_NoSearch_AndTwoAttributeReads()
    {
        using var s = SoftHsmTokens.Connect("core-count", module: SoftHsmTokens.Spy);
        var b = WithDkek(s);
        b.GenerateKey(KeyKind.Aes, 256, null, NewId(), "scale-a", extractable: true);
        b.GenerateKey(KeyKind.Ec, 256, "P-256", NewId(), "scale-b", extractable: true);
        b.GenerateKey(KeyKind.Aes, 128, null, NewId(), "scale-c", extractable: true);
        var keys = b.ListKeys().FindAll(k => k.Label is "scale-a" or "scale-b" or "scale-c");
        Assert.Equal(3, keys.Count);
        b.Wrap(keys[0]); // the run's first key: DKEK proof, MAC key, catalogue

        foreach (var k in keys.GetRange(1, 2))
        {
            int wraps = 0, finds = 0;
            int reads = _hsm.CountCalls("C_GetAttributeValue", () =>
                finds = _hsm.CountCalls("C_FindObjectsInit", () =>
                    wraps = _hsm.CountCalls("C_WrapKey", () => b.Wrap(k))));
            Assert.Equal(1, wraps);   // was 2: Pkcs11Interop asks the length first
            Assert.Equal(0, finds);   // the key and its certificate come from the run's catalogue
            Assert.True(reads is > 0 and <= 2, $"{reads} C_GetAttributeValue for one key (was 6: the DKEK, the key's handle and its usage, each asked twice)");
        }
        // What one call wrapped unwraps again: the restored key is the very key (the restore proves a
        // secret key the same by wrapping it and comparing the bytes).
        var aes = keys.Find(k => k.Label == "scale-c")!;
        var file = b.Wrap(aes);
        var restored = b.Restore(file, NewId(), "scale-c-again", force: false);
        Assert.Equal(KeyKind.Aes, restored.KeyType);
        Assert.Equal(RestoreAction.AlreadyPresent, b.Plan(file, Convert.FromHexString(restored.Id), null, force: false).Action);
    }

    [SoftHsmFact(needsSpy: true)]
    public void ListKeysByLabel_ReadsTheKeysOfThatLabel_NotEveryObject_AndDescribesThemAsTheListing()
    {
        using var s = SoftHsmTokens.Connect("core-count", module: SoftHsmTokens.Spy);
        var b = WithDkek(s);
        string label = "scale-label-" + Guid.NewGuid().ToString("n")[..6];
        b.GenerateKey(KeyKind.Ec, 256, "P-256", NewId(), label, extractable: true);
        b.GenerateKey(KeyKind.Aes, 256, null, NewId(), label, extractable: true);
        int few = _hsm.CountCalls("C_GetAttributeValue", () => b.ListKeysByLabel(label));
        for (int i = 0; i < 6; i++) b.GenerateKey(KeyKind.Aes, 128, null, NewId(), "scale-filler", extractable: true);
        int many = _hsm.CountCalls("C_GetAttributeValue", () => b.ListKeysByLabel(label));
        Assert.True(few > 0, "the spy logged no C_GetAttributeValue: the count proves nothing");
        Assert.Equal(few, many);

        var byLabel = b.ListKeysByLabel(label);
        var listed = b.ListKeys().FindAll(k => k.Label == label);
        Assert.Equal(2, byLabel.Count);
        Assert.Equal(listed.Count, byLabel.Count);
        for (int i = 0; i < listed.Count; i++)
        {
            Assert.Equal(listed[i] with { PublicKeyInfo = null }, byLabel[i] with { PublicKeyInfo = null });
            Assert.Equal(listed[i].PublicKeyInfo, byLabel[i].PublicKeyInfo);
        }
        Assert.Empty(b.ListKeysByLabel("DKEK")); // the DKEK is never a key
    }

    [SoftHsmFact(needsSpy: true)]
    public void PlanRestore_AfterTheFirst_DoesNotLookForOrProveTheDkekAgain()
    {
        using var s = SoftHsmTokens.Connect("core-count", module: SoftHsmTokens.Spy);
        var b = WithDkek(s);
        var key = b.GenerateKey(KeyKind.Aes, 256, null, NewId(), "scale-restore", extractable: true);
        var file = b.Wrap(key);
        b.Plan(file, NewId(), null, force: false); // proves the DKEK
        int wraps = 0;
        int finds = _hsm.CountCalls("C_FindObjectsInit", () =>
            wraps = _hsm.CountCalls("C_WrapKey", () => Assert.Equal(RestoreAction.Create, b.Plan(file, NewId(), null, force: false).Action)));
        Assert.Equal(1, finds); // the target id's occupants; was 3 (the DKEK's record and key found again)
        Assert.Equal(0, wraps); // was 1: the DKEK proven again by wrapping the probe key
        var restored = b.Restore(file, NewId(), "scale-restored", force: false);
        Assert.Equal(key.KeyType, restored.KeyType);
    }
}
