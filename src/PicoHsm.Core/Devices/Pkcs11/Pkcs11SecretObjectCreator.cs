using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Net.Pkcs11Interop.Common;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>One attribute of a creation template, already in its PKCS#11 encoding (see <see cref="Pkcs11SecretObjectCreator.Encode"/>).</summary>
internal readonly record struct EncodedAttribute(CKA Type, byte[] Value);

/// <summary>
/// C_CreateObject for an object whose value is a secret (the DKEK), called by this class rather than
/// through Pkcs11Interop. Why: Pkcs11Interop copies every attribute value into unmanaged memory that it
/// frees without zeroing, so each DKEK import left the DKEK in freed native heap. Here the CK_ATTRIBUTE
/// array and every value live in two unmanaged blocks this class allocates, the secret is copied into
/// its block straight from the caller's span (no managed copy), and both blocks are zeroed before they
/// are freed, in a finally, whatever the module answered.
///
/// The module is reached as C programs reach it: dlopen/LoadLibrary of the path the session's module
/// was loaded from (through Pkcs11Interop's <see cref="UnmanagedLibrary"/>, which returns the library
/// the process already loaded and initialised, not a second copy), C_GetFunctionList, and the
/// C_CreateObject entry of that list. The handle is kept for the process's life like the module.
/// CK_ULONG is 8 bytes on 64-bit Linux and macOS and 4 on Windows and 32-bit Unix; structures are
/// packed to 1 byte on Windows and naturally aligned elsewhere (<see cref="Platform"/>), and the layouts
/// below follow both. Before any call the function list is checked: its version must be 2.x or 3.x and
/// its C_GetFunctionList entry must be the exported C_GetFunctionList, which fails where the layout
/// is not what this class computes. Where the library or the function list cannot be reached, or that
/// check fails, <see cref="TryCreate"/> returns null and the caller creates the object through
/// Pkcs11Interop (its value then copied and freed unzeroed, as before). Run on Linux x64 (SoftHSM2,
/// OpenSC's pkcs11-spy); the Windows layout is computed, not run. Callers hold the session's gate.
/// </summary>
internal static class Pkcs11SecretObjectCreator
{
    /// <summary>When an observer is shown the secret's buffer: after the call and before zeroing; after zeroing and before free.</summary>
    internal enum BufferStage { AfterCall, Zeroed }

    private const int CreateObjectIndex = 20;       // C_CreateObject's place in CK_FUNCTION_LIST (after C_Logout)
    private const int GetFunctionListIndex = 3;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate ulong GetFunctionList64(out IntPtr list);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate uint GetFunctionList32(out IntPtr list);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate ulong CreateObject64(ulong session, IntPtr template, ulong count, out ulong handle);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate uint CreateObject32(uint session, IntPtr template, uint count, out uint handle);

    private static readonly Dictionary<string, Delegate?> Modules = new(StringComparer.Ordinal);
    private static readonly object Gate = new();
    private static readonly AsyncLocal<Action<BufferStage, IntPtr, int>?> Observer = new();
    private static readonly AsyncLocal<bool> Disabled = new();

    /// <summary>For tests: creations in this async flow take the caller's fallback (as where this path is not available), until disposed.</summary>
    internal static IDisposable DisableInThisFlow()
    {
        bool before = Disabled.Value;
        Disabled.Value = true;
        return new Restore(() => Disabled.Value = before);
    }

    /// <summary>
    /// For tests: <paramref name="observer"/> is shown the secret's unmanaged buffer (pointer, length) at each
    /// <see cref="BufferStage"/> of creations made in this async flow, until the result is disposed. It must
    /// only read the buffer, during the call.
    /// </summary>
    internal static IDisposable Observe(Action<BufferStage, IntPtr, int> observer)
    {
        var before = Observer.Value;
        Observer.Value = observer;
        return new Restore(() => Observer.Value = before);
    }

