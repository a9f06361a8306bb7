using System.Numerics;

namespace PicoHsm.Common;

/// <summary>
/// Big-endian unsigned integers as byte strings. The firmware writes numbers the way mbedTLS's
/// mbedtls_mpi_size / write_binary do (no leading zero bytes); .NET's RSAParameters/ECParameters
/// want fixed widths. These helpers convert between the two.
/// </summary>
internal static class UnsignedBytes
{
    public static ReadOnlySpan<byte> TrimLeadingZeros(ReadOnlySpan<byte> value)
    {
        int first = value.IndexOfAnyExcept((byte)0);
        return first < 0 ? ReadOnlySpan<byte>.Empty : value[first..];
    }

    public static byte[] Minimal(ReadOnlySpan<byte> value) => TrimLeadingZeros(value).ToArray();

    /// <summary>Left-pads with zeros to <paramref name="length"/>; throws if the number does not fit.</summary>
    public static byte[] PadTo(ReadOnlySpan<byte> value, int length)
    {
        var trimmed = TrimLeadingZeros(value);
        if (trimmed.Length > length) throw new ArgumentException($"The number does not fit in {length} bytes.");
        var result = new byte[length];
        trimmed.CopyTo(result.AsSpan(length - trimmed.Length));
        return result;
    }

#if NET
    public static BigInteger ToBigInteger(ReadOnlySpan<byte> value) => new(value, isUnsigned: true, isBigEndian: true);
#else
    public static BigInteger ToBigInteger(ReadOnlySpan<byte> value) => BclExtensions.BigIntegerFromUnsignedBigEndian(value);
#endif

    public static byte[] FromBigInteger(BigInteger value) =>
        value.IsZero ? [] : value.ToByteArray(isUnsigned: true, isBigEndian: true);

    public static byte[] FromBigInteger(BigInteger value, int length) => PadTo(FromBigInteger(value), length);

    public static bool NumericallyEqual(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) =>
        TrimLeadingZeros(a).SequenceEqual(TrimLeadingZeros(b));
}
