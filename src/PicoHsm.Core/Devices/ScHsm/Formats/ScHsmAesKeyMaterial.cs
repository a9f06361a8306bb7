using PicoHsm.Common;

namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>An AES key from a key blob (type 0x0F): the raw key follows the size field, no length prefix.</summary>
public sealed class ScHsmAesKeyMaterial : ScHsmKeyMaterial
{
    private ScHsmAesKeyMaterial(SecretBytes key) : base(key.Length)
    {
        Key = key;
    }

    public override ScHsmKeyType KeyType => ScHsmKeyType.Aes;

    /// <summary>The raw key (16, 24, 32 or 64 bytes: the Pico also has "AES-512", for XTS).</summary>
    public SecretBytes Key { get; }

    /// <summary>Copies the key; the caller still owns (and should zero) <paramref name="key"/>.</summary>
    public static ScHsmAesKeyMaterial FromKey(ReadOnlySpan<byte> key)
    {
        if (key.Length is not (16 or 24 or 32 or 64))
            throw new ArgumentException("An AES key for the SmartCard-HSM is 16, 24, 32 or 64 bytes.", nameof(key));
        return new ScHsmAesKeyMaterial(SecretBytes.CopyOf(key));
    }

    internal override int FieldsLength => Key.Length;

    internal override void WriteFields(Span<byte> destination) => Key.Span.CopyTo(destination);

    internal static ScHsmAesKeyMaterial FromFields(int keySize, ReadOnlySpan<byte> fields)
    {
        if (keySize is not (16 or 24 or 32 or 64) || keySize > fields.Length)
            throw new ScHsmFormatException($"The AES key blob gives a key size of {keySize} bytes, which it cannot hold.");
        return new ScHsmAesKeyMaterial(SecretBytes.CopyOf(fields[..keySize]));
    }

    public override void Dispose() => Key.Dispose();
}
