using System.Runtime.InteropServices;
using Net.Pkcs11Interop.Common;
using LL = Net.Pkcs11Interop.LowLevelAPI80;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// Reads a fixed set of attributes of an object in ONE C_GetAttributeValue, into buffers sized in
/// advance, as a C program does. Why: Pkcs11Interop's high-level read asks twice (the lengths, then
/// the values), and tokens such as SoftHSM2 pay their per-call cost (a check that the object file
/// is current) on each, so a listing of n objects made 2n calls. Only where CK_ULONG is 8 bytes and
/// structures are not packed (Linux and macOS, 64-bit: Pkcs11Interop's LowLevelAPI80); elsewhere
/// <see cref="TryCreate"/> returns null and callers read through Pkcs11Interop. An object whose value
/// does not fit (CKR_BUFFER_TOO_SMALL) or that fails otherwise gives null, and is read the usual way.
/// The low-level library is a second view of the module the process already loaded and initialised
/// (dlopen of the same path returns the same library; it is not initialised again), kept for the
/// process's life like the module itself. Callers hold the session's gate.
/// </summary>
internal sealed class Pkcs11OneCallReader : IDisposable
{
    private const ulong Unavailable = ulong.MaxValue; // CK_UNAVAILABLE_INFORMATION
    private static readonly Dictionary<string, LL.Pkcs11Library> Libraries = new(StringComparer.Ordinal);
    private static readonly object Gate = new();

    private readonly LL.Pkcs11Library _lib;
    private readonly LL.CK_ATTRIBUTE[] _template;
    private readonly IntPtr[] _buffers;
    private readonly ulong[] _sizes;

    private Pkcs11OneCallReader(LL.Pkcs11Library lib, IReadOnlyList<CKA> types)
    {
        _lib = lib;
        _template = new LL.CK_ATTRIBUTE[types.Count];
        _buffers = new IntPtr[types.Count];
        _sizes = new ulong[types.Count];
        for (int i = 0; i < types.Count; i++)
        {
            _sizes[i] = (ulong)MaxSize(types[i]);
            _buffers[i] = Marshal.AllocHGlobal((int)_sizes[i]);
            _template[i].type = (ulong)types[i];
        }
    }

    /// <summary>A reader for <paramref name="types"/> on the module at <paramref name="modulePath"/>, or null where this platform's ABI is not LowLevelAPI80.</summary>
    public static Pkcs11OneCallReader? TryCreate(string modulePath, IReadOnlyList<CKA> types) =>
        Library(modulePath) is { } lib ? new Pkcs11OneCallReader(lib, types) : null;

    /// <summary>The low-level view of the module, or null where this platform's ABI is not LowLevelAPI80.</summary>
    private static LL.Pkcs11Library? Library(string modulePath)
    {
        if (Platform.NativeULongSize != 8 || Platform.StructPackingSize != 0) return null;
        lock (Gate)
        {
            if (!Libraries.TryGetValue(modulePath, out var lib))
            {
                try { lib = new LL.Pkcs11Library(modulePath); }
                catch (Exception ex) when (ex is Pkcs11Exception or UnmanagedException or DllNotFoundException) { return null; }
                Libraries[modulePath] = lib;
            }
            return lib;
        }
    }

    /// <summary>
    /// C_WrapKey in ONE call into <paramref name="buffer"/> (sized by the caller for the largest key it
    /// wraps), as a C program does; Pkcs11Interop's WrapKey asks twice (the length, then the value), and
    /// a token such as SoftHSM2 does the whole wrap for each. Returns the wrapped length, or -1 to wrap
    /// the usual way (this platform's ABI is not LowLevelAPI80, or the output did not fit); any other
    /// failure is the token's, thrown as the <see cref="Pkcs11Exception"/> Pkcs11Interop would throw.
    /// A mechanism without parameters only (the AES key wraps). Callers hold the session's gate.
    /// </summary>
    public static int TryWrapKey(string modulePath, ulong session, CKM mechanism, ulong wrappingKey, ulong key, byte[] buffer)
    {
        if (Library(modulePath) is not { } lib) return -1;
        var m = new LL.CK_MECHANISM { Mechanism = (ulong)mechanism, Parameter = IntPtr.Zero, ParameterLen = 0 };
        ulong len = (ulong)buffer.Length;
        CKR rv = lib.C_WrapKey(session, ref m, wrappingKey, key, buffer, ref len);
        if (rv == CKR.CKR_BUFFER_TOO_SMALL) return -1;
        if (rv != CKR.CKR_OK) throw new Pkcs11Exception("C_WrapKey", rv);
        return len <= (ulong)buffer.Length ? (int)len : -1;
    }

    /// <summary>The values in the order of the types (null: the object has no such attribute or will not reveal it), or null to read it another way.</summary>
    public byte[]?[]? TryRead(ulong session, ulong handle)
    {
        for (int i = 0; i < _template.Length; i++)
        {
            _template[i].value = _buffers[i];
            _template[i].valueLen = _sizes[i];
        }
        CKR rv = _lib.C_GetAttributeValue(session, handle, _template, (ulong)_template.Length);
        if (rv is not (CKR.CKR_OK or CKR.CKR_ATTRIBUTE_TYPE_INVALID or CKR.CKR_ATTRIBUTE_SENSITIVE)) return null;
        var values = new byte[]?[_template.Length];
        for (int i = 0; i < _template.Length; i++)
        {
            ulong len = _template[i].valueLen;
            if (len == Unavailable) continue;
            if (len > _sizes[i]) return null;
            // A token that stops at the first attribute it lacks (not as PKCS#11 says) leaves the
            // lengths after it as they were; a variable-length value exactly as long as its buffer is
            // that, never a real id, label, modulus or point. Read such an object the usual way.
            if (rv != CKR.CKR_OK && len == _sizes[i] && _sizes[i] > 8) return null;
            var v = new byte[(int)len];
            Marshal.Copy(_buffers[i], v, 0, v.Length);
            values[i] = v;
        }
        return values;
    }

    /// <summary>Room for each value: CK_ULONGs and CK_BBOOLs exactly; ids, labels, RSA-16384 moduli and EC points with room to spare.</summary>
    private static int MaxSize(CKA type) => type switch
    {
        CKA.CKA_CLASS or CKA.CKA_KEY_TYPE or CKA.CKA_VALUE_LEN or CKA.CKA_CERTIFICATE_TYPE => 8,
        CKA.CKA_MODULUS or CKA.CKA_PUBLIC_EXPONENT => 2048,
        CKA.CKA_ID or CKA.CKA_LABEL or CKA.CKA_EC_PARAMS or CKA.CKA_EC_POINT => 1024,
        _ => 1, // CK_BBOOL
    };

    public void Dispose()
    {
        for (int i = 0; i < _buffers.Length; i++)
        {
            if (_buffers[i] == IntPtr.Zero) continue;
            Marshal.FreeHGlobal(_buffers[i]);
            _buffers[i] = IntPtr.Zero;
        }
    }
}
