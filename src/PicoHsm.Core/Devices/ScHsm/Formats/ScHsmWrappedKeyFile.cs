using PicoHsm.Common;
namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>
/// The file of <c>sc-hsm-tool --wrap-key</c> (.wky / .bin), read back by <c>--unwrap-key</c>:
/// <code>SEQUENCE { OCTET STRING key blob, [PRKD element], [certificate element] }</code>
/// The PRKD is the key's PKCS#15 description (30.. RSA, A0.. EC, A8.. secret key) from EF C4xx, the
/// certificate the content of EF CExx (67.. CV request on the Pico, 30.. X.509, 7F21.. CV certificate).
/// Both are kept as their raw DER elements, so writing the file again gives the same bytes.
/// </summary>
public sealed class ScHsmWrappedKeyFile
{
    public ScHsmWrappedKeyFile(byte[] keyBlob, byte[]? privateKeyDescription = null, byte[]? certificate = null)
    {
        ArgumentNullException.ThrowIfNull(keyBlob);
        if (keyBlob.Length == 0) throw new ArgumentException("The key blob is empty.", nameof(keyBlob));
        if (privateKeyDescription is { Length: > 0 }) CheckSingleElement(privateKeyDescription, "the private key description");
        if (certificate is { Length: > 0 }) CheckSingleElement(certificate, "the certificate");
        KeyBlob = keyBlob;
        PrivateKeyDescription = privateKeyDescription is { Length: > 0 } ? privateKeyDescription : null;
        Certificate = certificate is { Length: > 0 } ? certificate : null;
    }

    /// <summary>A file for a blob, with the key's description and certificate element when there are ones.</summary>
    public static ScHsmWrappedKeyFile Create(ScHsmKeyBlob keyBlob, ScHsmKeyDescription? description = null, byte[]? certificate = null)
    {
        ArgumentNullException.ThrowIfNull(keyBlob);
        return new ScHsmWrappedKeyFile(keyBlob.ToArray(), description?.Encoded, certificate);
    }

    /// <summary>The key blob (content of the OCTET STRING), as the card's WRAP KEY answered it.</summary>
    public byte[] KeyBlob { get; }
    /// <summary>The PKCS#15 description (PRKD) element, tag included, or null.</summary>
    public byte[]? PrivateKeyDescription { get; }
    /// <summary>The certificate element (X.509, CV certificate or CV request), tag included, or null.</summary>
    public byte[]? Certificate { get; }

    /// <summary>The certificate element is a CV certificate request (tag 67), what the Pico keeps for a generated key.</summary>
    public bool CertificateIsCvRequest => Certificate is { Length: > 0 } && Certificate[0] == 0x67;
    /// <summary>The certificate element is an X.509 certificate (SEQUENCE).</summary>
    public bool CertificateIsX509 => Certificate is { Length: > 0 } && Certificate[0] == 0x30;

    /// <summary>The key blob, parsed (header only; decrypting needs the DKEK).</summary>
    public ScHsmKeyBlob ParseKeyBlob() => ScHsmKeyBlob.Parse(KeyBlob);

    /// <summary>The PKCS#15 description, parsed, or null when the file has none.</summary>
    public ScHsmKeyDescription? ParseDescription() =>
        PrivateKeyDescription is null ? null : ScHsmKeyDescription.Parse(PrivateKeyDescription);

    public static ScHsmWrappedKeyFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Read(File.ReadAllBytes(path));
    }

    public static ScHsmWrappedKeyFile Read(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Read((ReadOnlySpan<byte>)bytes);
    }

    public static ScHsmWrappedKeyFile Read(ReadOnlySpan<byte> bytes)
    {
        var outer = DerElement.Read(bytes, "the wrapped key file's outer SEQUENCE");
        if (outer.FirstTagByte != 0x30)
            throw new ScHsmFormatException("Not an sc-hsm-tool wrapped key file: it does not start with a SEQUENCE (30).");
        if (outer.Encoded.Length != bytes.Length)
            throw new ScHsmFormatException($"The wrapped key file has {bytes.Length - outer.Encoded.Length} bytes after its SEQUENCE.");

        var content = outer.Content;
        var blob = DerElement.Read(content, "the key blob OCTET STRING");
        if (blob.FirstTagByte != 0x04)
            throw new ScHsmFormatException("The wrapped key file's first element is not an OCTET STRING (04) key blob.");
        content = content[blob.Encoded.Length..];

        byte[]? prkd = null, certificate = null;
        if (!content.IsEmpty)
        {
            var element = DerElement.Read(content, "the private key description");
            prkd = element.Encoded.ToArray();
            content = content[element.Encoded.Length..];
        }
        if (!content.IsEmpty)
        {
            var element = DerElement.Read(content, "the certificate");
            certificate = element.Encoded.ToArray();
            content = content[element.Encoded.Length..];
        }
        if (!content.IsEmpty)
            throw new ScHsmFormatException("The wrapped key file has more than a key blob, a description and a certificate.");
        return new ScHsmWrappedKeyFile(blob.Content.ToArray(), prkd, certificate);
    }

    /// <summary>The file's bytes, encoded as sc-hsm-tool encodes them (DER lengths).</summary>
    public byte[] ToArray()
    {
        var parts = new List<byte[]> { DerElement.Encode(0x04, KeyBlob) };
        if (PrivateKeyDescription is not null) parts.Add(PrivateKeyDescription);
        if (Certificate is not null) parts.Add(Certificate);
        return DerElement.Encode(0x30, parts.ToArray());
    }

    public void Write(string path) => File.WriteAllBytes(path, ToArray());

    private static void CheckSingleElement(byte[] element, string what)
    {
        var parsed = DerElement.Read(element, what);
        if (parsed.Encoded.Length != element.Length)
            throw new ArgumentException($"{char.ToUpperInvariant(what[0])}{what[1..]} must be exactly one DER element.");
    }
}
