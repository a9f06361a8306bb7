using Net.Pkcs11Interop.Common;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Session;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;

namespace PicoHsm.Core.Tests.Devices.Pkcs11;

[Collection(SoftHsmCollection.Name)]
public sealed class Pkcs11DkekBackendTests
{
    private static readonly byte[] DkekId = { 0xD1, 0xE0 };
    private readonly SoftHsmTokens _hsm;

    public Pkcs11DkekBackendTests(SoftHsmTokens hsm) => _hsm = hsm;

    private static Pkcs11DkekBackend Backend(PicoHsmSession s) => Assert.IsType<Pkcs11DkekBackend>(s.Device);

    /// <summary>The token's DKEK, imported by whichever test needs it first (the same DKEK every time).</summary>
    private static Pkcs11DkekBackend WithDkek(PicoHsmSession s, byte seed = 1)
    {
        var b = Backend(s);
        using var dkek = SoftHsmTokens.Dkek(seed);
        b.ImportDkek(dkek, "DKEK", DkekId);
        return b;
    }

    private static byte[] NewId() => Guid.NewGuid().ToByteArray()[..6];

    [SoftHsmFact]
    public void ImportDkek_MakesAWrapOnlySensitiveAes256Key_SameDkekIsANoOp_AnotherIsRefused()
    {
        using var s = SoftHsmTokens.Connect("core-dkek");
        var b = Backend(s);
        using var dkek = SoftHsmTokens.Dkek(7);
        string kcv = KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span));
        Assert.False(b.GetDkek().Present);

        Assert.True(b.ImportDkek(dkek, "the DKEK", DkekId));

        var p11 = b.Connection.Session;
        var keys = Find(p11, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), (CKA.CKA_ID, DkekId));
        var key = Assert.Single(keys);
        var a = Read(p11, key, new List<CKA>
        {
            CKA.CKA_KEY_TYPE, CKA.CKA_VALUE_LEN, CKA.CKA_SENSITIVE, CKA.CKA_EXTRACTABLE, CKA.CKA_WRAP, CKA.CKA_UNWRAP,
            CKA.CKA_ENCRYPT, CKA.CKA_DECRYPT, CKA.CKA_SIGN, CKA.CKA_VERIFY, CKA.CKA_DERIVE, CKA.CKA_TOKEN, CKA.CKA_PRIVATE, CKA.CKA_VALUE,
        });
        Assert.Equal((ulong)CKK.CKK_AES, a[CKA.CKA_KEY_TYPE]!.GetValueAsUlong());
        Assert.Equal(32UL, a[CKA.CKA_VALUE_LEN]!.GetValueAsUlong());
        Assert.True(a[CKA.CKA_SENSITIVE]!.GetValueAsBool());
        Assert.False(a[CKA.CKA_EXTRACTABLE]!.GetValueAsBool());
        Assert.Null(a[CKA.CKA_VALUE]); // sensitive: the token will not reveal it
        Assert.True(a[CKA.CKA_WRAP]!.GetValueAsBool());
        Assert.True(a[CKA.CKA_UNWRAP]!.GetValueAsBool());
        foreach (var use in new[] { CKA.CKA_ENCRYPT, CKA.CKA_DECRYPT, CKA.CKA_SIGN, CKA.CKA_VERIFY, CKA.CKA_DERIVE })
            Assert.False(a[use]!.GetValueAsBool(), $"{use} should be false on the DKEK");
        Assert.True(a[CKA.CKA_TOKEN]!.GetValueAsBool());
        Assert.True(a[CKA.CKA_PRIVATE]!.GetValueAsBool());
        Assert.Single(Find(p11, (CKA.CKA_CLASS, CKO.CKO_DATA), (CKA.CKA_APPLICATION, Pkcs11DkekBackend.ProofApplication)));

        var shown = b.GetDkek();
        Assert.True(shown.Present);
        Assert.True(shown.KcvVerified);
        Assert.Equal("Verified", shown.Status);
        Assert.Equal(kcv, shown.KeyCheckValue);
        Assert.Equal(IdHex(DkekId), shown.Id);

        // The same DKEK again: nothing changes, and the caller learns so.
        Assert.False(b.ImportDkek(dkek, "the DKEK", DkekId));
        Assert.Single(Find(p11, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY)));
        Assert.Single(Find(p11, (CKA.CKA_CLASS, CKO.CKO_DATA)));

        using var other = SoftHsmTokens.Dkek(8);
        var e = Assert.Throws<PicoHsmException>(() => b.ImportDkek(other, "another", new byte[] { 0x0D }));
        Assert.Equal(PicoErrorKind.ResourceExists, e.Kind);
        Assert.Equal("OtherDkekPresent", e.Reason);
        Assert.Contains(kcv, e.Message);
        Assert.Contains(KeyCheckValue.ToHex(KeyCheckValue.Compute(other.Span)), e.Message);
        Assert.Single(Find(p11, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY)));

        Assert.True(b.RemoveDkek());
        Assert.False(b.GetDkek().Present);
        Assert.Empty(Find(p11, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY)));
        Assert.Empty(Find(p11, (CKA.CKA_CLASS, CKO.CKO_DATA)));
        Assert.False(b.RemoveDkek());
    }

    [SoftHsmFact]
    public void ListKeys_LeavesOutTheDkek_AndListsTheOtherSecretKeys()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        byte[] id = NewId();
        var made = b.GenerateKey(KeyKind.Aes, 256, null, id, "an aes key", extractable: true);
        Assert.Equal(IdHex(id), made.Id);
        Assert.Equal(256, made.Size);

        var listed = b.ListKeys();
        Assert.DoesNotContain(listed, k => k.Id == IdHex(DkekId));
        var aes = Assert.Single(listed, k => k.Id == IdHex(id));
        Assert.Equal("SecretKey", aes.Class);
        Assert.Equal(KeyKind.Aes, aes.KeyType);
        Assert.Equal("an aes key", aes.Label);
    }

    [SoftHsmTheory]
    [InlineData(KeyKind.Ec, 256, "P-256")]
    [InlineData(KeyKind.Rsa, 2048, null)]
    public void Export_ThenRestoreUnderANewId_GivesAKeyWithTheSamePublicKey(KeyKind kind, int size, string? curve)
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        var key = b.GenerateKey(kind, size, curve, NewId(), $"{kind} to restore", extractable: true);
        Assert.NotNull(key.PublicKeyInfo);

        var file = b.Wrap(key);
        Assert.Equal(KeyCheckValue.Compute(SoftHsmTokens.Dkek(1).Span), file.WrappingKeyKcv);
        byte[] newId = NewId();
        var restored = b.Restore(file, newId, "restored copy", force: false);

        Assert.Equal(IdHex(newId), restored.Id);
        Assert.Equal("restored copy", restored.Label);
        Assert.Equal(kind, restored.KeyType);
        Assert.Equal(size, restored.Size);
        Assert.True(restored.HasPublicKey);
        Assert.Equal(key.PublicKeyInfo, restored.PublicKeyInfo);
        Assert.Equal(key.PublicKeyFingerprint, restored.PublicKeyFingerprint);
        Assert.True(restored.Sensitive);
        // What the restore returns is what a listing shows for that key.
        var listed = Assert.Single(b.ListKeys(), k => k.Id == restored.Id);
        Assert.Equal(listed with { PublicKeyInfo = null }, restored with { PublicKeyInfo = null });

        var (ok, detail) = b.RestoreTest(file);
        Assert.True(ok, detail);
    }

    [SoftHsmFact]
    public void PlanRestore_RefusesAnIdAnotherKeyHoldsWithoutForce_AndReplacesItWithForce()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        var key = b.GenerateKey(KeyKind.Aes, 128, null, NewId(), "backed up", extractable: true);
        var other = b.GenerateKey(KeyKind.Aes, 128, null, NewId(), "occupant", extractable: true);
        var file = b.Wrap(key);
        byte[] otherId = Convert.FromHexString(other.Id);

        var plan = b.Plan(file, otherId, null, force: false);
        Assert.Equal(RestoreAction.Refused, plan.Action);
        var only = Assert.Single(plan.Refusals);
        Assert.Equal("IdInUse", only.Reason);
        Assert.Contains($"Id {other.Id} is already used", only.Message);
        Assert.Contains("occupant", only.Message);
        Assert.Contains("-Force", only.Message);
        Assert.Contains("Import-PicoWrappedKey -Id", only.Message);

        Assert.Equal(RestoreAction.Replace, b.Plan(file, otherId, null, force: true).Action);
        Assert.Equal(RestoreAction.Create, b.Plan(file, NewId(), null, force: false).Action);

        int before = b.ListKeys().Count;
        var e = Assert.Throws<PicoHsmException>(() => b.Restore(file, otherId, null, force: false));
        Assert.Equal(PicoErrorKind.ResourceExists, e.Kind);
        Assert.Equal("IdInUse", e.Reason);
        Assert.Equal(before, b.ListKeys().Count);

        // With -Force the key is replaced: still one key at that id, and it is the backed-up one.
        var replaced = b.Restore(file, otherId, null, force: true);
        Assert.Equal(other.Id, replaced.Id);
        Assert.Equal(128, replaced.Size);
        Assert.Single(b.ListKeys(), k => k.Id == other.Id);
        Assert.Equal(RestoreAction.AlreadyPresent, b.Plan(file, otherId, null, force: false).Action);
    }

    [SoftHsmFact]
    public void Restore_OfABackupMadeUnderAnotherDkek_IsDkekMismatch()
    {
        PicoHsm.Backup.WrappedKeyFile file;
        using (var s = SoftHsmTokens.Connect("core-keys"))
        {
            var b = WithDkek(s);
            var key = b.GenerateKey(KeyKind.Aes, 256, null, NewId(), "under dkek 1", extractable: true);
            file = b.Wrap(key);
        }
        using var other = SoftHsmTokens.Connect("core-other-dkek");
        var ob = WithDkek(other, seed: 2);
        var plan = ob.Plan(file, null, null, force: false);
        Assert.True(plan.IsRefused);
        Assert.Contains(plan.Refusals, p => p.Reason == "DkekMismatch" && p.Message.Contains("under DKEK"));
        var e = Assert.Throws<PicoHsmException>(() => ob.Restore(file, null, null, force: false));
        Assert.Equal("DkekMismatch", e.Reason);
        Assert.Empty(ob.ListKeys());
    }

    [SoftHsmFact(needsSpy: true)]
    public void ListKeys_FindsTheDkekOncePerListing_NotOncePerKey()
    {
        using var s = SoftHsmTokens.Connect("core-count", module: SoftHsmTokens.Spy);
        var b = WithDkek(s, seed: 3);
        b.GenerateKey(KeyKind.Aes, 128, null, NewId(), "one", extractable: true);
        int few = _hsm.CountCalls("C_FindObjectsInit", () => b.ListKeys());
        for (int i = 0; i < 4; i++) b.GenerateKey(KeyKind.Aes, 128, null, NewId(), "more", extractable: true);
        int many = _hsm.CountCalls("C_FindObjectsInit", () => b.ListKeys());
        Assert.True(few > 0, "the spy logged no C_FindObjectsInit: the count proves nothing");
        Assert.Equal(few, many);
    }

    [SoftHsmFact(needsSpy: true)]
    public void Restore_And_Generate_DescribeTheNewKeyByHandle_NotByAListing_AndTheMechanismsAreAskedOnce()
    {
        using var s = SoftHsmTokens.Connect("core-count", module: SoftHsmTokens.Spy);
        var b = WithDkek(s, seed: 3);
        var key = b.GenerateKey(KeyKind.Aes, 128, null, NewId(), "source", extractable: true);
        var file = b.Wrap(key);
        b.Plan(file, NewId(), null, force: false); // the backend's first plan proves the DKEK (once per backend, issue 9)

        int restoreFew = _hsm.CountCalls("C_GetAttributeValue", () => b.Restore(file, NewId(), null, force: false));
        int generateFew = _hsm.CountCalls("C_GetAttributeValue", () => b.GenerateKey(KeyKind.Aes, 128, null, NewId(), "g", extractable: true));
        for (int i = 0; i < 5; i++) b.GenerateKey(KeyKind.Aes, 128, null, NewId(), "filler", extractable: true);
        int mechanismQueries = 0;
        int restoreMany = _hsm.CountCalls("C_GetAttributeValue", () =>
            mechanismQueries = _hsm.CountCalls("C_GetMechanismList", () => b.Restore(file, NewId(), null, force: false)));
        int generateMany = _hsm.CountCalls("C_GetAttributeValue", () => b.GenerateKey(KeyKind.Aes, 128, null, NewId(), "g", extractable: true));

        Assert.True(restoreFew > 0 && generateFew > 0, "the spy logged no C_GetAttributeValue: the count proves nothing");
        Assert.Equal(restoreFew, restoreMany);
        Assert.Equal(generateFew, generateMany);
        Assert.Equal(0, mechanismQueries);
        Assert.Equal(1, b.Mechanisms.ListQueries);
    }
}
