using System.Buffers.Binary;
using System.Security.Cryptography;

namespace PicoHsm.Common;

/// <summary>
/// RFC 5649 AES key wrap with padding (PKCS#11's CKM_AES_KEY_WRAP_PAD) and RFC 3394 (CKM_AES_KEY_WRAP), written here over .NET's
/// AES block primitive rather than taken from BouncyCastle: its engine keeps a copy of the key
/// schedule in managed arrays nobody can zero, and the key here is the DKEK. The AES object holds
/// the key only inside the call and is disposed (which clears it) before returning; every working
/// buffer that held key material or plaintext is zeroed.
/// </summary>
public static class AesKeyWrap
{
    private const uint AivPrefix = 0xA65959A6;

    /// <summary>Wraps <paramref name="keyData"/> (1 byte or more) under <paramref name="kek"/> (16, 24 or 32 bytes).</summary>
    public static byte[] WrapPad(ReadOnlySpan<byte> kek, ReadOnlySpan<byte> keyData)
    {
        if (keyData.IsEmpty) throw new ArgumentException("Nothing to wrap.", nameof(keyData));
        // A = AIV (0xA65959A6 || 32-bit length), R = the key padded with zeros to 64-bit blocks.
        return WrapCore(kek, ((ulong)AivPrefix << 32) | (uint)keyData.Length, keyData, (keyData.Length + 7) / 8);
    }

    /// <summary>Unwraps; a wrong key or a changed byte fails the integrity check (CryptographicException).</summary>
    public static byte[] UnwrapPad(ReadOnlySpan<byte> kek, ReadOnlySpan<byte> wrapped)
    {
        if (wrapped.Length < 16 || wrapped.Length % 8 != 0)
            throw new CryptographicException("An RFC 5649 wrapped key is a multiple of 8 bytes, at least 16.");
        int n = wrapped.Length / 8 - 1;
        byte[] work = wrapped.ToArray();
        Span<byte> block = stackalloc byte[16];
        using var aes = CreateAes(kek);
        try
        {
            if (n == 1)
            {
                aes.DecryptEcb(work, work, PaddingMode.None);
            }
            else
            {
                UnwrapRounds(aes, work, n, block);
            }
            // Check the AIV, the length and the zero padding, without branching on secret bytes early.
            uint prefix = BinaryPrimitives.ReadUInt32BigEndian(work);
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(work.AsSpan(4));
            bool ok = prefix == AivPrefix && length > 8 * (n - 1) && length <= 8 * n;
            int pad = 0;
            if (ok)
                for (int i = 8 + length; i < work.Length; i++) pad |= work[i];
            if (!ok || pad != 0)
                throw new CryptographicException("The wrapped key failed its integrity check: wrong key-encryption key, or the data was changed.");
            return work.AsSpan(8, length).ToArray();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(work);
            CryptographicOperations.ZeroMemory(block);
        }
    }

    /// <summary>
    /// RFC 3394 AES key wrap (PKCS#11's CKM_AES_KEY_WRAP: key data a multiple of 8 bytes, 16 or more),
    /// here for the same reason as RFC 5649: no copy of the DKEK's key schedule in a library's managed
    /// arrays.
    /// </summary>
    public static byte[] Wrap(ReadOnlySpan<byte> kek, ReadOnlySpan<byte> keyData)
    {
        if (keyData.Length < 16 || keyData.Length % 8 != 0)
            throw new ArgumentException("RFC 3394 wraps a multiple of 8 bytes, at least 16.", nameof(keyData));
        return WrapCore(kek, DefaultIv, keyData, keyData.Length / 8);
    }

