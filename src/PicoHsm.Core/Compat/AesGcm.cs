#if NETSTANDARD2_0
// .NET Framework has no AES-GCM: this look-alike of System.Security.Cryptography.AesGcm (the
// members the core uses, same argument order and exceptions) runs BouncyCastle's GCM.
using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Modes;
using Org.BouncyCastle.Crypto.Parameters;

namespace PicoHsm.Compat;

internal sealed class AesGcm : IDisposable
{
    private readonly byte[] _key;
    private readonly int _tagSize;

    public AesGcm(ReadOnlySpan<byte> key, int tagSizeInBytes)
    {
        if (key.Length is not (16 or 24 or 32)) throw new CryptographicException("The AES key must be 16, 24 or 32 bytes.");
        if (tagSizeInBytes is < 12 or > 16) throw new ArgumentException("The GCM tag must be 12 to 16 bytes.", nameof(tagSizeInBytes));
        _key = key.ToArray();
        _tagSize = tagSizeInBytes;
    }

    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag, ReadOnlySpan<byte> associatedData = default)
    {
        if (ciphertext.Length != plaintext.Length) throw new ArgumentException("The ciphertext must be as long as the plaintext.", nameof(ciphertext));
        if (tag.Length != _tagSize) throw new ArgumentException("The tag has the wrong length.", nameof(tag));
        var gcm = Cipher(true, nonce, associatedData);
        byte[] output = new byte[plaintext.Length + _tagSize];
        byte[] input = plaintext.ToArray();
        try
        {
            int n = gcm.ProcessBytes(input, 0, input.Length, output, 0);
            gcm.DoFinal(output, n);
            output.AsSpan(0, plaintext.Length).CopyTo(ciphertext);
            output.AsSpan(plaintext.Length, _tagSize).CopyTo(tag);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(input);
            CryptographicOperations.ZeroMemory(output);
        }
    }

    public void Decrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext, ReadOnlySpan<byte> associatedData = default)
    {
        if (ciphertext.Length != plaintext.Length) throw new ArgumentException("The plaintext must be as long as the ciphertext.", nameof(plaintext));
        if (tag.Length != _tagSize) throw new ArgumentException("The tag has the wrong length.", nameof(tag));
        var gcm = Cipher(false, nonce, associatedData);
        byte[] input = new byte[ciphertext.Length + _tagSize];
        ciphertext.CopyTo(input);
        tag.CopyTo(input.AsSpan(ciphertext.Length));
        byte[] output = new byte[ciphertext.Length];
        try
        {
            int n = gcm.ProcessBytes(input, 0, input.Length, output, 0);
            gcm.DoFinal(output, n);
            output.CopyTo(plaintext);
        }
        catch (Org.BouncyCastle.Crypto.InvalidCipherTextException)
        {
            plaintext.Clear();
            throw new AuthenticationTagMismatchException();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(output);
        }
    }

    private GcmBlockCipher Cipher(bool encrypt, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> associatedData)
    {
        var gcm = new GcmBlockCipher(new AesEngine());
        gcm.Init(encrypt, new AeadParameters(new KeyParameter(_key), _tagSize * 8, nonce.ToArray(), associatedData.ToArray()));
        return gcm;
    }

    public void Dispose() => CryptographicOperations.ZeroMemory(_key);
}

/// <summary>The exception .NET's AesGcm.Decrypt throws when the tag does not match.</summary>
internal sealed class AuthenticationTagMismatchException : CryptographicException
{
    public AuthenticationTagMismatchException() : base("The computed authentication tag did not match the input authentication tag.") { }
}
#endif
