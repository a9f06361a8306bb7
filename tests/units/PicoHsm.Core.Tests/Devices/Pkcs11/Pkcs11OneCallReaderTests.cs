using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Devices.Pkcs11;

[Collection(SoftHsmCollection.Name)]
public sealed class Pkcs11OneCallReaderTests
{
    public Pkcs11OneCallReaderTests(SoftHsmTokens hsm) => _ = hsm;

    private static readonly List<CKA> Types = new()
    {
        CKA.CKA_CLASS, CKA.CKA_ID, CKA.CKA_LABEL, CKA.CKA_KEY_TYPE, CKA.CKA_EXTRACTABLE, CKA.CKA_SIGN, CKA.CKA_ENCRYPT,
        CKA.CKA_VALUE_LEN, CKA.CKA_MODULUS, CKA.CKA_PUBLIC_EXPONENT, CKA.CKA_EC_PARAMS, CKA.CKA_EC_POINT,
    };

    /// <summary>
    /// The listing's one-call read gives, for every object of a token (keys, public keys, the DKEK's
    /// data object), exactly what Pkcs11Interop's two-call read gives: the same values, and null for
    /// what an object does not have.
    /// </summary>
    [SoftHsmFact]
    public void TryRead_GivesWhatPkcs11InteropReads_ForEveryObject()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        var p11 = b.Connection.Session;
        b.GenerateKey(KeyKind.Rsa, 2048, null, Guid.NewGuid().ToByteArray()[..5], "rsa-1call", extractable: true);
        b.GenerateKey(KeyKind.Ec, 256, "P-256", Guid.NewGuid().ToByteArray()[..5], "ec-1call", extractable: true);
        b.GenerateKey(KeyKind.Aes, 256, null, Guid.NewGuid().ToByteArray()[..5], "aes-1call", extractable: true);
        using var reader = Pkcs11OneCallReader.TryCreate(s.Device.Context.Token.ModulePath, Types);
        if (Platform.NativeULongSize != 8 || Platform.StructPackingSize != 0)
        {
            Assert.Null(reader); // not this ABI: the listing reads through Pkcs11Interop
            return;
        }
        Assert.NotNull(reader);
        var handles = p11.FindAllObjects(new List<IObjectAttribute>());
        Assert.True(handles.Count >= 5);
        foreach (var h in handles)
        {
            var expected = p11.GetAttributeValue(h, Types);
            var got = reader!.TryRead(p11.SessionId, h.ObjectId);
            Assert.NotNull(got);
            for (int i = 0; i < Types.Count; i++)
            {
                if (expected[i].CannotBeRead) Assert.Null(got![i]);
                else Assert.Equal(expected[i].GetValueAsByteArray(), got![i]);
            }
        }
    }
}
