using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace PicoHsm.Devices.ScHsm.Shares;

/// <summary>
/// MD5 applied again and again to its own 16-byte output: the inner loop of OpenSSL's
/// EVP_BytesToKey with a large count. sc-hsm-tool uses 10,000,000 rounds per 16 bytes of key,
/// 30 million MD5 calls per share file. Calling the platform MD5 that often costs ~0.4-0.5 us a call
/// (interop and context reset), so this does the single, fixed-padding MD5 block in registers:
/// a 16-byte message is always one block with 0x80 at byte 16 and bit length 128 at word 14.
/// Measured at about 0.12-0.13 us of CPU a round here (Debug and Release alike: AggressiveOptimization
/// keeps it optimised), so ~3.5-4 s a share file, about what OpenSSL's assembler MD5 costs; the three
/// 10M chains depend on each other, so there is nothing to run in parallel.
/// </summary>
internal static class Md5Iteration
{
    /// <summary>
    /// Rounds between two looks at the cancellation token: about 8 ms of work, so Ctrl+C stops the
    /// 10,000,000-round chain well within a second at a cost too small to measure.
    /// </summary>
    internal const int RoundsPerCheck = 65_536;

    /// <summary>Replaces the 16 bytes of <paramref name="state"/> by MD5 applied <paramref name="rounds"/> times.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was cancelled; the state is then undefined.</exception>
    public static void Apply(Span<byte> state, int rounds, CancellationToken cancellation = default)
    {
        if (state.Length != 16) throw new ArgumentException("The MD5 chain works on 16 bytes.", nameof(state));
        for (int done = 0; done < rounds; done += RoundsPerCheck)
        {
            cancellation.ThrowIfCancellationRequested();
            ApplyUnchecked(state, Math.Min(RoundsPerCheck, rounds - done));
        }
    }

#if NET
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
#endif
    private static void ApplyUnchecked(Span<byte> state, int rounds)
    {
        uint x0 = BinaryPrimitives.ReadUInt32LittleEndian(state);
        uint x1 = BinaryPrimitives.ReadUInt32LittleEndian(state[4..]);
        uint x2 = BinaryPrimitives.ReadUInt32LittleEndian(state[8..]);
        uint x3 = BinaryPrimitives.ReadUInt32LittleEndian(state[12..]);
        // Words 4..15 of the only block: padding byte 0x80, zeros, then the bit length (128).
        const uint x4 = 0x80, x5 = 0, x6 = 0, x7 = 0, x8 = 0, x9 = 0, x10 = 0, x11 = 0, x12 = 0, x13 = 0, x14 = 128, x15 = 0;
        for (int i = 0; i < rounds; i++)
        {
            uint a = 0x67452301, b = 0xefcdab89, c = 0x98badcfe, d = 0x10325476;
            a = b + BitOperations.RotateLeft(a + ((b & c) | (~b & d)) + x0 + 0xd76aa478, 7);
            d = a + BitOperations.RotateLeft(d + ((a & b) | (~a & c)) + x1 + 0xe8c7b756, 12);
            c = d + BitOperations.RotateLeft(c + ((d & a) | (~d & b)) + x2 + 0x242070db, 17);
            b = c + BitOperations.RotateLeft(b + ((c & d) | (~c & a)) + x3 + 0xc1bdceee, 22);
            a = b + BitOperations.RotateLeft(a + ((b & c) | (~b & d)) + x4 + 0xf57c0faf, 7);
            d = a + BitOperations.RotateLeft(d + ((a & b) | (~a & c)) + x5 + 0x4787c62a, 12);
            c = d + BitOperations.RotateLeft(c + ((d & a) | (~d & b)) + x6 + 0xa8304613, 17);
            b = c + BitOperations.RotateLeft(b + ((c & d) | (~c & a)) + x7 + 0xfd469501, 22);
            a = b + BitOperations.RotateLeft(a + ((b & c) | (~b & d)) + x8 + 0x698098d8, 7);
            d = a + BitOperations.RotateLeft(d + ((a & b) | (~a & c)) + x9 + 0x8b44f7af, 12);
            c = d + BitOperations.RotateLeft(c + ((d & a) | (~d & b)) + x10 + 0xffff5bb1, 17);
            b = c + BitOperations.RotateLeft(b + ((c & d) | (~c & a)) + x11 + 0x895cd7be, 22);
            a = b + BitOperations.RotateLeft(a + ((b & c) | (~b & d)) + x12 + 0x6b901122, 7);
            d = a + BitOperations.RotateLeft(d + ((a & b) | (~a & c)) + x13 + 0xfd987193, 12);
            c = d + BitOperations.RotateLeft(c + ((d & a) | (~d & b)) + x14 + 0xa679438e, 17);
            b = c + BitOperations.RotateLeft(b + ((c & d) | (~c & a)) + x15 + 0x49b40821, 22);

            a = b + BitOperations.RotateLeft(a + ((b & d) | (c & ~d)) + x1 + 0xf61e2562, 5);
            d = a + BitOperations.RotateLeft(d + ((a & c) | (b & ~c)) + x6 + 0xc040b340, 9);
            c = d + BitOperations.RotateLeft(c + ((d & b) | (a & ~b)) + x11 + 0x265e5a51, 14);
            b = c + BitOperations.RotateLeft(b + ((c & a) | (d & ~a)) + x0 + 0xe9b6c7aa, 20);
            a = b + BitOperations.RotateLeft(a + ((b & d) | (c & ~d)) + x5 + 0xd62f105d, 5);
            d = a + BitOperations.RotateLeft(d + ((a & c) | (b & ~c)) + x10 + 0x02441453, 9);
            c = d + BitOperations.RotateLeft(c + ((d & b) | (a & ~b)) + x15 + 0xd8a1e681, 14);
            b = c + BitOperations.RotateLeft(b + ((c & a) | (d & ~a)) + x4 + 0xe7d3fbc8, 20);
            a = b + BitOperations.RotateLeft(a + ((b & d) | (c & ~d)) + x9 + 0x21e1cde6, 5);
            d = a + BitOperations.RotateLeft(d + ((a & c) | (b & ~c)) + x14 + 0xc33707d6, 9);
            c = d + BitOperations.RotateLeft(c + ((d & b) | (a & ~b)) + x3 + 0xf4d50d87, 14);
            b = c + BitOperations.RotateLeft(b + ((c & a) | (d & ~a)) + x8 + 0x455a14ed, 20);
            a = b + BitOperations.RotateLeft(a + ((b & d) | (c & ~d)) + x13 + 0xa9e3e905, 5);
            d = a + BitOperations.RotateLeft(d + ((a & c) | (b & ~c)) + x2 + 0xfcefa3f8, 9);
            c = d + BitOperations.RotateLeft(c + ((d & b) | (a & ~b)) + x7 + 0x676f02d9, 14);
            b = c + BitOperations.RotateLeft(b + ((c & a) | (d & ~a)) + x12 + 0x8d2a4c8a, 20);

            a = b + BitOperations.RotateLeft(a + (b ^ c ^ d) + x5 + 0xfffa3942, 4);
            d = a + BitOperations.RotateLeft(d + (a ^ b ^ c) + x8 + 0x8771f681, 11);
            c = d + BitOperations.RotateLeft(c + (d ^ a ^ b) + x11 + 0x6d9d6122, 16);
            b = c + BitOperations.RotateLeft(b + (c ^ d ^ a) + x14 + 0xfde5380c, 23);
            a = b + BitOperations.RotateLeft(a + (b ^ c ^ d) + x1 + 0xa4beea44, 4);
            d = a + BitOperations.RotateLeft(d + (a ^ b ^ c) + x4 + 0x4bdecfa9, 11);
            c = d + BitOperations.RotateLeft(c + (d ^ a ^ b) + x7 + 0xf6bb4b60, 16);
            b = c + BitOperations.RotateLeft(b + (c ^ d ^ a) + x10 + 0xbebfbc70, 23);
            a = b + BitOperations.RotateLeft(a + (b ^ c ^ d) + x13 + 0x289b7ec6, 4);
            d = a + BitOperations.RotateLeft(d + (a ^ b ^ c) + x0 + 0xeaa127fa, 11);
            c = d + BitOperations.RotateLeft(c + (d ^ a ^ b) + x3 + 0xd4ef3085, 16);
            b = c + BitOperations.RotateLeft(b + (c ^ d ^ a) + x6 + 0x04881d05, 23);
            a = b + BitOperations.RotateLeft(a + (b ^ c ^ d) + x9 + 0xd9d4d039, 4);
            d = a + BitOperations.RotateLeft(d + (a ^ b ^ c) + x12 + 0xe6db99e5, 11);
            c = d + BitOperations.RotateLeft(c + (d ^ a ^ b) + x15 + 0x1fa27cf8, 16);
            b = c + BitOperations.RotateLeft(b + (c ^ d ^ a) + x2 + 0xc4ac5665, 23);

            a = b + BitOperations.RotateLeft(a + (c ^ (b | ~d)) + x0 + 0xf4292244, 6);
            d = a + BitOperations.RotateLeft(d + (b ^ (a | ~c)) + x7 + 0x432aff97, 10);
            c = d + BitOperations.RotateLeft(c + (a ^ (d | ~b)) + x14 + 0xab9423a7, 15);
            b = c + BitOperations.RotateLeft(b + (d ^ (c | ~a)) + x5 + 0xfc93a039, 21);
            a = b + BitOperations.RotateLeft(a + (c ^ (b | ~d)) + x12 + 0x655b59c3, 6);
            d = a + BitOperations.RotateLeft(d + (b ^ (a | ~c)) + x3 + 0x8f0ccc92, 10);
            c = d + BitOperations.RotateLeft(c + (a ^ (d | ~b)) + x10 + 0xffeff47d, 15);
            b = c + BitOperations.RotateLeft(b + (d ^ (c | ~a)) + x1 + 0x85845dd1, 21);
            a = b + BitOperations.RotateLeft(a + (c ^ (b | ~d)) + x8 + 0x6fa87e4f, 6);
            d = a + BitOperations.RotateLeft(d + (b ^ (a | ~c)) + x15 + 0xfe2ce6e0, 10);
            c = d + BitOperations.RotateLeft(c + (a ^ (d | ~b)) + x6 + 0xa3014314, 15);
            b = c + BitOperations.RotateLeft(b + (d ^ (c | ~a)) + x13 + 0x4e0811a1, 21);
            a = b + BitOperations.RotateLeft(a + (c ^ (b | ~d)) + x4 + 0xf7537e82, 6);
            d = a + BitOperations.RotateLeft(d + (b ^ (a | ~c)) + x11 + 0xbd3af235, 10);
            c = d + BitOperations.RotateLeft(c + (a ^ (d | ~b)) + x2 + 0x2ad7d2bb, 15);
            b = c + BitOperations.RotateLeft(b + (d ^ (c | ~a)) + x9 + 0xeb86d391, 21);


            x0 = a + 0x67452301; x1 = b + 0xefcdab89; x2 = c + 0x98badcfe; x3 = d + 0x10325476;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(state, x0);
        BinaryPrimitives.WriteUInt32LittleEndian(state[4..], x1);
        BinaryPrimitives.WriteUInt32LittleEndian(state[8..], x2);
        BinaryPrimitives.WriteUInt32LittleEndian(state[12..], x3);
        x0 = x1 = x2 = x3 = 0;
    }
}
