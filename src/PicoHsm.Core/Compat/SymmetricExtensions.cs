#if NETSTANDARD2_0
// The one-shot ECB/CBC members of .NET 6 (SymmetricAlgorithm.EncryptEcb and friends) over
// .NET Framework's ICryptoTransform.
using System.Security.Cryptography;

namespace PicoHsm.Compat;

internal static class SymmetricExtensions
{
    extension(SymmetricAlgorithm alg)
    {
        public byte[] EncryptCbc(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> iv, PaddingMode paddingMode = PaddingMode.PKCS7) => OneShot(alg, true, CipherMode.CBC, iv, plaintext, paddingMode);
        public byte[] DecryptCbc(ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> iv, PaddingMode paddingMode = PaddingMode.PKCS7) => OneShot(alg, false, CipherMode.CBC, iv, ciphertext, paddingMode);
        public byte[] EncryptEcb(ReadOnlySpan<byte> plaintext, PaddingMode paddingMode) => OneShot(alg, true, CipherMode.ECB, default, plaintext, paddingMode);
        public byte[] DecryptEcb(ReadOnlySpan<byte> ciphertext, PaddingMode paddingMode) => OneShot(alg, false, CipherMode.ECB, default, ciphertext, paddingMode);

        public int EncryptEcb(ReadOnlySpan<byte> plaintext, Span<byte> destination, PaddingMode paddingMode = PaddingMode.PKCS7) =>
            Transform(alg, encrypt: true, CipherMode.ECB, default, plaintext, destination, paddingMode);

        public int DecryptEcb(ReadOnlySpan<byte> ciphertext, Span<byte> destination, PaddingMode paddingMode = PaddingMode.PKCS7) =>
            Transform(alg, encrypt: false, CipherMode.ECB, default, ciphertext, destination, paddingMode);

        public int EncryptCbc(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> iv, Span<byte> destination, PaddingMode paddingMode = PaddingMode.PKCS7) =>
            Transform(alg, encrypt: true, CipherMode.CBC, iv, plaintext, destination, paddingMode);

        public int DecryptCbc(ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> iv, Span<byte> destination, PaddingMode paddingMode = PaddingMode.PKCS7) =>
            Transform(alg, encrypt: false, CipherMode.CBC, iv, ciphertext, destination, paddingMode);
    }

    private static byte[] OneShot(SymmetricAlgorithm alg, bool encrypt, CipherMode mode, ReadOnlySpan<byte> iv, ReadOnlySpan<byte> input, PaddingMode padding)
    {
        byte[] buf = new byte[input.Length + alg.BlockSize / 8];
        int n = Transform(alg, encrypt, mode, iv, input, buf, padding);
        return buf.AsSpan(0, n).ToArray();
    }

    private static int Transform(SymmetricAlgorithm alg, bool encrypt, CipherMode mode, ReadOnlySpan<byte> iv,
        ReadOnlySpan<byte> input, Span<byte> destination, PaddingMode padding)
    {
        int block = alg.BlockSize / 8;
        byte[] key = alg.Key;
        byte[] inBuf = input.ToArray();
        byte[] outBuf = [];
        try
        {
            using var a = Aes.Create();
            a.Mode = mode;
            a.Padding = padding;
            byte[] ivBytes = mode == CipherMode.CBC ? iv.ToArray() : new byte[block];
            using ICryptoTransform t = encrypt ? a.CreateEncryptor(key, ivBytes) : a.CreateDecryptor(key, ivBytes);
            outBuf = t.TransformFinalBlock(inBuf, 0, inBuf.Length);
            if (destination.Length < outBuf.Length) throw new ArgumentException("The destination is too small.", nameof(destination));
            outBuf.CopyTo(destination);
            return outBuf.Length;
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
