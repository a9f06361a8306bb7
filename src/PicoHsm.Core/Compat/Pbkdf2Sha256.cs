#if NETSTANDARD2_0
// PBKDF2-HMAC-SHA256 rounds for the Desktop build (.NET Framework, Mono). There the platform HMAC
// (IncrementalHash, HMACSHA256 over SHA256Managed) hashes both key pads again after every reset and
// makes arrays on every call: a 600,000-round share file took ~9 s under Mono here. This keeps the
// inner and outer pad states and runs each round as two fixed-padding SHA-256 blocks on 32-bit words
// (no byte packing, no arrays), as Md5Iteration does for sc-hsm-tool's MD5 chain. The net8.0 build,
// and this one when PowerShell 7 loads it, keep the platform HMAC (DkekShareFile.Pbkdf2HmacSha256).
// The first round (U1 = HMAC(P, S || INT(i))) runs on the same pad states over the salt's blocks, and a
// password longer than a block is hashed here too: no library object keeps a copy of the password or
// its pads. Tested against Rfc2898DeriveBytes and the published vectors (KdfCancellationTests), under Mono.
using System.Buffers.Binary;

namespace PicoHsm.Compat;

internal static unsafe class Pbkdf2Sha256
{
    /// <summary>
    /// True on .NET Framework and Mono, whose HMACSHA256 is managed code with the per-reset pad
    /// hashing; false when this build runs on .NET (Core), whose HMAC is the OS library's.
    /// </summary>
    public static readonly bool PlatformHmacIsManaged =
        Type.GetType("Mono.Runtime") is not null
        || System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.Ordinal);

    private static readonly uint[] K =
    [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];

    private static readonly uint[] Iv = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

    /// <summary>
    /// One 32-byte block: Ti = U1 ^ ... ^ Uc with U1 = HMAC(P, S || INT(i)), Uj = HMAC(P, Uj-1).
    /// Everything is SHA-256 compressions on this method's stack: the password's pad block, the pad
    /// states and every U are zeroed on the way out, and no library object (an HMAC keeping its pads,
    /// a key parameter's clone of the password, a hash's buffered block) ever holds the password.
    /// </summary>
    public static void DeriveBlock(ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt, Span<byte> output, int iterations,
        int iterationsPerCheck, CancellationToken cancellation, int blockIndex = 1)
    {
        if (output.Length < 32) throw new ArgumentException("PBKDF2-HMAC-SHA256 gives 32 bytes a block.", nameof(output));
        if (blockIndex < 1) throw new ArgumentOutOfRangeException(nameof(blockIndex));
        uint* w = stackalloc uint[64];
        uint* inner = stackalloc uint[8];
        uint* outer = stackalloc uint[8];
        uint* u = stackalloc uint[8];
        uint* t = stackalloc uint[8];
        byte* block = stackalloc byte[64];
        byte* index = stackalloc byte[4];
        try
        {
            fixed (uint* k = K)
            {
                PadStates(password, block, w, inner, outer, k);
                // U1 = HMAC(P, S || INT(i)): the inner hash continued from the ipad state over the
                // salt and the block index (64 bytes of pad already hashed), then the outer as a round.
                BinaryPrimitives.WriteInt32BigEndian(new Span<byte>(index, 4), blockIndex);
                for (int j = 0; j < 8; j++) u[j] = inner[j];
                HashPadded(u, 64, salt, new ReadOnlySpan<byte>(index, 4), block, w, k);
                Round(outer, u, w, k);
                for (int j = 0; j < 8; j++) t[j] = u[j];
                for (int i = 1; i < iterations; i++)
                {
                    if (i % iterationsPerCheck == 0) cancellation.ThrowIfCancellationRequested();
                    // inner: SHA-256 from the ipad state over U || 0x80 || 0... || bit length (64 + 32) * 8
                    Round(inner, u, w, k);
                    // outer: from the opad state over the inner hash, same padding
                    Round(outer, u, w, k);
                    for (int j = 0; j < 8; j++) t[j] ^= u[j];
                }
                for (int j = 0; j < 8; j++) BinaryPrimitives.WriteUInt32BigEndian(output.Slice(4 * j, 4), t[j]);
            }
        }
        finally
        {
            new Span<uint>(w, 64).Clear();
            new Span<uint>(inner, 8).Clear();
            new Span<uint>(outer, 8).Clear();
            new Span<uint>(u, 8).Clear();
            new Span<uint>(t, 8).Clear();
            new Span<byte>(block, 64).Clear();
            new Span<byte>(index, 4).Clear();
        }
    }

    /// <summary>
    /// The states after SHA-256 of (key ^ 0x36...) and of (key ^ 0x5c...), the key hashed first (here,
    /// on the stack) when longer than a block. <paramref name="block"/> and <paramref name="w"/> are
    /// cleared before returning: only the two states remain.
    /// </summary>
    private static void PadStates(ReadOnlySpan<byte> password, byte* block, uint* w, uint* inner, uint* outer, uint* k)
    {
        var key = new Span<byte>(block, 64);
        if (password.Length > 64)
        {
            // K = SHA-256(P): into inner (scratch until the pads are made), then big-endian into the block.
            for (int j = 0; j < 8; j++) inner[j] = Iv[j];
            HashPadded(inner, 0, password, default, block, w, k);
            key.Clear();
            for (int j = 0; j < 8; j++) BinaryPrimitives.WriteUInt32BigEndian(key.Slice(4 * j, 4), inner[j]);
        }
        else
        {
            key.Clear();
            password.CopyTo(key);
        }
        for (int pass = 0; pass < 2; pass++)
        {
            byte pad = pass == 0 ? (byte)0x36 : (byte)0x5c;
            uint* state = pass == 0 ? inner : outer;
            for (int j = 0; j < 16; j++)
                w[j] = ((uint)(block[4 * j] ^ pad) << 24) | ((uint)(block[4 * j + 1] ^ pad) << 16)
                     | ((uint)(block[4 * j + 2] ^ pad) << 8) | (uint)(block[4 * j + 3] ^ pad);
            for (int j = 0; j < 8; j++) state[j] = Iv[j];
            Compress(state, w, k);
        }
        key.Clear();
        new Span<uint>(w, 64).Clear();
    }

    /// <summary>
    /// SHA-256 continued from <paramref name="state"/> (which has hashed <paramref name="prefixLength"/>
    /// bytes, a multiple of 64) over a || b and the final padding, block by block through
    /// <paramref name="block"/>; leaves the digest in state and clears block and w.
    /// </summary>
    private static void HashPadded(uint* state, long prefixLength, ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, byte* block, uint* w, uint* k)
    {
        int length = a.Length + b.Length;
        // The message, 0x80, zeros, and the 64-bit bit length end a whole number of blocks.
        int padded = (length + 1 + 8 + 63) / 64 * 64;
        ulong bits = (ulong)(prefixLength + length) * 8;
        for (int offset = 0; offset < padded; offset += 64)
        {
            for (int j = 0; j < 64; j++)
            {
                int at = offset + j;
                block[j] = at < a.Length ? a[at]
                    : at < length ? b[at - a.Length]
                    : at == length ? (byte)0x80
                    : at >= padded - 8 ? (byte)(bits >> (8 * (padded - 1 - at)))
                    : (byte)0;
            }
            for (int j = 0; j < 16; j++)
                w[j] = ((uint)block[4 * j] << 24) | ((uint)block[4 * j + 1] << 16) | ((uint)block[4 * j + 2] << 8) | block[4 * j + 3];
            Compress(state, w, k);
        }
        new Span<byte>(block, 64).Clear();
        new Span<uint>(w, 64).Clear();
    }

    /// <summary>value = SHA-256 continued from <paramref name="padState"/> over the 32 bytes of value, one padded block.</summary>
    private static void Round(uint* padState, uint* value, uint* w, uint* k)
    {
        for (int j = 0; j < 8; j++) w[j] = value[j];
        w[8] = 0x80000000;
        w[9] = 0; w[10] = 0; w[11] = 0; w[12] = 0; w[13] = 0; w[14] = 0;
        w[15] = (64 + 32) * 8;
        for (int j = 0; j < 8; j++) value[j] = padState[j];
        Compress(value, w, k);
    }

    /// <summary>One SHA-256 compression of the 16 words in w[0..15] into state (w[16..63] is the schedule).</summary>
    private static void Compress(uint* state, uint* w, uint* k)
    {
        for (int j = 16; j < 64; j++)
        {
            uint x = w[j - 15], y = w[j - 2];
            uint s0 = ((x >> 7) | (x << 25)) ^ ((x >> 18) | (x << 14)) ^ (x >> 3);
            uint s1 = ((y >> 17) | (y << 15)) ^ ((y >> 19) | (y << 13)) ^ (y >> 10);
            w[j] = w[j - 16] + s0 + w[j - 7] + s1;
        }
        uint a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6], h = state[7];
        for (int j = 0; j < 64; j++)
        {
            uint S1 = ((e >> 6) | (e << 26)) ^ ((e >> 11) | (e << 21)) ^ ((e >> 25) | (e << 7));
            uint ch = (e & f) ^ (~e & g);
            uint t1 = h + S1 + ch + k[j] + w[j];
            uint S0 = ((a >> 2) | (a << 30)) ^ ((a >> 13) | (a << 19)) ^ ((a >> 22) | (a << 10));
            uint maj = (a & b) ^ (a & c) ^ (b & c);
            uint t2 = S0 + maj;
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d; state[4] += e; state[5] += f; state[6] += g; state[7] += h;
    }
}
#endif
