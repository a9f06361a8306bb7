using System.Text;
using PicoHsm.Common;
using PicoHsm.Keys;


namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>
/// A PKCS#15 key description as the SmartCard-HSM keeps it in EF C4xx (and sc-hsm-tool copies into
/// a wrapped key file): where PKCS#11 gets CKA_LABEL and CKA_ID. Only what a backup needs is read:
/// <code>
/// 30 (RSA) | A0 (EC) | A8 (secret key) {
///   CommonObjectAttributes SEQUENCE { label UTF8String, flags BIT STRING, authId OCTET STRING }
///   CommonKeyAttributes    SEQUENCE { iD OCTET STRING, usage BIT STRING, ..., keyReference INTEGER }
///   [0] { SEQUENCE { keyLen INTEGER } }                            (secret keys)
///   [1] { SEQUENCE { path, modulusLength / fieldSize INTEGER } }   (RSA / EC; secret keys: path only)
/// }
/// </code>
/// Bit strings are kept raw (unused-bits byte first): the firmware's AES usage bit string is not DER.
/// </summary>
public sealed class ScHsmKeyDescription
{
    // What OpenSC (RSA, EC) and the Pico firmware (AES) wrote in the vectors.
    private static readonly byte[] DefaultFlags = [0x06, 0xC0];        // private, modifiable
    private static readonly byte[] DefaultAuthId = [0x01];             // the user PIN
    private static readonly byte[] DefaultRsaUsage = [0x04, 0x70];     // decrypt, sign, signRecover
    private static readonly byte[] DefaultEcUsage = [0x07, 0x30, 0x80];// sign, signRecover, derive
    private static readonly byte[] DefaultAesUsage = [0x07, 0xC0, 0x10];

    private ScHsmKeyDescription(byte[] encoded)
    {
        Encoded = encoded;
    }

    /// <summary>The description's DER bytes.</summary>
    public byte[] Encoded { get; }
    /// <summary>Rsa for tag 30, Ec for A0, Aes for A8, GenericSecret for other secret key tags.</summary>
    public KeyKind Kind { get; private set; }
    public string? Label { get; private set; }
    /// <summary>CKA_ID (the iD OCTET STRING), or null.</summary>
    public byte[]? Id { get; private set; }
    public byte[]? Flags { get; private set; }
    public byte[]? AuthId { get; private set; }
    /// <summary>The usage BIT STRING content (unused-bits byte first).</summary>
    public byte[]? Usage { get; private set; }
    /// <summary>The key reference (the kid of CCkid), when written.</summary>
    public int? KeyReference { get; private set; }
    /// <summary>Modulus length (RSA), field size (EC) or key length (secret key) in bits, when written.</summary>
    public int? KeySizeBits { get; private set; }

