using System.Security.Cryptography;

namespace PicoHsm.Common;

/// <summary>
/// Creates an <see cref="Aes"/> with a key from a span, zeroing the temporary array the property
/// setter needs (Aes keeps its own copy and clears it when disposed).
/// </summary>
internal static class AesKeyed
{
    public static Aes Create(ReadOnlySpan<byte> key)
    {
        var aes = Aes.Create();
        byte[] temp = key.ToArray();
        try
        {
            aes.Key = temp;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(temp);
        }
        return aes;
    }
}
