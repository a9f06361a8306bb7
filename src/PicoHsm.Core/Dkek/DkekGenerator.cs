using System.Security.Cryptography;
using PicoHsm.Common;

namespace PicoHsm.Dkek;

/// <summary>
/// Makes DKEKs and random bytes for Shamir coefficients from two sources XORed together: the
/// token's RNG (C_GenerateRandom) and the operating system's CSPRNG. The XOR of two independent
/// sources is at least as unpredictable as the better one, so neither a backdoored/weak token RNG
/// nor a weak host RNG alone compromises the DKEK.
/// </summary>
public static class DkekGenerator
{
    public const int DkekLength = 32;

    /// <summary>
    /// A new 32-byte DKEK. <paramref name="tokenRandom"/> returns that many random bytes from the
    /// token (null: OS RNG only). Its arrays are zeroed after use.
    /// </summary>
    public static SecretBytes Create(Func<int, byte[]>? tokenRandom)
    {
        var dkek = new SecretBytes(DkekLength);
        try
        {
            MixedRandom(tokenRandom)(dkek.Span);
            return dkek;
        }
        catch
        {
            dkek.Dispose();
            throw;
        }
    }

    /// <summary>A <see cref="SpanFiller"/> giving OS random bytes XOR token random bytes (OS only when null).</summary>
    public static SpanFiller MixedRandom(Func<int, byte[]>? tokenRandom) => destination =>
    {
        RandomNumberGenerator.Fill(destination);
        if (tokenRandom is null || destination.IsEmpty) return;
        byte[] fromToken = tokenRandom(destination.Length)
            ?? throw new InvalidOperationException("The token random source returned nothing.");
        try
        {
            if (fromToken.Length != destination.Length)
                throw new InvalidOperationException($"The token random source returned {fromToken.Length} bytes instead of {destination.Length}.");
            for (int i = 0; i < destination.Length; i++)
                destination[i] ^= fromToken[i];
        }
        finally
        {
            CryptographicOperations.ZeroMemory(fromToken);
        }
    };
}
