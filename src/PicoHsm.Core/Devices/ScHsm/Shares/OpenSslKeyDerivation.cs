using System.Security.Cryptography;

namespace PicoHsm.Devices.ScHsm.Shares;

/// <summary>
/// OpenSSL's legacy EVP_BytesToKey with MD5, as sc-hsm-tool calls it for DKEK share files:
/// D_1 = MD5^count(password || salt), D_i = MD5^count(D_(i-1) || password || salt), and the output
/// is D_1 || D_2 || ... cut to the length asked (key then IV). MD5^count means the first MD5 over
/// the input followed by count-1 MD5 over the previous 16-byte digest.
/// </summary>
public static class OpenSslKeyDerivation
{
    public static void EvpBytesToKeyMd5(ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt, int count, Span<byte> output,
        CancellationToken cancellation = default)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), "The iteration count is at least 1.");
        if (salt.Length != 0 && salt.Length != 8) throw new ArgumentException("An OpenSSL salt is 8 bytes.", nameof(salt));

        using var md5 = IncrementalHash.CreateHash(HashAlgorithmName.MD5);
        Span<byte> digest = stackalloc byte[16];
        try
        {
            int produced = 0;
            bool first = true;
            while (produced < output.Length)
            {
                if (!first) md5.AppendData(digest);
                md5.AppendData(password);
                md5.AppendData(salt);
                md5.GetHashAndReset(digest);
                Md5Iteration.Apply(digest, count - 1, cancellation);
                int take = Math.Min(16, output.Length - produced);
                digest[..take].CopyTo(output[produced..]);
                produced += take;
                first = false;
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(digest);
        }
    }
}
