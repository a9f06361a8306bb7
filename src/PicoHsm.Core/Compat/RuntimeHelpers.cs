#if NETSTANDARD2_0 || NETFRAMEWORK
// The compiler lowers array[a..b] to RuntimeHelpers.GetSubArray (.NET Core 3); .NET Framework's
// RuntimeHelpers has none. A type of the same full name in this assembly is the one the compiler
// uses for that call (CS0436 warns, intended). Polyfills of BCL types must carry the BCL's
// namespace; ArchitectureTests exempts Compat/ files that declare a System namespace.
#pragma warning disable CS0436
namespace System.Runtime.CompilerServices;

internal static class RuntimeHelpers
{
    /// <summary>For fixed (char* p = text): the runtime's own value, read once.</summary>
    public static int OffsetToStringData { get; } = (int)typeof(object).Assembly
        .GetType("System.Runtime.CompilerServices.RuntimeHelpers")!
        .GetProperty("OffsetToStringData")!.GetValue(null)!;

    public static T[] GetSubArray<T>(T[] array, Range range)
    {
        if (array is null) throw new ArgumentNullException(nameof(array));
        (int offset, int length) = range.GetOffsetAndLength(array.Length);
        var result = new T[length];
        Array.Copy(array, offset, result, 0, length);
        return result;
    }
}
#endif
