using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Session;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;

namespace PicoHsm.Core.Tests.Devices.Pkcs11;

/// <summary>
/// Issue 8: the restore pre-flight on a generic token. The DKEK's id is never restored onto (even with
/// -Force), no restore makes a second object with an id another object holds, the very key already at
/// its id is AlreadyPresent (a rerun after a crash completes), and a restored AES key keeps its size.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class Pkcs11RestorePlanTests
{
    private static readonly byte[] DkekId = { 0xD1, 0xE0 };
    private readonly SoftHsmTokens _hsm;

    public Pkcs11RestorePlanTests(SoftHsmTokens hsm) => _hsm = hsm;

    private static Pkcs11DkekBackend WithDkek(PicoHsmSession s, byte seed = 1)
    {
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        using var dkek = SoftHsmTokens.Dkek(seed);
        b.ImportDkek(dkek, "DKEK", DkekId);
        return b;
    }

    private static byte[] NewId() => Guid.NewGuid().ToByteArray()[..6];

    private static int ObjectsWithId(Pkcs11DkekBackend b, byte[] id) => Find(b.Connection.Session, (CKA.CKA_ID, id)).Count;

    [SoftHsmFact]
    public void RestoreOntoTheDkeksId_IsRefusedEvenWithForce_NamingTheDkek_AndTheDkekStays()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        var key = b.GenerateKey(KeyKind.Aes, 256, null, NewId(), "would shadow the DKEK", extractable: true);
        var file = b.Wrap(key);
        string kcv = KeyCheckValue.ToHex(KeyCheckValue.Compute(SoftHsmTokens.Dkek(1).Span));

        foreach (bool force in new[] { false, true })
        {
            var plan = b.Plan(file, DkekId, null, force);
            Assert.Equal(RestoreAction.Refused, plan.Action);
            var r = Assert.Single(plan.Refusals);
            Assert.Equal("IdIsDkek", r.Reason);
            Assert.Equal(PicoErrorKind.ResourceExists, r.Kind);
            Assert.Contains("DKEK", r.Message);
            Assert.Contains(kcv, r.Message);
            Assert.Contains("KCV record", r.Message);
            Assert.Contains("not even with -Force", r.Message);
            var e = Assert.Throws<PicoHsmException>(() => b.Restore(file, DkekId, null, force));
            Assert.Equal("IdIsDkek", e.Reason);
        }
        Assert.Equal(1, ObjectsWithId(b, DkekId));
        var dkek = b.GetDkek();
        Assert.True(dkek.KcvVerified);
        Assert.Equal(kcv, dkek.KeyCheckValue);
    }

    [SoftHsmFact]
    public void AnIdHeldByAnObjectOfAnotherClass_IsRefusedEvenWithForce_SoNoTwoObjectsShareIt()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        var ec = b.GenerateKey(KeyKind.Ec, 256, "P-256", NewId(), "ec", extractable: true);
        var aes = b.GenerateKey(KeyKind.Aes, 128, null, NewId(), "aes", extractable: true);
        var ecFile = b.Wrap(ec);
        var aesFile = b.Wrap(aes);
        byte[] aesId = Convert.FromHexString(aes.Id);
        byte[] ecId = Convert.FromHexString(ec.Id);

        // A private key onto a secret key's id, and a secret key onto a key pair's id: refused with -Force too.
        foreach (var (file, id) in new[] { (ecFile, aesId), (aesFile, ecId) })
        {
            int before = ObjectsWithId(b, id);
            var plan = b.Plan(file, id, null, force: true);
            var r = Assert.Single(plan.Refusals);
            Assert.Equal("IdInUse", r.Reason);
            Assert.Contains("-Force replaces only a key of the backup's class", r.Message);
            Assert.Throws<PicoHsmException>(() => b.Restore(file, id, null, force: true));
            Assert.Equal(before, ObjectsWithId(b, id));
        }

        // A lone public key (its private key gone) at the id: refused without -Force.
        byte[] lone = NewId();
        var pair = b.GenerateKey(KeyKind.Ec, 256, "P-256", lone, "pair", extractable: true);
        Assert.Equal(RestoreAction.Create, b.Plan(ecFile, NewId(), null, false).Action);
        var priv = Find(b.Connection.Session, (CKA.CKA_CLASS, CKO.CKO_PRIVATE_KEY), (CKA.CKA_ID, lone));
        b.Connection.Session.DestroyObject(Assert.Single(priv));
        var loneRefusal = Assert.Single(b.Plan(ecFile, lone, null, false).Refusals);
        Assert.Equal("IdInUse", loneRefusal.Reason);
        Assert.Contains("public key", loneRefusal.Message);
        Assert.Equal(RestoreAction.Replace, b.Plan(ecFile, lone, null, true).Action);
        Assert.NotNull(pair);
    }

    [SoftHsmTheory]
    [InlineData(KeyKind.Ec, 384, "P-384")]
    [InlineData(KeyKind.Rsa, 2048, null)]
    [InlineData(KeyKind.Aes, 256, null)]
    public void RestoringTheSameKeyAgain_IsAlreadyPresent_NotAnError_AndChangesNothing(KeyKind kind, int size, string? curve)
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        var key = b.GenerateKey(kind, size, curve, NewId(), $"{kind} twice", extractable: true);
        var file = b.Wrap(key);
        byte[] target = NewId();
        var first = b.Restore(file, target, null, force: false);
        int objects = ObjectsWithId(b, target);

        foreach (bool force in new[] { false, true })
        {
            var plan = b.Plan(file, target, null, force);
            Assert.Equal(RestoreAction.AlreadyPresent, plan.Action);
            Assert.Null(plan.Completes);
            Assert.Equal(first.Id, plan.Existing!.Id);
            var again = b.Restore(file, target, null, force);
            Assert.Equal(first with { PublicKeyInfo = null }, again with { PublicKeyInfo = null });
            Assert.Equal(objects, ObjectsWithId(b, target));
        }

        // A key of the same class that is not the backup's key is not "present": it is occupied.
        var other = b.GenerateKey(kind, size, curve, NewId(), "another", extractable: true);
        Assert.Equal("IdInUse", Assert.Single(b.Plan(file, Convert.FromHexString(other.Id), null, false).Refusals).Reason);
    }

    [SoftHsmFact]
    public void AKeyAnInterruptedRestoreLeftWithoutItsPublicKey_IsCompletedByTheRerun()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        var key = b.GenerateKey(KeyKind.Rsa, 2048, null, NewId(), "half restored", extractable: true);
        var file = b.Wrap(key);
        byte[] target = NewId();
        b.Restore(file, target, null, force: false);
        var pub = Find(b.Connection.Session, (CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY), (CKA.CKA_ID, target));
        b.Connection.Session.DestroyObject(Assert.Single(pub)); // as a crash between C_UnwrapKey and C_CreateObject leaves it

        var plan = b.Plan(file, target, null, force: false);
        Assert.Equal(RestoreAction.AlreadyPresent, plan.Action);
        Assert.Equal("its public key", plan.Completes);
        var k = b.Restore(file, target, null, force: false);
        Assert.True(k.HasPublicKey);
        Assert.Equal(key.PublicKeyFingerprint, k.PublicKeyFingerprint);
        Assert.Single(Find(b.Connection.Session, (CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY), (CKA.CKA_ID, target)));
        Assert.Null(b.Plan(file, target, null, false).Completes);
    }

    [SoftHsmFact]
    public void ARestoredAes256Key_IsListedAsAes256()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        var key = b.GenerateKey(KeyKind.Aes, 256, null, NewId(), "aes-256 to restore", extractable: true);
        var file = b.Wrap(key);
        int secrets = Find(b.Connection.Session, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), (CKA.CKA_TOKEN, true)).Count;
        var restored = b.Restore(file, NewId(), null, force: false);
        // The measuring leaves nothing behind: one secret key more on the token, the restored one (the
        // backup run's MAC key is a session object, gone at the next listing).
        Assert.Equal(secrets + 1, Find(b.Connection.Session, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), (CKA.CKA_TOKEN, true)).Count);
        Assert.Equal(256, restored.Size);
        var listed = Assert.Single(b.ListKeys(), k => k.Id == restored.Id);
        Assert.Equal(256, listed.Size);
        Assert.Equal(secrets + 1, Find(b.Connection.Session, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), (CKA.CKA_TOKEN, true)).Count);
        // SoftHSM2 refuses CKA_VALUE_LEN at unwrap and after it (CKR_ATTRIBUTE_READ_ONLY) and reports 0:
        // the listing measures the key (its RFC 3394 wrap is the key's length + 8 bytes).
        var h = Assert.Single(Find(b.Connection.Session, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), (CKA.CKA_ID, Convert.FromHexString(restored.Id))));
        Assert.Equal(256, Describe(b.Context, b.Connection.Session, h, secret: true).Size);
    }

    [SoftHsmFact]
    public void TestOfABackupWhoseIdAnotherKeyHolds_ReportsTheRefusal_AndTheSameKeyPasses()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        var key = b.GenerateKey(KeyKind.Ec, 256, "P-256", NewId(), "tested", extractable: true);
        string dir = Path.Combine(Path.GetTempPath(), "picohsm-plan-" + Guid.NewGuid().ToString("n")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            var backup = b.Export(key, Path.Combine(dir, "k.pkb"), overwrite: false);
            var same = b.Test(backup, restoreTest: false);
            Assert.True(same.Passed, string.Join(" ", same.Problems));

            // The id now holds another key (the original deleted, another made there).
            foreach (var h in Find(b.Connection.Session, (CKA.CKA_ID, Convert.FromHexString(key.Id)))) b.Connection.Session.DestroyObject(h);
            b.GenerateKey(KeyKind.Ec, 256, "P-256", Convert.FromHexString(key.Id), "newcomer", extractable: true);
            var r = b.Test(backup, restoreTest: true);
            Assert.False(r.Compatible);
            Assert.False(r.Passed);
            Assert.True(r.DkekMatch);
            Assert.True(r.Restorable); // the proof unwraps into a session object, not at the id
            Assert.Contains(r.Problems, p => p.Contains("already used") && p.Contains("newcomer"));
            Assert.Equal(b.PlanRestore(backup, new RestoreRequest()).Refusals.Select(x => x.Message), r.Problems);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [SoftHsmFact]
    public void CheckGenerate_RefusesTheDkeksIdAndAnOccupiedId()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        var r = Assert.Single(b.CheckGenerate(KeyKind.Aes, 256, null, DkekId));
        Assert.Equal("IdIsDkek", r.Reason);
        Assert.Contains("DKEK", r.Message);
        var e = Assert.Throws<PicoHsmException>(() => b.GenerateKey(KeyKind.Aes, 256, null, DkekId, "x", true));
        Assert.Equal("IdIsDkek", e.Reason);
        Assert.Equal(1, ObjectsWithId(b, DkekId));

        var k = b.GenerateKey(KeyKind.Ec, 256, "P-256", NewId(), "taken", extractable: true);
        var taken = Assert.Single(b.CheckGenerate(KeyKind.Aes, 256, null, Convert.FromHexString(k.Id)));
        Assert.Equal("IdInUse", taken.Reason);
        Assert.Contains("private key", taken.Message);
        Assert.Empty(b.CheckGenerate(KeyKind.Aes, 256, null, NewId()));
    }

    [SoftHsmFact(needsSpy: true)]
    public void ARestore_ProvesTheDkekOnce_NotTwice()
    {
        using var s = SoftHsmTokens.Connect("core-count", module: SoftHsmTokens.Spy);
        var b = WithDkek(s, seed: 3);
        // An EC key: a restored AES key on SoftHSM2 is measured by a wrap of its own (Pkcs11KeyStore).
        var file = b.Wrap(b.GenerateKey(KeyKind.Ec, 256, "P-256", NewId(), "counted", extractable: true));
        // The DKEK's probe is wrapped by the backend's first plan only (issue 9: it was once per plan,
        // and twice per restore before that); Restore plans once and acts on that plan, so a restore
        // after it wraps nothing at all.
        int plan = _hsm.CountCalls("C_WrapKey", () => b.Plan(file, NewId(), null, force: false));
        int restore = _hsm.CountCalls("C_WrapKey", () => b.Restore(file, NewId(), null, force: false));
        Assert.True(plan > 0, "the spy logged no C_WrapKey: the count proves nothing");
        Assert.Equal(0, restore);
    }
}
