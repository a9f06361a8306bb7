using PicoHsm.Common;
using PicoHsm.Backup;
using PicoHsm.Core.Tests.Operations;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Operations;
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
    public void Wrap_AfterTheFirstKey_IsOneCWrapKey_OneCSign_NoSearch_AndTwoAttributeReads()
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
            int wraps = 0, finds = 0, signInits = 0, signs = 0;
            int reads = _hsm.CountCalls("C_GetAttributeValue", () =>
                finds = _hsm.CountCalls("C_FindObjectsInit", () =>
                    wraps = _hsm.CountCalls("C_WrapKey", () =>
                        signInits = _hsm.CountCalls("C_SignInit", () =>
                            signs = _hsm.CountCalls("C_Sign", () => b.Wrap(k))))));
            Assert.Equal(1, wraps);   // was 2: Pkcs11Interop asks the length first
            Assert.Equal(1, signInits); // the HMAC tag under the run's MAC key
            Assert.Equal(1, signs);   // was 2: Pkcs11Interop asks the tag's length first
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
    public void BackupPicoHsm_ScansTheTokensObjectsOnce_TheListingsPassFindsTheDkek()
    {
        // Before: three C_FindObjects passes over every object (the DKEK's record, the DKEK's key by id, the
        // listing), each ~22 ms on SoftHSM2 at 1,000 keys, whatever the template; the C limit makes two.
        using var s = SoftHsmTokens.Connect("core-count", module: SoftHsmTokens.Spy);
        var b = WithDkek(s);
        b.GenerateKey(KeyKind.Aes, 256, null, NewId(), "scale-backup", extractable: true);
        string dir = Path.Combine(Path.GetTempPath(), "picohsm-scan-once-" + Guid.NewGuid().ToString("n")[..8]);
        try
        {
            PicoHsmBackupSet? set = null;
            int finds = _hsm.CountCalls("C_FindObjectsInit", () => set = DeviceBackupService.Backup(b, dir, false, new BackupHost()));
            Assert.NotNull(set);
            Assert.Contains(set!.Backups, k => k.Label == "scale-backup");
            Assert.All(set.Backups, k => Assert.Equal(b.GetDkek().KeyCheckValue, k.Kcv));
            Assert.Equal(1, finds);
            // the DKEK described after a listing, by itself: proven by the token's wrap, no search
            b.ListKeys();
            PicoDkek? d = null;
            Assert.Equal(0, _hsm.CountCalls("C_FindObjectsInit", () => d = b.GetDkek()));
            Assert.Equal(("Verified", true), (d!.Status, d.KcvVerified));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [SoftHsmFact]
    public void ADkekReplacedAfterTheListing_IsFoundAgain_AndTheExportIsWrappedUnderTheNewOne()
    {
        // What the listing's pass found is tried before a search, so it must not outlive the objects it names.
        using var s = SoftHsmTokens.Connect("core-listed-dkek");
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        b.RemoveDkek();
        using (var first = SoftHsmTokens.Dkek(41)) b.ImportDkek(first, "DKEK", DkekId);
        string oldKcv = b.GetDkek().KeyCheckValue!;
        byte[] id = NewId();
        b.GenerateKey(KeyKind.Aes, 256, null, id, "listed-dkek", extractable: true);
        var key = b.ListKeys().Single(k => k.Label == "listed-dkek");

        using (var other = SoftHsmTokens.Connect("core-listed-dkek"))
        {
            var ob = Assert.IsType<Pkcs11DkekBackend>(other.Device);
            Assert.True(ob.RemoveDkek());
            using var second = SoftHsmTokens.Dkek(42);
            ob.ImportDkek(second, "DKEK", DkekId);
        }
        var now = b.GetDkek();
        Assert.Equal(("Verified", true), (now.Status, now.KcvVerified));
        Assert.NotEqual(oldKcv, now.KeyCheckValue);
        var file = b.Wrap(key);
        Assert.Equal(now.KeyCheckValue, KeyCheckValue.ToHex(file.WrappingKeyKcv));

        // and with the listing taken again before the export, the same
        b.ListKeys();
        using (var other = SoftHsmTokens.Connect("core-listed-dkek"))
        {
            var ob = Assert.IsType<Pkcs11DkekBackend>(other.Device);
            Assert.True(ob.RemoveDkek());
            using var third = SoftHsmTokens.Dkek(43);
            ob.ImportDkek(third, "DKEK", DkekId);
        }
        file = b.Wrap(key);
        Assert.Equal(b.GetDkek().KeyCheckValue, KeyCheckValue.ToHex(file.WrappingKeyKcv));
        Assert.NotEqual(now.KeyCheckValue, b.GetDkek().KeyCheckValue);
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
    public void ListKeys_IsOneSearch_AndRecognisesTheDkekFromIt()
    {
        using var s = SoftHsmTokens.Connect("core-count", module: SoftHsmTokens.Spy);
        var b = WithDkek(s);
        b.GenerateKey(KeyKind.Aes, 256, null, NewId(), "scale-list", extractable: true);
        b.GenerateKey(KeyKind.Ec, 256, "P-256", NewId(), "scale-list", extractable: true);
        List<PicoKey> keys = new();
        int finds = _hsm.CountCalls("C_FindObjectsInit", () => keys = b.ListKeys());
        Assert.Equal(1, finds); // was 3: every object, then the DKEK's record and its key searched again
        Assert.DoesNotContain(keys, k => k.Id == Convert.ToHexString(DkekId).ToLowerInvariant()); // the DKEK is never a key
        Assert.Contains(keys, k => k.Label == "scale-list" && k.KeyType == KeyKind.Ec && k.HasPublicKey && k.PublicKeyFingerprint is not null);
        Assert.Contains(keys, k => k.Label == "scale-list" && k.KeyType == KeyKind.Aes);
        Assert.Equal(Convert.ToHexString(DkekId).ToLowerInvariant(), b.GetDkek().Id); // still Get-PicoDkek's
    }

    [SoftHsmFact(needsSpy: true)]
    public void ListKeysByLabel_OfAPrivateKey_IsTwoSearches_WithItsPublicKey()
    {
        using var s = SoftHsmTokens.Connect("core-count", module: SoftHsmTokens.Spy);
        var b = WithDkek(s);
        string label = "scale-priv-" + Guid.NewGuid().ToString("n")[..6];
        b.GenerateKey(KeyKind.Ec, 256, "P-256", NewId(), label, extractable: true);
        List<PicoKey> keys = new();
        int finds = _hsm.CountCalls("C_FindObjectsInit", () => keys = b.ListKeysByLabel(label));
        Assert.Equal(2, finds); // was 3: the label, then the public key and the certificate by id apart
        var k = Assert.Single(keys);
        Assert.True(k.HasPublicKey);
        Assert.NotNull(k.PublicKeyFingerprint);
        Assert.Equal(b.ListKeys().Single(x => x.Label == label) with { PublicKeyInfo = null }, k with { PublicKeyInfo = null });
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

    [SoftHsmFact(needsSpy: true)]
    public void PlanRestore_AfterAnExport_UsesTheDkekTheExportProved_OneCacheForBoth()
    {
        using var s = SoftHsmTokens.Connect("core-count", module: SoftHsmTokens.Spy);
        var b = WithDkek(s);
        var key = b.GenerateKey(KeyKind.Aes, 256, null, NewId(), "scale-one-cache", extractable: true);
        var file = b.Wrap(key); // proves the DKEK (the store's one cache)
        int wraps = 0;
        int finds = _hsm.CountCalls("C_FindObjectsInit", () =>
            wraps = _hsm.CountCalls("C_WrapKey", () => Assert.Equal(RestoreAction.Create, b.Plan(file, NewId(), null, force: false).Action)));
        Assert.Equal(1, finds); // the target id's occupants only; was 3: the restorer kept its own proof and found the DKEK again
        Assert.Equal(0, wraps); // was 1: the DKEK the export proved was proven again by the restore's plan
        // and the other way round: an export after a plan checks the DKEK by its handle only
        var other = b.GenerateKey(KeyKind.Aes, 128, null, NewId(), "scale-one-cache-2", extractable: true);
        b.ListKeys(); // a listing starts afresh: the proof is forgotten
        b.Plan(file, NewId(), null, force: false); // proves it again
        int probes = _hsm.CountCalls("C_CreateObject", () => b.Wrap(other));
        Assert.Equal(0, probes); // was 1: the wrapper kept its own proof, and proved the DKEK again with a probe key
    }

    [SoftHsmFact]
    public void Dispose_ReleasesTheExportReadersAndTheHandleCheck()
    {
        var s = SoftHsmTokens.Connect("core-count");
        var b = WithDkek(s);
        var key = b.GenerateKey(KeyKind.Aes, 256, null, NewId(), "scale-dispose", extractable: true);
        b.Wrap(key); // makes the readers
        Assert.False(b.ReadersReleased);
        s.Dispose();
        Assert.True(b.ReadersReleased); // was never: the two readers of the wrapper lived as long as the process
    }
}
