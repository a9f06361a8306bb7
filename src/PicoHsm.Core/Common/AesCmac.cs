using System.Security.Cryptography;

namespace PicoHsm.Common;

/// <summary>
/// AES-CMAC (NIST SP 800-38B, RFC 4493), written here on top of the platform AES so the MAC key
/// stays in buffers we clear, rather than in a library's key object.
/// </summary>
internal static class AesCmac
{
    public const int MacLength = 16;

    public static void Compute(ReadOnlySpan<byte> key, ReadOnlySpan<byte> message, Span<byte> mac)
    {
        if (mac.Length != MacLength) throw new ArgumentException("A CMAC is 16 bytes.", nameof(mac));
        using var aes = AesKeyed.Create(key);
        Span<byte> k1 = stackalloc byte[16], k2 = stackalloc byte[16], last = stackalloc byte[16], x = stackalloc byte[16];
        try
        {
            // Subkeys: L = AES(0), K1 = L·x, K2 = K1·x in GF(2^128).
            x.Clear();
            aes.EncryptEcb(x, x, PaddingMode.None);
            DoubleInField(x, k1);
            DoubleInField(k1, k2);

            int blocks = Math.Max(1, (message.Length + 15) / 16);
            bool complete = message.Length > 0 && message.Length % 16 == 0;
            int lastStart = (blocks - 1) * 16;
            var tail = message[lastStart..];
            if (complete)
            {
                for (int i = 0; i < 16; i++) last[i] = (byte)(tail[i] ^ k1[i]);
            }
            else
            {
                last.Clear();
                tail.CopyTo(last);
                last[tail.Length] = 0x80;
                for (int i = 0; i < 16; i++) last[i] ^= k2[i];
            }

            // CBC-MAC over the full blocks before the last one: the last CBC block is the chaining value.
            x.Clear();
            if (lastStart > 0)
            {
                byte[] chain = new byte[lastStart];
                aes.EncryptCbc(message[..lastStart], x, chain, PaddingMode.None);
                chain.AsSpan(lastStart - 16).CopyTo(x);
                CryptographicOperations.ZeroMemory(chain);
            }
            for (int i = 0; i < 16; i++) x[i] ^= last[i];
            aes.EncryptEcb(x, mac, PaddingMode.None);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(k1);
            CryptographicOperations.ZeroMemory(k2);
            CryptographicOperations.ZeroMemory(last);
            CryptographicOperations.ZeroMemory(x);
        }
    }

    public static bool Verify(ReadOnlySpan<byte> key, ReadOnlySpan<byte> message, ReadOnlySpan<byte> expected)
    {
        Span<byte> mac = stackalloc byte[MacLength];
        Compute(key, message, mac);
        return expected.Length == MacLength && CryptographicOperations.FixedTimeEquals(mac, expected);
    }

    private static void DoubleInField(ReadOnlySpan<byte> input, Span<byte> output)
    {
        int carry = input[0] >> 7;
        for (int i = 0; i < 15; i++) output[i] = (byte)((input[i] << 1) | (input[i + 1] >> 7));
        output[15] = (byte)((input[15] << 1) ^ (carry * 0x87));
    }
}