    private sealed class Restore : IDisposable
    {
        private readonly Action _undo;
        public Restore(Action undo) => _undo = undo;
        public void Dispose() => _undo();
    }

    /// <summary>A CK_ULONG value (object class, key type) in this platform's encoding.</summary>
    public static EncodedAttribute Encode(CKA type, ulong value) =>
        new(type, Platform.NativeULongSize == 4 ? BitConverter.GetBytes(checked((uint)value)) : BitConverter.GetBytes(value));

    /// <summary>A CK_BBOOL value.</summary>
    public static EncodedAttribute Encode(CKA type, bool value) => new(type, new[] { value ? (byte)1 : (byte)0 });

    /// <summary>A UTF-8 string (CKA_LABEL) with no terminator.</summary>
    public static EncodedAttribute Encode(CKA type, string value) => new(type, System.Text.Encoding.UTF8.GetBytes(value));

    /// <summary>A byte string (CKA_ID); the array is used as is.</summary>
    public static EncodedAttribute Encode(CKA type, byte[] value) => new(type, value);

    /// <summary>
    /// Creates the object: <paramref name="attributes"/> (no secrets) followed by
    /// <paramref name="secretType"/> = <paramref name="secret"/>. The new object's handle, or null where this
    /// path is not available (create it through Pkcs11Interop then). A module error is a
    /// <see cref="Pkcs11Exception"/> for C_CreateObject, as Pkcs11Interop throws it.
    /// </summary>
    public static ulong? TryCreate(string modulePath, ulong session, IReadOnlyList<EncodedAttribute> attributes, CKA secretType, ReadOnlySpan<byte> secret)
    {
        var create = Disabled.Value ? null : Resolve(modulePath);
        if (create is null) return null;
        var (valueOffset, lengthOffset, size) = AttributeLayout(Platform.NativeULongSize, IntPtr.Size, Platform.StructPackingSize);
        int count = attributes.Count + 1;
        int valuesLength = secret.Length;
        foreach (var a in attributes) valuesLength += a.Value.Length;

        IntPtr template = IntPtr.Zero, values = IntPtr.Zero;
        int secretOffset = valuesLength - secret.Length;
        try
        {
            template = Marshal.AllocHGlobal(count * size);
            values = Marshal.AllocHGlobal(Math.Max(valuesLength, 1));
            int at = 0;
            for (int i = 0; i < count; i++)
            {
                bool isSecret = i == attributes.Count;
                CKA type = isSecret ? secretType : attributes[i].Type;
                int length = isSecret ? secret.Length : attributes[i].Value.Length;
                IntPtr value = values + at;
                if (isSecret) CopyTo(secret, value);
                else Marshal.Copy(attributes[i].Value, 0, value, length);
                at += length;
                IntPtr entry = template + i * size;
                WriteULong(entry, 0, (ulong)type);
                Marshal.WriteIntPtr(entry, valueOffset, value);
                WriteULong(entry, lengthOffset, (ulong)length);
            }

            ulong rv, handle;
            if (create is CreateObject64 c64)
            {
                rv = c64(session, template, (ulong)count, out handle);
            }
            else
            {
                rv = ((CreateObject32)create)(checked((uint)session), template, (uint)count, out uint h32);
                handle = h32;
            }
            Observer.Value?.Invoke(BufferStage.AfterCall, values + secretOffset, secret.Length);
            if (rv != (ulong)CKR.CKR_OK) throw new Pkcs11Exception("C_CreateObject", (CKR)rv);
            return handle;
        }
        finally
        {
            if (values != IntPtr.Zero)
            {
                Zero(values, valuesLength);
                Observer.Value?.Invoke(BufferStage.Zeroed, values + secretOffset, secret.Length);
                Marshal.FreeHGlobal(values);
            }
            if (template != IntPtr.Zero)
            {
                Zero(template, count * size);
                Marshal.FreeHGlobal(template);
            }
        }
    }

