using System.Runtime.InteropServices;
using Net.Pkcs11Interop.Common;
using PicoHsm.Common;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Session;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;
using Stage = PicoHsm.Devices.Pkcs11.Pkcs11SecretObjectCreator.BufferStage;

namespace PicoHsm.Core.Tests.Devices.Pkcs11;

/// <summary>
/// The DKEK object is created by our own C_CreateObject (not Pkcs11Interop's, which frees an unzeroed
/// copy of CKA_VALUE): same template as before, and the unmanaged buffer handed to the module holds the
/// DKEK during the call and zeros after it, read back through the creator's observer before the free.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class Pkcs11SecretObjectCreatorTests
{
    private const string Label = "core-secret-create";
    private readonly SoftHsmTokens _hsm;

    public Pkcs11SecretObjectCreatorTests(SoftHsmTokens hsm) => _hsm = hsm;

    /// <summary>Each stage the observer saw, with a copy of the secret's buffer at that moment.</summary>
    private static (List<(Stage Stage, byte[] Bytes)> Seen, IDisposable Scope) Watch()
    {
        var seen = new List<(Stage, byte[])>();
        var scope = Pkcs11SecretObjectCreator.Observe((stage, p, n) =>
        {
            var copy = new byte[n];
            Marshal.Copy(p, copy, 0, n);
            seen.Add((stage, copy));
        });
        return (seen, scope);
    }

    [SoftHsmFact]
    public void ImportDkek_CreatesTheKeyThroughOurCall_WithTheTemplate_AndZeroesTheValueBufferBeforeFree()
    {
        using var s = SoftHsmTokens.Connect(Label);
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        using var dkek = SoftHsmTokens.Dkek(42);
        byte[] expected = dkek.Span.ToArray();
        byte[] id = { 0x5E, 0xC7 };
        var (seen, scope) = Watch();
        using (scope) Assert.True(b.ImportDkek(dkek, "zeroed DKEK", id));

        // Our path ran (before the change nothing was observed): the module got the DKEK, then the buffer was zeroed.
        // Compared as names: under Mono, xUnit took the enum array for an Int32 one and called equal stages different.
        Assert.Equal(new[] { nameof(Stage.AfterCall), nameof(Stage.Zeroed) }, seen.Select(x => x.Stage.ToString()).ToArray());
        Assert.Equal(expected, seen[0].Bytes);
        Assert.Equal(new byte[32], seen[1].Bytes);
        AssertDkekObject(b, id, expected);
    }

    /// <summary>Where our call is not available, Pkcs11Interop creates the same object from the same template.</summary>
    [SoftHsmFact]
    public void ImportDkek_ThroughTheFallback_CreatesTheSameObject()
    {
        using var s = SoftHsmTokens.Connect(Label);
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        using var dkek = SoftHsmTokens.Dkek(43);
        byte[] id = { 0x5E, 0xC8 };
        var (seen, scope) = Watch();
        using (scope)
        using (Pkcs11SecretObjectCreator.DisableInThisFlow())
            Assert.True(b.ImportDkek(dkek, "zeroed DKEK", id));
        Assert.Empty(seen);
        AssertDkekObject(b, id, dkek.Span.ToArray());
    }

    private static void AssertDkekObject(Pkcs11DkekBackend b, byte[] id, byte[] expected)
    {
        var p11 = b.Connection.Session;
        var key = Assert.Single(Find(p11, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), (CKA.CKA_ID, id)));
        var a = Read(p11, key, new List<CKA>
        {
            CKA.CKA_CLASS, CKA.CKA_KEY_TYPE, CKA.CKA_VALUE_LEN, CKA.CKA_TOKEN, CKA.CKA_PRIVATE, CKA.CKA_SENSITIVE, CKA.CKA_EXTRACTABLE,
            CKA.CKA_WRAP, CKA.CKA_UNWRAP, CKA.CKA_ENCRYPT, CKA.CKA_DECRYPT, CKA.CKA_SIGN, CKA.CKA_VERIFY, CKA.CKA_DERIVE,
            CKA.CKA_MODIFIABLE, CKA.CKA_LABEL, CKA.CKA_ID, CKA.CKA_VALUE,
        });
        Assert.Equal((ulong)CKO.CKO_SECRET_KEY, a[CKA.CKA_CLASS]!.GetValueAsUlong());
        Assert.Equal((ulong)CKK.CKK_AES, a[CKA.CKA_KEY_TYPE]!.GetValueAsUlong());
        Assert.Equal(32UL, a[CKA.CKA_VALUE_LEN]!.GetValueAsUlong());
        foreach (var yes in new[] { CKA.CKA_TOKEN, CKA.CKA_PRIVATE, CKA.CKA_SENSITIVE, CKA.CKA_WRAP, CKA.CKA_UNWRAP })
            Assert.True(a[yes]!.GetValueAsBool(), $"{yes} should be true on the DKEK");
        foreach (var no in new[] { CKA.CKA_EXTRACTABLE, CKA.CKA_ENCRYPT, CKA.CKA_DECRYPT, CKA.CKA_SIGN, CKA.CKA_VERIFY, CKA.CKA_DERIVE, CKA.CKA_MODIFIABLE })
            Assert.False(a[no]!.GetValueAsBool(), $"{no} should be false on the DKEK");
        Assert.Equal("zeroed DKEK", a[CKA.CKA_LABEL]!.GetValueAsString());
        Assert.Equal(id, a[CKA.CKA_ID]!.GetValueAsByteArray());
        Assert.Null(a[CKA.CKA_VALUE]); // sensitive

        // The token holds the DKEK itself: its wrap proves the KCV the record names.
        var shown = b.GetDkek();
        Assert.Equal("Verified", shown.Status);
        Assert.Equal(KeyCheckValue.ToHex(KeyCheckValue.Compute(expected)), shown.KeyCheckValue);
        Assert.True(b.RemoveDkek());
    }

    [SoftHsmFact]
    public void ACreateTheModuleRefuses_IsItsPkcs11Error_TranslatedAsBefore_AndTheBufferIsStillZeroed()
    {
        using var s = SoftHsmTokens.Connect(Label);
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        byte[] secret = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
        var (seen, scope) = Watch();
        Pkcs11Exception ex;
        using (scope)
        {
            ex = Assert.Throws<Pkcs11Exception>(() => Pkcs11SecretObjectCreator.TryCreate(b.ModulePath, 0x7FFF_FFF0,
                Pkcs11DkekStore.DkekTemplate("no session", new byte[] { 1 }), CKA.CKA_VALUE, secret));
        }
        Assert.Equal(CKR.CKR_SESSION_HANDLE_INVALID, ex.RV);
        Assert.Equal("SessionClosed", Pkcs11Errors.Translate(ex, "import the DKEK").Reason);
        Assert.Equal(Stage.Zeroed, seen[^1].Stage);
        Assert.Equal(new byte[32], seen[^1].Bytes);
        Assert.Equal(secret, seen[0].Bytes); // the observer looked at the real buffer
    }

    [Theory]
    [InlineData(8, 8, 0, 8, 16, 24)]   // Linux / macOS 64-bit
    [InlineData(4, 8, 1, 4, 12, 16)]   // Windows 64-bit (CK_ULONG 4 bytes, packed to 1)
    [InlineData(4, 4, 1, 4, 8, 12)]    // Windows 32-bit
    [InlineData(4, 4, 0, 4, 8, 12)]    // 32-bit Unix
    public void AttributeLayout_FollowsCkUlongSizeAndPacking(int ulongSize, int pointerSize, int packing, int value, int length, int size) =>
        Assert.Equal((value, length, size), Pkcs11SecretObjectCreator.AttributeLayout(ulongSize, pointerSize, packing));

    [Theory]
    [InlineData(8, 0, 168)] // 2-byte CK_VERSION padded to 8, then 20 pointers
    [InlineData(8, 1, 162)] // packed: straight after CK_VERSION
    [InlineData(4, 0, 84)]
    public void CreateObjectEntry_IsTheTwentiethPointerAfterTheVersion(int pointerSize, int packing, int offset) =>
        Assert.Equal(offset, Pkcs11SecretObjectCreator.FunctionListOffset(20, pointerSize, packing));
}
