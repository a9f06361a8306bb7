using System.Buffers.Binary;
using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>
/// A SmartCard-HSM key blob: the answer of WRAP KEY and the data of UNWRAP KEY.
/// <code>
/// KCV (8) | key type (1) | default algorithm: len(2) + OID | allowed algorithms: len(2) + list
///   | access conditions: len(2) + value | key OID: len(2) + value
///   | AES-256-CBC(Kenc, IV 0) of [random (8) | key size (2) | key fields | padding]
///   | AES-CMAC(Kmac) (16) of everything before it
/// </code>
/// Kenc = SHA-256(DKEK | 00000001), Kmac = SHA-256(DKEK | 00000002). Padding is ISO 9797-1 method 2
/// (80 00 ..), but the Pico adds nothing when the plaintext is already a multiple of 16; readers go by
/// the field lengths. The header can be read without the DKEK; decrypting needs it.
/// </summary>
public sealed class ScHsmKeyBlob
{
    private const int KcvLength = 8;
    private const int RandomLength = 8;
    private const int MacLength = AesCmac.MacLength;

    /// <summary>Default algorithm the firmware writes for RSA keys (04 00 7F 00 07 02 02 02 01 02, id-TA-RSA-v1-5-SHA-256).</summary>
    public static ReadOnlySpan<byte> RsaAlgorithmOid => [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x01, 0x02];
    /// <summary>Default algorithm the firmware writes for EC keys (04 00 7F 00 07 02 02 02 02 03, id-TA-ECDSA-SHA-256).</summary>
    public static ReadOnlySpan<byte> EcAlgorithmOid => [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x02, 0x03];
    /// <summary>Default algorithm the firmware writes for AES keys (2.16.840.1.101.3.4.1, aes).</summary>
    public static ReadOnlySpan<byte> AesAlgorithmOid => [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01];

    private readonly byte[] _bytes;

    private ScHsmKeyBlob(byte[] bytes, byte[] defaultAlgorithm, byte[] allowedAlgorithms, byte[] accessConditions,
        byte[] keyOid, int headerLength)
    {
        _bytes = bytes;
        DefaultAlgorithm = defaultAlgorithm;
        AllowedAlgorithms = allowedAlgorithms;
        AccessConditions = accessConditions;
        KeyOid = keyOid;
        HeaderLength = headerLength;
    }

    /// <summary>The blob's bytes (a copy).</summary>
    public byte[] ToArray() => (byte[])_bytes.Clone();

    public int Length => _bytes.Length;

    /// <summary>Key check value of the DKEK the blob is encrypted under.</summary>
    public byte[] Kcv => _bytes[..KcvLength];
    public string KcvHex => KeyCheckValue.ToHex(_bytes.AsSpan(0, KcvLength));
    public ScHsmKeyType KeyType => (ScHsmKeyType)_bytes[KcvLength];
    /// <summary>The module's kind of key: both RSA forms are <see cref="KeyKind.Rsa"/>.</summary>
    public KeyKind Kind => KeyType switch
    {
        ScHsmKeyType.Rsa or ScHsmKeyType.RsaCrt => KeyKind.Rsa,
        ScHsmKeyType.Ec => KeyKind.Ec,
        _ => KeyKind.Aes,
    };
    /// <summary>Value of the default algorithm OID field (without its length).</summary>
    public byte[] DefaultAlgorithm { get; }
    /// <summary>The allowed algorithms list (algorithm ids, e.g. 0x92 wrap) as the card stored it; often empty.</summary>
    public byte[] AllowedAlgorithms { get; }
    public byte[] AccessConditions { get; }
    public byte[] KeyOid { get; }
    /// <summary>Bytes before the ciphertext: 27 for the firmware's RSA/EC blobs, 25 for AES.</summary>
    public int HeaderLength { get; }
    public ReadOnlySpan<byte> Ciphertext => _bytes.AsSpan(HeaderLength, _bytes.Length - HeaderLength - MacLength);
    public ReadOnlySpan<byte> Mac => _bytes.AsSpan(_bytes.Length - MacLength);

    /// <summary>
    /// True when the default algorithm is the one the Pico HSM firmware demands for the key type on
    /// UNWRAP KEY (it answers a wrong-data error otherwise): RSA 04 00 7F 00 07 02 02 02 01 02,
    /// EC 04 00 7F 00 07 02 02 02 02 03, AES 60 86 48 01 65 03 04 01.
    /// </summary>
    public bool HasPicoDefaultAlgorithm => KeyType switch
    {
        ScHsmKeyType.Rsa or ScHsmKeyType.RsaCrt => DefaultAlgorithm.AsSpan().SequenceEqual(RsaAlgorithmOid),
        ScHsmKeyType.Ec => DefaultAlgorithm.AsSpan().SequenceEqual(EcAlgorithmOid),
        _ => DefaultAlgorithm.AsSpan().SequenceEqual(AesAlgorithmOid),
    };

