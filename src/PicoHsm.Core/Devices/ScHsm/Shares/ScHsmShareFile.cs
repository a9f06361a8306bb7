using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Devices.ScHsm.Shares;

/// <summary>
/// A DKEK share file as written by <c>sc-hsm-tool --create-dkek-share</c> (64 bytes):
/// <c>"Salted__"</c> | salt (8) | AES-256-CBC ciphertext (48) of the 32-byte share plus one full
/// PKCS#7 block. Key and IV come from OpenSSL's EVP_BytesToKey(MD5, salt, password, 10,000,000).
/// This is the OpenSSL "enc" layout, but with a count plain <c>openssl enc</c> cannot set.
/// </summary>
public sealed class ScHsmShareFile
{
    public const int FileLength = 64;
    public const int ShareLength = 32;
    public const int SaltLength = 8;
    /// <summary>sc-hsm-tool's fixed iteration count (its <c>--iterations</c> default).</summary>
    public const int DefaultIterations = 10_000_000;

    private static ReadOnlySpan<byte> Magic => "Salted__"u8;

    private readonly byte[] _salt;
    private readonly byte[] _ciphertext;

    private ScHsmShareFile(byte[] salt, byte[] ciphertext)
    {
        _salt = salt;
        _ciphertext = ciphertext;
    }

    public ReadOnlySpan<byte> Salt => _salt;
    public ReadOnlySpan<byte> Ciphertext => _ciphertext;

    public static ScHsmShareFile Read(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Read((ReadOnlySpan<byte>)bytes);
    }

    public static ScHsmShareFile Read(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != FileLength)
            throw new ScHsmFormatException($"A DKEK share file is {FileLength} bytes; this one has {bytes.Length}.");
        if (!bytes[..8].SequenceEqual(Magic))
            throw new ScHsmFormatException("Not a DKEK share file: it does not start with \"Salted__\".");
        return new ScHsmShareFile(bytes.Slice(8, SaltLength).ToArray(), bytes[16..].ToArray());
    }

    /// <summary>A warning when the file can be read by others (see <see cref="global::PicoHsm.Dkek.DkekShareFile.PermissionWarning"/>).</summary>
    public static string? PermissionWarning(string path) => global::PicoHsm.Dkek.DkekShareFile.PermissionWarning(path);

    public static ScHsmShareFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var info = new FileInfo(path);
        if (info.Exists && info.Length != FileLength)
            throw new ScHsmFormatException($"A DKEK share file is {FileLength} bytes; '{path}' has {info.Length}.");
        return Read(File.ReadAllBytes(path));
    }

    /// <summary>The 64 bytes of the file.</summary>
    public byte[] ToArray()
    {
        var bytes = new byte[FileLength];
        Magic.CopyTo(bytes);
        _salt.CopyTo(bytes, 8);
        _ciphertext.CopyTo(bytes, 16);
        return bytes;
    }

    /// <summary>
    /// Decrypts the share. <paramref name="password"/> is the password's bytes exactly as sc-hsm-tool
    /// got them (the typed text's bytes, or the 8 bytes rebuilt from threshold shares).
    /// </summary>
    /// <exception cref="ScHsmWrongPasswordException">The padding block is not 16 x 0x10: wrong password.</exception>
    public SecretBytes Decrypt(ReadOnlySpan<byte> password, int iterations = DefaultIterations, CancellationToken cancellation = default)
    {
        Span<byte> keyIv = stackalloc byte[48];
        var plain = new SecretBytes(48);
        try
        {
            OpenSslKeyDerivation.EvpBytesToKeyMd5(password, _salt, iterations, keyIv, cancellation);
            using (var aes = AesKeyed.Create(keyIv[..32]))
                aes.DecryptCbc(_ciphertext, keyIv[32..], plain.Span, PaddingMode.None);
            // sc-hsm-tool encrypts exactly 32 bytes, so PKCS#7 always adds one full block of 0x10.
            // Any other last block means the key was wrong (there is no MAC in this format).
            if (plain.Span[ShareLength..].IndexOfAnyExcept((byte)0x10) >= 0)
                throw new ScHsmWrongPasswordException(
                    "The DKEK share file did not decrypt (bad padding): the password is wrong or the file is damaged.");
            return SecretBytes.CopyOf(plain.Span[..ShareLength]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(keyIv);
            plain.Dispose();
        }
    }

    /// <summary>
    /// Makes the 64 bytes of a share file that sc-hsm-tool can import. The salt is random unless given.
    /// </summary>
    public static byte[] Create(ReadOnlySpan<byte> share, ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt = default,
        int iterations = DefaultIterations, CancellationToken cancellation = default)
    {
        if (share.Length != ShareLength)
            throw new ArgumentException($"A DKEK share is {ShareLength} bytes.", nameof(share));
        if (!salt.IsEmpty && salt.Length != SaltLength)
            throw new ArgumentException($"The salt is {SaltLength} bytes.", nameof(salt));

        var file = new byte[FileLength];
        Magic.CopyTo(file);
        if (salt.IsEmpty) RandomNumberGenerator.Fill(file.AsSpan(8, SaltLength));
        else salt.CopyTo(file.AsSpan(8));

        Span<byte> keyIv = stackalloc byte[48];
        using var plain = new SecretBytes(48);
        try
        {
            OpenSslKeyDerivation.EvpBytesToKeyMd5(password, file.AsSpan(8, SaltLength), iterations, keyIv, cancellation);
            share.CopyTo(plain.Span);
            plain.Span[ShareLength..].Fill(0x10);
            using var aes = AesKeyed.Create(keyIv[..32]);
            aes.EncryptCbc(plain.Span, keyIv[32..], file.AsSpan(16), PaddingMode.None);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(keyIv);
        }
        return file;
    }

    /// <summary>The AES-256 key and IV sc-hsm-tool derives from a password and salt (exposed for checks).</summary>
    public static void DeriveKeyAndIv(ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt, Span<byte> key, Span<byte> iv,
        int iterations = DefaultIterations)
    {
        if (key.Length != 32 || iv.Length != 16) throw new ArgumentException("Key is 32 bytes and IV 16.");
        Span<byte> keyIv = stackalloc byte[48];
        OpenSslKeyDerivation.EvpBytesToKeyMd5(password, salt, iterations, keyIv);
        keyIv[..32].CopyTo(key);
        keyIv[32..].CopyTo(iv);
        CryptographicOperations.ZeroMemory(keyIv);
    }
}
