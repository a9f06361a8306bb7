using System.Buffers.Binary;

namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>
/// The private key inside a SmartCard-HSM key blob, decrypted. Subclasses keep private values in
/// <see cref="PicoHsm.Common.SecretBytes"/>; dispose the object as soon as it is no longer needed.
/// </summary>
public abstract class ScHsmKeyMaterial : IDisposable
{
    protected ScHsmKeyMaterial(int keySize)
    {
        KeySize = keySize;
    }

    /// <summary>The key type byte this material is written with.</summary>
    public abstract ScHsmKeyType KeyType { get; }

    /// <summary>
    /// The key size field of the blob: bits for RSA and EC (the firmware writes the byte length of the
    /// modulus or prime times 8, so P-521 says 528), bytes for AES.
    /// </summary>
    public int KeySize { get; }

    /// <summary>Length of the fields that follow the 2-byte key size in the plaintext.</summary>
    internal abstract int FieldsLength { get; }

    /// <summary>Writes the fields that follow the key size (each length(2) + value, or the raw AES key).</summary>
    internal abstract void WriteFields(Span<byte> destination);

    public abstract void Dispose();

    /// <summary>Reads the fields after the key size; <paramref name="fields"/> may carry padding at its end.</summary>
    internal static ScHsmKeyMaterial ReadFields(ScHsmKeyType type, int keySize, ReadOnlySpan<byte> fields) => type switch
    {
        ScHsmKeyType.Rsa or ScHsmKeyType.RsaCrt => ScHsmRsaKeyMaterial.FromFields(type, keySize, fields),
        ScHsmKeyType.Ec => ScHsmEcKeyMaterial.FromFields(keySize, fields),
        ScHsmKeyType.Aes => ScHsmAesKeyMaterial.FromFields(keySize, fields),
        _ => throw new ScHsmFormatException($"Unknown key type 0x{(byte)type:X2} in the key blob."),
    };

    /// <summary>Reads one length(2) + value field and advances <paramref name="offset"/>.</summary>
    internal static ReadOnlySpan<byte> ReadField(ReadOnlySpan<byte> data, ref int offset, string name)
    {
        if (offset + 2 > data.Length)
            throw new ScHsmFormatException($"The key blob plaintext ends before the length of field '{name}'.");
        int length = BinaryPrimitives.ReadUInt16BigEndian(data[offset..]);
        offset += 2;
        if (offset + length > data.Length)
            throw new ScHsmFormatException($"Field '{name}' of the key blob plaintext is longer than the plaintext.");
        var value = data.Slice(offset, length);
        offset += length;
        return value;
    }

    internal static void WriteField(Span<byte> destination, ref int offset, ReadOnlySpan<byte> value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination[offset..], checked((ushort)value.Length));
        offset += 2;
        value.CopyTo(destination[offset..]);
        offset += value.Length;
    }
}