    /// <summary>A || R (the key data, zero-padded to <paramref name="n"/> blocks), wrapped; every working buffer zeroed.</summary>
    private static byte[] WrapCore(ReadOnlySpan<byte> kek, ulong a, ReadOnlySpan<byte> keyData, int n)
    {
        byte[] result = new byte[8 * (n + 1)];
        Span<byte> block = stackalloc byte[16];
        using var aes = CreateAes(kek);
        try
        {
            BinaryPrimitives.WriteUInt64BigEndian(result, a);
            keyData.CopyTo(result.AsSpan(8));
            if (n == 1)
                aes.EncryptEcb(result, result, PaddingMode.None); // one block: a single AES encryption of A || P (RFC 5649 section 4.1)
            else
                WrapRounds(aes, result, n, block);
            return result;
        }
        catch
        {
            CryptographicOperations.ZeroMemory(result);
            throw;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(block);
        }
    }

    /// <summary>RFC 3394 unwrap; a wrong key or a changed byte fails the integrity check (CryptographicException).</summary>
    public static byte[] Unwrap(ReadOnlySpan<byte> kek, ReadOnlySpan<byte> wrapped)
    {
        if (wrapped.Length < 24 || wrapped.Length % 8 != 0)
            throw new CryptographicException("An RFC 3394 wrapped key is a multiple of 8 bytes, at least 24.");
        int n = wrapped.Length / 8 - 1;
        byte[] work = wrapped.ToArray();
        Span<byte> block = stackalloc byte[16];
        using var aes = CreateAes(kek);
        try
        {
            UnwrapRounds(aes, work, n, block);
            if (BinaryPrimitives.ReadUInt64BigEndian(work) != DefaultIv)
                throw new CryptographicException("The wrapped key failed its integrity check: wrong key-encryption key, or the data was changed.");
            return work.AsSpan(8).ToArray();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(work);
            CryptographicOperations.ZeroMemory(block);
        }
    }

    /// <summary>The six rounds of RFC 3394 section 2.2.1 over A || R[1..n] in place (RFC 5649 uses them too).</summary>
    private static void WrapRounds(Aes aes, byte[] data, int n, Span<byte> block)
    {
        for (int j = 0; j <= 5; j++)
        {
            for (int i = 1; i <= n; i++)
            {
                data.AsSpan(0, 8).CopyTo(block);
                data.AsSpan(8 * i, 8).CopyTo(block[8..]);
                aes.EncryptEcb(block, block, PaddingMode.None);
                ulong t = (ulong)(n * j + i);
                BinaryPrimitives.WriteUInt64BigEndian(data, BinaryPrimitives.ReadUInt64BigEndian(block) ^ t);
                block[8..].CopyTo(data.AsSpan(8 * i, 8));
            }
        }
    }

    /// <summary>The inverse rounds (RFC 3394 section 2.2.2), in place.</summary>
    private static void UnwrapRounds(Aes aes, byte[] data, int n, Span<byte> block)
    {
        for (int j = 5; j >= 0; j--)
        {
            for (int i = n; i >= 1; i--)
            {
                ulong t = (ulong)(n * j + i);
                BinaryPrimitives.WriteUInt64BigEndian(block, BinaryPrimitives.ReadUInt64BigEndian(data) ^ t);
                data.AsSpan(8 * i, 8).CopyTo(block[8..]);
                aes.DecryptEcb(block, block, PaddingMode.None);
                block[..8].CopyTo(data);
                block[8..].CopyTo(data.AsSpan(8 * i, 8));
            }
        }
    }

    /// <summary>RFC 3394's default initial value, A6A6A6A6A6A6A6A6.</summary>
    private const ulong DefaultIv = 0xA6A6A6A6A6A6A6A6;

    private static Aes CreateAes(ReadOnlySpan<byte> kek)
    {
        if (kek.Length is not (16 or 24 or 32)) throw new ArgumentException("An AES key is 16, 24 or 32 bytes.", nameof(kek));
        var aes = Aes.Create();
        byte[] k = kek.ToArray();
        try
        {
            aes.Key = k; // .NET copies the key into the native context; Dispose clears it
        }
        finally
        {
            CryptographicOperations.ZeroMemory(k);
        }
        return aes;
    }
}
