#if NETSTANDARD2_0
// The one-shot ECB/CBC members of .NET 6 (SymmetricAlgorithm.EncryptEcb and friends) over
// .NET Framework's ICryptoTransform.
using System.Security.Cryptography;

namespace PicoHsm.Compat;

internal static class SymmetricExtensions
{
    extension(SymmetricAlgorithm alg)
    {
        public int EncryptEcb(ReadOnlySpan<byte> plaintext, Span<byte> destination, PaddingMode paddingMode) =>
            Transform(alg, encrypt: true, CipherMode.ECB, default, plaintext, destination, paddingMode);

        public int DecryptEcb(ReadOnlySpan<byte> ciphertext, Span<byte> destination, PaddingMode paddingMode) =>
            Transform(alg, encrypt: false, CipherMode.ECB, default, ciphertext, destination, paddingMode);

        public int EncryptCbc(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> iv, Span<byte> destination, PaddingMode paddingMode) =>
            Transform(alg, encrypt: true, CipherMode.CBC, iv, plaintext, destination, paddingMode);

        public int DecryptCbc(ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> iv, Span<byte> destination, PaddingMode paddingMode) =>
            Transform(alg, encrypt: false, CipherMode.CBC, iv, ciphertext, destination, paddingMode);
    }

    private static int Transform(SymmetricAlgorithm alg, bool encrypt, CipherMode mode, ReadOnlySpan<byte> iv,
        ReadOnlySpan<byte> input, Span<byte> destination, PaddingMode padding)
    {
        if (padding != PaddingMode.None) throw new NotSupportedException("Only PaddingMode.None is provided on .NET Framework.");
        int block = alg.BlockSize / 8;
        if (input.Length % block != 0) throw new CryptographicException("The input is not a whole number of blocks.");
        if (destination.Length < input.Length) throw new ArgumentException("The destination is too small.", nameof(destination));
        byte[] key = alg.Key;
        byte[] inBuf = input.ToArray();
        byte[] outBuf = new byte[inBuf.Length];
        try
        {
            using var a = Aes.Create();
            a.Mode = mode;
            a.Padding = PaddingMode.None;
            byte[] ivBytes = mode == CipherMode.CBC ? iv.ToArray() : new byte[block];
            using ICryptoTransform t = encrypt ? a.CreateEncryptor(key, ivBytes) : a.CreateDecryptor(key, ivBytes);
            int n = inBuf.Length == 0 ? 0 : t.TransformBlock(inBuf, 0, inBuf.Length, outBuf, 0);
            outBuf.AsSpan(0, n).CopyTo(destination);
            return n;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(inBuf);
            CryptographicOperations.ZeroMemory(outBuf);
        }
    }
}
#endif
