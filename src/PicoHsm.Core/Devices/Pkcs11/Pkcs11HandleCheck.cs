using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// Whether an object handle taken earlier (from a catalogue or a plan) still names the object it
/// named then. Why: handles are only numbers; an object deleted by another tool can leave its handle
/// to a new object, so a handle is checked against its class and id before it is used. One
/// C_GetAttributeValue of class and id where the platform allows it (<see cref="Pkcs11OneCallReader"/>),
/// else Pkcs11Interop's two. One per backend, disposed with it; callers hold the session's gate.
/// </summary>
internal sealed class Pkcs11HandleCheck : IDisposable
{
    internal static readonly List<CKA> ClassAndId = new() { CKA.CKA_CLASS, CKA.CKA_ID };
    internal const int Class = 0, Id = 1;

    private readonly Pkcs11Connection _p11;
    private Pkcs11OneCallReader? _reader;
    private bool _made, _disposed;

    public Pkcs11HandleCheck(Pkcs11Connection connection) => _p11 = connection;

    /// <summary>The class and id of the object (in the order of <see cref="ClassAndId"/>; null: unreadable). Throws the token's error when the handle is gone.</summary>
    public byte[]?[] ReadClassAndId(IObjectHandle h)
    {
        var s = _p11.Session;
        if (!_made && !_disposed)
        {
            _made = true;
            _reader = Pkcs11OneCallReader.TryCreate(_p11.ModulePath, ClassAndId);
        }
        if (_reader?.TryRead(s.SessionId, h.ObjectId) is { } raw) return raw;
        var values = s.GetAttributeValue(h, ClassAndId);
        var bytes = new byte[]?[values.Count];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = values[i].CannotBeRead ? null : values[i].GetValueAsByteArray();
        return bytes;
    }

    /// <summary>Whether the handle still names an object of that class with that id (false once it is gone).</summary>
    public bool StillIs(IObjectHandle h, CKO cko, byte[] id)
    {
        try { return Is(ReadClassAndId(h), cko, id); }
        catch (Pkcs11Exception) { return false; } // the handle is gone (CKR_OBJECT_HANDLE_INVALID)
    }

    /// <summary>Whether values read in the order of <see cref="ClassAndId"/> (first two) are that class and id.</summary>
    public static bool Is(byte[]?[] v, CKO cko, byte[] id) =>
        UlongOf(v[Class]) == (ulong)cko && v[Id] is { } got && got.AsSpan().SequenceEqual(id);

    public static ulong? UlongOf(byte[]? v) => v switch
    {
        { Length: 8 } b => BitConverter.ToUInt64(b, 0),
        { Length: 4 } b => BitConverter.ToUInt32(b, 0),
        _ => null,
    };

    /// <summary>Whether the native buffers are released (for tests: the backend's Dispose releases them).</summary>
    internal bool Released => _disposed;

    public void Dispose()
    {
        _disposed = true;
        _reader?.Dispose();
        _reader = null;
    }
}
