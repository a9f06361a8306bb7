using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// Whether an object handle taken earlier (from a catalogue or a plan) still names the object it
/// named then. Why: handles are only numbers; an object deleted by another tool can leave its handle
/// to a new object, so a handle is checked against its class and id before it is used.
/// </summary>
internal static class Pkcs11HandleCheck
{
    private static readonly List<CKA> ClassAndId = new() { CKA.CKA_CLASS, CKA.CKA_ID };

    /// <summary>Whether the handle still names an object of that class with that id (false once it is gone).</summary>
    public static bool StillIs(ISession session, IObjectHandle h, CKO cko, byte[] id)
    {
        try
        {
            var a = Read(session, h, ClassAndId);
            return a[CKA.CKA_CLASS] is { } c && c.GetValueAsUlong() == (ulong)cko
                && a[CKA.CKA_ID]?.GetValueAsByteArray() is { } got && got.AsSpan().SequenceEqual(id);
        }
        catch (Pkcs11Exception)
        {
            return false; // the handle is gone (CKR_OBJECT_HANDLE_INVALID)
        }
    }
}