    public static ScHsmKeyBlob Parse(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Parse((ReadOnlySpan<byte>)bytes);
    }

    public static ScHsmKeyBlob Parse(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < KcvLength + 1 + 8 + 16 + MacLength)
            throw new ScHsmFormatException($"{bytes.Length} bytes is too short for a key blob.");
        var type = (ScHsmKeyType)bytes[KcvLength];
        if (!Enum.IsDefined(type))
            throw new ScHsmFormatException($"Unknown key type 0x{bytes[KcvLength]:X2} in the key blob (expected 05, 06, 0C or 0F).");
        int offset = KcvLength + 1;
        var limit = bytes[..^MacLength];
        var defaultAlgorithm = HeaderField(limit, ref offset, "default algorithm");
        var allowed = HeaderField(limit, ref offset, "allowed algorithms");
        var access = HeaderField(limit, ref offset, "access conditions");
        var keyOid = HeaderField(limit, ref offset, "key OID");
        int cipherLength = bytes.Length - MacLength - offset;
        if (cipherLength <= 0 || cipherLength % 16 != 0)
            throw new ScHsmFormatException("The key blob's encrypted part is not a whole number of AES blocks.");
        return new ScHsmKeyBlob(bytes.ToArray(), defaultAlgorithm, allowed, access, keyOid, offset);
    }

    /// <summary>True when the blob's KCV is the KCV of <paramref name="dkek"/>.</summary>
    public bool IsFor(ReadOnlySpan<byte> dkek) =>
        CryptographicOperations.FixedTimeEquals(KeyCheckValue.Compute(dkek), _bytes.AsSpan(0, KcvLength));

    /// <summary>True when the CMAC verifies under Kmac of <paramref name="dkek"/>.</summary>
    public bool VerifyMac(ReadOnlySpan<byte> dkek)
    {
        Span<byte> kmac = stackalloc byte[32];
        try
        {
            DeriveKey(dkek, 2, kmac);
            return AesCmac.Verify(kmac, _bytes.AsSpan(0, _bytes.Length - MacLength), Mac);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(kmac);
        }
    }

    /// <summary>Checks KCV and CMAC, then decrypts the key.</summary>
    /// <exception cref="ScHsmWrongDkekException">The blob belongs to another DKEK, or it was altered.</exception>
    public ScHsmKeyMaterial Decrypt(ReadOnlySpan<byte> dkek) => Decrypt(dkek, Span<byte>.Empty);

    /// <summary>
    /// As <see cref="Decrypt(ReadOnlySpan{byte})"/>, and copies the blob's 8 random leading plaintext bytes into
    /// <paramref name="randomPrefix"/> (if it is 8 bytes long), so the same blob can be built again.
    /// </summary>
    public ScHsmKeyMaterial Decrypt(ReadOnlySpan<byte> dkek, Span<byte> randomPrefix)
    {
        if (!randomPrefix.IsEmpty && randomPrefix.Length != RandomLength)
            throw new ArgumentException("The random prefix is 8 bytes.", nameof(randomPrefix));
        if (!IsFor(dkek))
            throw new ScHsmWrongDkekException(
                $"The key blob is for the DKEK with KCV {KcvHex}, not for the DKEK given (KCV {KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek))}).");
        if (!VerifyMac(dkek))
            throw new ScHsmWrongDkekException("The key blob's CMAC does not verify: the blob was altered or damaged.");

        Span<byte> kenc = stackalloc byte[32];
        using var plain = new SecretBytes(Ciphertext.Length);
        try
        {
            DeriveKey(dkek, 1, kenc);
            using (var aes = AesKeyed.Create(kenc))
                aes.DecryptCbc(Ciphertext, stackalloc byte[16], plain.Span, PaddingMode.None);
            if (!randomPrefix.IsEmpty) plain.Span[..RandomLength].CopyTo(randomPrefix);
            int keySize = BinaryPrimitives.ReadUInt16BigEndian(plain.Span[RandomLength..]);
            return ScHsmKeyMaterial.ReadFields(KeyType, keySize, plain.Span[(RandomLength + 2)..]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(kenc);
        }
    }

    /// <summary>
    /// Builds a blob the way the Pico HSM firmware does. Null header fields take the firmware's values
    /// (default algorithm by key type, the others empty). <paramref name="randomPrefix"/> is random unless
    /// given (give the one from <see cref="Decrypt(ReadOnlySpan{byte}, Span{byte})"/> to rebuild a blob exactly).
    /// </summary>
    public static ScHsmKeyBlob Build(ReadOnlySpan<byte> dkek, ScHsmKeyMaterial material,
        byte[]? allowedAlgorithms = null, byte[]? randomPrefix = null, byte[]? defaultAlgorithm = null,
        byte[]? accessConditions = null, byte[]? keyOid = null)
    {
        ArgumentNullException.ThrowIfNull(material);
        if (dkek.Length != 32) throw new ArgumentException("A DKEK is 32 bytes.", nameof(dkek));
        if (randomPrefix is not null && randomPrefix.Length != RandomLength)
            throw new ArgumentException("The random prefix is 8 bytes.", nameof(randomPrefix));
        defaultAlgorithm ??= material.KeyType switch
        {
            ScHsmKeyType.Rsa or ScHsmKeyType.RsaCrt => RsaAlgorithmOid.ToArray(),
            ScHsmKeyType.Ec => EcAlgorithmOid.ToArray(),
            _ => AesAlgorithmOid.ToArray(),
        };
        allowedAlgorithms ??= [];
        accessConditions ??= [];
        keyOid ??= [];

        int plainLength = RandomLength + 2 + material.FieldsLength;
        int paddedLength = (plainLength + 15) / 16 * 16;  // Pico: no extra block when already aligned
        int headerLength = KcvLength + 1 + 8 + defaultAlgorithm.Length + allowedAlgorithms.Length
                           + accessConditions.Length + keyOid.Length;
        var blob = new byte[headerLength + paddedLength + MacLength];

        KeyCheckValue.Compute(dkek).CopyTo(blob, 0);
        blob[KcvLength] = (byte)material.KeyType;
        int offset = KcvLength + 1;
        ScHsmKeyMaterial.WriteField(blob, ref offset, defaultAlgorithm);
        ScHsmKeyMaterial.WriteField(blob, ref offset, allowedAlgorithms);
        ScHsmKeyMaterial.WriteField(blob, ref offset, accessConditions);
        ScHsmKeyMaterial.WriteField(blob, ref offset, keyOid);

        Span<byte> key = stackalloc byte[32];
        using var plain = new SecretBytes(paddedLength);
        try
        {
            var p = plain.Span;
            if (randomPrefix is null) RandomNumberGenerator.Fill(p[..RandomLength]);
            else randomPrefix.CopyTo(p);
            BinaryPrimitives.WriteUInt16BigEndian(p[RandomLength..], checked((ushort)material.KeySize));
            material.WriteFields(p.Slice(RandomLength + 2, material.FieldsLength));
            if (plainLength < paddedLength) p[plainLength] = 0x80;   // rest is already zero

            DeriveKey(dkek, 1, key);
            using (var aes = AesKeyed.Create(key))
                aes.EncryptCbc(p, stackalloc byte[16], blob.AsSpan(headerLength, paddedLength), PaddingMode.None);

            DeriveKey(dkek, 2, key);
            AesCmac.Compute(key, blob.AsSpan(0, headerLength + paddedLength), blob.AsSpan(headerLength + paddedLength));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
        return Parse(blob);
    }

    /// <summary>SHA-256(DKEK | counter as 4 bytes big-endian): 1 gives Kenc, 2 gives Kmac.</summary>
    private static void DeriveKey(ReadOnlySpan<byte> dkek, int counter, Span<byte> key)
    {
        if (dkek.Length != 32) throw new ArgumentException("A DKEK is 32 bytes.", nameof(dkek));
        Span<byte> input = stackalloc byte[36];
        dkek.CopyTo(input);
        BinaryPrimitives.WriteInt32BigEndian(input[32..], counter);
        SHA256.HashData(input, key);
        CryptographicOperations.ZeroMemory(input);
    }

    private static byte[] HeaderField(ReadOnlySpan<byte> bytes, ref int offset, string name)
    {
        if (offset + 2 > bytes.Length)
            throw new ScHsmFormatException($"The key blob ends before its {name} field.");
        int length = BinaryPrimitives.ReadUInt16BigEndian(bytes[offset..]);
        offset += 2;
        if (offset + length > bytes.Length)
            throw new ScHsmFormatException($"The key blob's {name} field is longer than the blob.");
        var value = bytes.Slice(offset, length).ToArray();
        offset += length;
        return value;
    }
}