    public static ScHsmKeyDescription Parse(byte[] encoded)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        return Parse((ReadOnlySpan<byte>)encoded);
    }

    public static ScHsmKeyDescription Parse(ReadOnlySpan<byte> encoded)
    {
        var outer = DerElement.Read(encoded, "the key description");
        if (outer.Encoded.Length != encoded.Length)
            throw new ScHsmFormatException("The key description has bytes after its end.");
        var description = new ScHsmKeyDescription(encoded.ToArray())
        {
            Kind = outer.FirstTagByte switch
            {
                0x30 => KeyKind.Rsa,
                0xA0 => KeyKind.Ec,
                0xA8 => KeyKind.Aes,
                >= 0xA2 and <= 0xAF => KeyKind.GenericSecret,
                _ => throw new ScHsmFormatException($"Tag {outer.FirstTagByte:X2} is not a PKCS#15 key description the SmartCard-HSM writes."),
            },
        };

        var content = outer.Content;
        var common = Next(ref content, "CommonObjectAttributes");
        if (common.FirstTagByte != 0x30) throw new ScHsmFormatException("The key description has no CommonObjectAttributes.");
        var attributes = common.Content;
        while (!attributes.IsEmpty)
        {
            var e = Next(ref attributes, "a common object attribute");
            switch (e.FirstTagByte)
            {
                case 0x0C: description.Label = Encoding.UTF8.GetString(e.Content); break;
                case 0x03: description.Flags = e.Content.ToArray(); break;
                case 0x04: description.AuthId = e.Content.ToArray(); break;
            }
        }

        if (!content.IsEmpty && content[0] == 0x30)
        {
            var keyAttributes = Next(ref content, "CommonKeyAttributes").Content;
            while (!keyAttributes.IsEmpty)
            {
                var e = Next(ref keyAttributes, "a common key attribute");
                switch (e.FirstTagByte)
                {
                    case 0x04: description.Id = e.Content.ToArray(); break;
                    case 0x03 when description.Usage is null: description.Usage = e.Content.ToArray(); break;
                    case 0x02: description.KeyReference = ReadInteger(e.Content, "keyReference"); break;
                }
            }
        }

        while (!content.IsEmpty)
        {
            var e = Next(ref content, "a key attribute");
            if (e.FirstTagByte is not (0xA0 or 0xA1)) continue;
            // [0] subclass attributes (secret keys: keyLen) or [1] type attributes (RSA/EC: path, size).
            var inner = e.Content;
            if (inner.IsEmpty || inner[0] != 0x30) continue;
            var sequence = Next(ref inner, "a key attribute sequence").Content;
            while (!sequence.IsEmpty)
            {
                var item = Next(ref sequence, "a key attribute");
                if (item.FirstTagByte == 0x02) description.KeySizeBits ??= ReadInteger(item.Content, "key size");
            }
        }
        return description;
    }

    /// <summary>An RSA key description as OpenSC writes it for the SmartCard-HSM.</summary>
    public static ScHsmKeyDescription BuildRsa(string label, ReadOnlySpan<byte> id, int keyReference, int modulusBits,
        byte[]? usage = null, byte[]? flags = null, byte[]? authId = null) =>
        BuildAsymmetric(0x30, label, id, keyReference, modulusBits, usage ?? DefaultRsaUsage, flags, authId);

    /// <summary>An EC key description as OpenSC writes it for the SmartCard-HSM (size = field size in bits).</summary>
    public static ScHsmKeyDescription BuildEc(string label, ReadOnlySpan<byte> id, int keyReference, int fieldSizeBits,
        byte[]? usage = null, byte[]? flags = null, byte[]? authId = null) =>
        BuildAsymmetric(0xA0, label, id, keyReference, fieldSizeBits, usage ?? DefaultEcUsage, flags, authId);

    /// <summary>
    /// An AES key description as the Pico HSM firmware writes it: label only in the common attributes,
    /// iD and usage, keyLen in [0], an empty path in [1]; a key reference is added only when given.
    /// </summary>
    public static ScHsmKeyDescription BuildAes(string label, ReadOnlySpan<byte> id, int keySizeBits,
        int? keyReference = null, byte[]? usage = null)
    {
        ArgumentNullException.ThrowIfNull(label);
        var keyAttributes = new List<byte[]> { DerElement.Encode(0x04, id), DerElement.Encode(0x03, usage ?? DefaultAesUsage) };
        if (keyReference is int reference) keyAttributes.Add(EncodeInteger(reference));
        var encoded = DerElement.Encode(0xA8,
            DerElement.Encode(0x30, DerElement.Encode(0x0C, Encoding.UTF8.GetBytes(label))),
            DerElement.Encode(0x30, keyAttributes.ToArray()),
            DerElement.Encode(0xA0, DerElement.Encode(0x30, EncodeInteger(keySizeBits))),
            DerElement.Encode(0xA1, DerElement.Encode(0x30, EmptyPath())));
        return Parse(encoded);
    }

    private static ScHsmKeyDescription BuildAsymmetric(byte tag, string label, ReadOnlySpan<byte> id, int keyReference,
        int sizeBits, byte[] usage, byte[]? flags, byte[]? authId)
    {
        ArgumentNullException.ThrowIfNull(label);
        var encoded = DerElement.Encode(tag,
            DerElement.Encode(0x30,
                DerElement.Encode(0x0C, Encoding.UTF8.GetBytes(label)),
                DerElement.Encode(0x03, flags ?? DefaultFlags),
                DerElement.Encode(0x04, authId ?? DefaultAuthId)),
            DerElement.Encode(0x30,
                DerElement.Encode(0x04, id),
                DerElement.Encode(0x03, usage),
                EncodeInteger(keyReference)),
            DerElement.Encode(0xA1, DerElement.Encode(0x30, EmptyPath(), EncodeInteger(sizeBits))));
        return Parse(encoded);
    }

    /// <summary>Path ::= SEQUENCE { path OCTET STRING (empty) }: the card finds the key by its reference.</summary>
    private static byte[] EmptyPath() => DerElement.Encode(0x30, DerElement.Encode(0x04, ReadOnlySpan<byte>.Empty));

    private static byte[] EncodeInteger(int value)
    {
        if (value < 0) throw new ArgumentOutOfRangeException(nameof(value), "Only non-negative integers are written here.");
        var bytes = new List<byte>();
        do { bytes.Insert(0, (byte)value); value >>= 8; } while (value > 0);
        if ((bytes[0] & 0x80) != 0) bytes.Insert(0, 0);
        return DerElement.Encode(0x02, bytes.ToArray());
    }

    private static int ReadInteger(ReadOnlySpan<byte> content, string what)
    {
        if (content.IsEmpty || content.Length > 4 || (content[0] & 0x80) != 0)
            throw new ScHsmFormatException($"The key description's {what} is not a small positive INTEGER.");
        int value = 0;
        foreach (var b in content) value = (value << 8) | b;
        return value;
    }

    private static DerElement Next(ref ReadOnlySpan<byte> data, string what)
    {
        var element = DerElement.Read(data, what);
        data = data[element.Encoded.Length..];
        return element;
    }
}