    /// <summary>
    /// Offsets of pValue and ulValueLen in CK_ATTRIBUTE { CK_ULONG type; void* pValue; CK_ULONG ulValueLen; }
    /// and its size: packed to 1 byte (Windows) or naturally aligned (Unix).
    /// </summary>
    internal static (int ValueOffset, int LengthOffset, int Size) AttributeLayout(int ulongSize, int pointerSize, int packing)
    {
        if (packing == 1) return (ulongSize, ulongSize + pointerSize, 2 * ulongSize + pointerSize);
        int value = Align(ulongSize, pointerSize);
        int length = value + pointerSize;
        return (value, length, Align(length + ulongSize, Math.Max(ulongSize, pointerSize)));
    }

    /// <summary>Offset of entry <paramref name="index"/> in CK_FUNCTION_LIST { CK_VERSION version; CK_C_xxx pointers... }.</summary>
    internal static int FunctionListOffset(int index, int pointerSize, int packing) =>
        (packing == 1 ? 2 : Align(2, pointerSize)) + index * pointerSize;

    private static int Align(int offset, int alignment) => (offset + alignment - 1) / alignment * alignment;

    private static Delegate? Resolve(string modulePath)
    {
        lock (Gate)
        {
            if (Modules.TryGetValue(modulePath, out var known)) return known;
            Delegate? found = null;
            try { found = Load(modulePath); }
            catch (Exception ex) when (ex is UnmanagedException or DllNotFoundException or EntryPointNotFoundException or Pkcs11Exception) { }
            Modules[modulePath] = found;
            return found;
        }
    }

    private static Delegate? Load(string modulePath)
    {
        if (Platform.NativeULongSize is not (4 or 8) || Platform.StructPackingSize is not (0 or 1)) return null;
        IntPtr library = UnmanagedLibrary.Load(modulePath); // kept: the pointers below live as long as it is loaded
        IntPtr getFunctionList = UnmanagedLibrary.GetFunctionPointer(library, "C_GetFunctionList");
        if (getFunctionList == IntPtr.Zero) return null;
        ulong rv;
        IntPtr list;
        if (Platform.NativeULongSize == 8) rv = Marshal.GetDelegateForFunctionPointer<GetFunctionList64>(getFunctionList)(out list);
        else rv = Marshal.GetDelegateForFunctionPointer<GetFunctionList32>(getFunctionList)(out list);
        if (rv != (ulong)CKR.CKR_OK || list == IntPtr.Zero) return null;

        byte major = Marshal.ReadByte(list, 0);
        if (major is not (2 or 3)) return null;
        int packing = Platform.StructPackingSize;
        if (Marshal.ReadIntPtr(list, FunctionListOffset(GetFunctionListIndex, IntPtr.Size, packing)) != getFunctionList) return null;
        IntPtr create = Marshal.ReadIntPtr(list, FunctionListOffset(CreateObjectIndex, IntPtr.Size, packing));
        if (create == IntPtr.Zero) return null;
        return Platform.NativeULongSize == 8
            ? Marshal.GetDelegateForFunctionPointer<CreateObject64>(create)
            : Marshal.GetDelegateForFunctionPointer<CreateObject32>(create);
    }

    private static void WriteULong(IntPtr entry, int offset, ulong value)
    {
        if (Platform.NativeULongSize == 8) Marshal.WriteInt64(entry, offset, unchecked((long)value));
        else Marshal.WriteInt32(entry, offset, unchecked((int)checked((uint)value)));
    }

    private static unsafe void CopyTo(ReadOnlySpan<byte> source, IntPtr destination) =>
        source.CopyTo(new Span<byte>((void*)destination, source.Length));

    /// <summary>Not inlined, so the writes before the free cannot be dropped as dead stores.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.NoOptimization)]
    private static unsafe void Zero(IntPtr buffer, int length) => new Span<byte>((void*)buffer, length).Clear();
}
