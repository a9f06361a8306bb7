using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Backup;

/// <summary>PKCS#11 object class of a backed-up key.</summary>
public enum KeyClass
{
    /// <summary>CKO_PRIVATE_KEY (RSA, EC).</summary>
    Private,
    /// <summary>CKO_SECRET_KEY (AES, generic secret).</summary>
    Secret,
}

/// <summary>Names of the boolean key attributes a backup records (PKCS#11 CKA_* in camel case).</summary>
public static class KeyAttributeNames
{
    public const string Sign = "sign";
    public const string Verify = "verify";
    public const string SignRecover = "signRecover";
    public const string VerifyRecover = "verifyRecover";
    public const string Encrypt = "encrypt";
    public const string Decrypt = "decrypt";
    public const string Wrap = "wrap";
    public const string Unwrap = "unwrap";
    public const string Derive = "derive";
    public const string Sensitive = "sensitive";
    public const string Extractable = "extractable";
    public const string AlwaysSensitive = "alwaysSensitive";
    public const string NeverExtractable = "neverExtractable";
    public const string AlwaysAuthenticate = "alwaysAuthenticate";
    public const string Private = "private";
    public const string Modifiable = "modifiable";
    public const string Copyable = "copyable";
    public const string Destroyable = "destroyable";
    public const string Trusted = "trusted";
    public const string WrapWithTrusted = "wrapWithTrusted";
    public const string Local = "local";

#if NET
    public static IReadOnlySet<string> All { get; }
#else
    public static ISet<string> All { get; }
#endif
        = new HashSet<string>(StringComparer.Ordinal)
    {
        Sign, Verify, SignRecover, VerifyRecover, Encrypt, Decrypt, Wrap, Unwrap, Derive, Sensitive, Extractable,
        AlwaysSensitive, NeverExtractable, AlwaysAuthenticate, Private, Modifiable, Copyable, Destroyable, Trusted,
        WrapWithTrusted, Local,
    };
}

/// <summary>
/// A key backed up from a generic PKCS#11 token (.pkb): the key wrapped on the token (e.g.
/// CKM_AES_KEY_WRAP_PAD under the DKEK imported as an AES key) and everything needed to restore it
/// as it was. A canonical JSON document with a SHA-256 digest of its own bytes; see
/// docs/backup-format.md. The digest detects damage, not a deliberate edit (anyone can recompute
/// it). Format version 2 adds <see cref="Authentication"/>: an HMAC-SHA256 tag over every field a
/// restore uses, under a MAC key wrapped under the DKEK, so an edit is refused by whoever holds the
/// DKEK. Version 1 files (no tag) are still read; <see cref="IsAuthenticated"/> is false for them.
/// </summary>
public sealed class WrappedKeyFile
{
    public const string Extension = ".pkb";
    public const string Format = "picohsm-wrapped-key";
    /// <summary>The version written (with an authentication tag).</summary>
    public const int FormatVersion = 2;
    /// <summary>The version before authentication tags: still read, with a warning.</summary>
    public const int UnauthenticatedFormatVersion = 1;

    private static readonly Regex MechanismName = new("^[A-Za-z0-9_]{1,64}$", RegexOptions.CultureInvariant);

    public required DateTimeOffset Created { get; init; }
    /// <summary>The version of the tool that wrote the file (e.g. "PicoHsm 1.2.0").</summary>
    public required string ToolVersion { get; init; }
    public required TokenInfo SourceToken { get; init; }

    public required KeyClass KeyClass { get; init; }
    public required KeyKind KeyKind { get; init; }
    public required int SizeBits { get; init; }
    /// <summary>EC only: the curve's name (e.g. "secp256r1"); null otherwise.</summary>
    public string? CurveName { get; init; }
    /// <summary>EC only: CKA_EC_PARAMS, DER (normally the named curve's OID); null otherwise.</summary>
    public byte[]? CurveParameters { get; init; }
    /// <summary>CKA_ID (may be empty).</summary>
    public required byte[] Id { get; init; }
    /// <summary>CKA_LABEL (may be empty).</summary>
    public required string Label { get; init; }
    /// <summary>Boolean attributes by <see cref="KeyAttributeNames"/> name; attributes not recorded are absent.</summary>
    public required IReadOnlyDictionary<string, bool> Attributes { get; init; }

    /// <summary>The unwrap mechanism's name, e.g. "CKM_AES_KEY_WRAP_PAD".</summary>
    public required string WrapMechanism { get; init; }
    /// <summary>The mechanism parameter bytes (e.g. an IV), null when the mechanism takes none.</summary>
    public byte[]? WrapMechanismParameters { get; init; }
    /// <summary>KCV of the wrapping key (the DKEK's <see cref="KeyCheckValue"/>, 8 bytes).</summary>
    public required byte[] WrappingKeyKcv { get; init; }
    public required byte[] WrappedKey { get; init; }

    /// <summary>The public key as SubjectPublicKeyInfo DER (private keys only; optional).</summary>
    public byte[]? PublicKeyInfo { get; init; }
    /// <summary>The certificate stored with the key, DER (optional).</summary>
    public byte[]? Certificate { get; init; }
    /// <summary>The certificate object's CKA_LABEL (required when <see cref="Certificate"/> is set).</summary>
    public string? CertificateLabel { get; init; }

    private BackupAuthentication? _authentication;

    /// <summary>The tag over the restore fields (format version 2); null in a version 1 file.</summary>
    public BackupAuthentication? Authentication { get => _authentication; init => _authentication = value; }

    /// <summary>Whether the file carries an authentication tag (checked only by whoever holds the DKEK).</summary>
    public bool IsAuthenticated => _authentication is not null;

    /// <summary>The format version these fields are written in: 2 with a tag, 1 without.</summary>
    public int Version => _authentication is null ? UnauthenticatedFormatVersion : FormatVersion;

    /// <summary>A copy of this file with <paramref name="authentication"/> (null: none).</summary>
    public WrappedKeyFile WithAuthentication(BackupAuthentication? authentication)
    {
        var copy = (WrappedKeyFile)MemberwiseClone();
        copy._authentication = authentication;
        return copy;
    }

    /// <summary>The name given to <see cref="Read"/>, if any.</summary>
    public string? SourceName { get; private init; }

    public string IdHex => DigestedJson.Hex(Id);

    /// <summary>Lower-case hex SHA-256 of the file's bytes (what the manifest records).</summary>
    public string Sha256 => DigestedJson.Hex(SHA256.HashData(ToBytes()));

    public byte[] ToBytes()
    {
        Validate();
        return DigestedJson.Write(Format, Version, w =>
        {
            w.WriteString("created", DigestedJson.FormatTime(Created));
            w.WriteString("tool", ToolVersion);
            DigestedJson.WriteToken(w, "sourceToken", SourceToken);

            WriteRestoreFields(w);
            if (_authentication is { } a)
            {
                w.WriteStartObject("authentication");
                w.WriteString("mechanism", a.MacMechanism);
                w.WriteString("keyWrap", a.KeyWrapMechanism);
                w.WriteString("wrappedMacKey", Convert.ToBase64String(a.WrappedMacKey));
                w.WriteString("tag", DigestedJson.Hex(a.Tag));
                w.WriteEndObject();
            }
        });
    }

    /// <summary>The members a restore uses, in file order: "key", "wrap", "publicKey", "certificate" (also what the tag covers).</summary>
    internal void WriteRestoreFields(Utf8JsonWriter w)
    {
        w.WriteStartObject("key");
        w.WriteString("class", KeyClass == KeyClass.Private ? "private" : "secret");
        w.WriteString("kind", KeyKind.ToString());
        w.WriteNumber("sizeBits", SizeBits);
        WriteStringOrNull(w, "curve", CurveName);
        WriteStringOrNull(w, "curveParameters", CurveParameters is null ? null : Convert.ToBase64String(CurveParameters));
        w.WriteString("id", DigestedJson.Hex(Id));
        w.WriteString("label", Label);
        w.WriteStartObject("attributes");
        foreach (var (name, value) in Attributes.OrderBy(a => a.Key, StringComparer.Ordinal))
            w.WriteBoolean(name, value);
        w.WriteEndObject();
        w.WriteEndObject();

        w.WriteStartObject("wrap");
        w.WriteString("mechanism", WrapMechanism);
        WriteStringOrNull(w, "parameters", WrapMechanismParameters is null ? null : Convert.ToBase64String(WrapMechanismParameters));
        w.WriteString("wrappingKeyKcv", DigestedJson.Hex(WrappingKeyKcv));
        w.WriteString("wrappedKey", Convert.ToBase64String(WrappedKey));
        w.WriteEndObject();

        WriteStringOrNull(w, "publicKey", PublicKeyInfo is null ? null : Convert.ToBase64String(PublicKeyInfo));
        if (Certificate is null)
            w.WriteNull("certificate");
        else
        {
            w.WriteStartObject("certificate");
            w.WriteString("label", CertificateLabel);
            w.WriteString("der", Convert.ToBase64String(Certificate));
            w.WriteEndObject();
        }
    }

    public static WrappedKeyFile Read(byte[] bytes, string? sourceName)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        string display = sourceName is null ? "The key backup file" : $"The key backup file '{sourceName}'";
        using var doc = DigestedJson.Open(bytes, Format, UnauthenticatedFormatVersion, FormatVersion, display, sourceName, "PicoHsm key backup file", out int version);
        WrappedKeyFile file;
        try
        {
            var root = doc.RootElement;
            var key = DigestedJson.Get(root, "key");
            var wrap = DigestedJson.Get(root, "wrap");
            var attributes = new Dictionary<string, bool>(StringComparer.Ordinal);
            var attrs = DigestedJson.Get(key, "attributes");
            if (attrs.ValueKind != JsonValueKind.Object) throw new FormatException("\"attributes\" is not an object");
            foreach (var p in attrs.EnumerateObject())
            {
                if (!attributes.TryAdd(p.Name, DigestedJson.GetBool(attrs, p.Name)))
                    throw new FormatException($"attribute \"{p.Name}\" appears twice");
            }
            var cert = DigestedJson.Get(root, "certificate");
            BackupAuthentication? auth = null;
            if (version >= FormatVersion)
            {
                var a = DigestedJson.Get(root, "authentication");
                auth = new BackupAuthentication(DigestedJson.GetString(a, "mechanism"), DigestedJson.GetString(a, "keyWrap"),
                    DigestedJson.GetBase64(a, "wrappedMacKey"), DigestedJson.GetHex(a, "tag"));
            }
            string cls = DigestedJson.GetString(key, "class");
            string kind = DigestedJson.GetString(key, "kind");
            file = new WrappedKeyFile
            {
                Created = DigestedJson.GetTime(root, "created"),
                ToolVersion = DigestedJson.GetString(root, "tool"),
                SourceToken = DigestedJson.ReadToken(root, "sourceToken"),
                KeyClass = cls switch { "private" => KeyClass.Private, "secret" => KeyClass.Secret, _ => throw new FormatException($"unknown key class \"{cls}\"") },
                KeyKind = Enum.TryParse<KeyKind>(kind, ignoreCase: false, out var k) && k.ToString() == kind && k != KeyKind.Unknown
                    ? k : throw new FormatException($"unknown key kind \"{kind}\""),
                SizeBits = DigestedJson.GetInt(key, "sizeBits"),
                CurveName = DigestedJson.GetStringOrNull(key, "curve"),
                CurveParameters = DigestedJson.GetBase64OrNull(key, "curveParameters"),
                Id = DigestedJson.GetHex(key, "id"),
                Label = DigestedJson.GetString(key, "label"),
                Attributes = attributes,
                WrapMechanism = DigestedJson.GetString(wrap, "mechanism"),
                WrapMechanismParameters = DigestedJson.GetBase64OrNull(wrap, "parameters"),
                WrappingKeyKcv = DigestedJson.GetHex(wrap, "wrappingKeyKcv"),
                WrappedKey = DigestedJson.GetBase64(wrap, "wrappedKey"),
                PublicKeyInfo = DigestedJson.GetBase64OrNull(root, "publicKey"),
                Certificate = cert.ValueKind == JsonValueKind.Null ? null : DigestedJson.GetBase64(cert, "der"),
                CertificateLabel = cert.ValueKind == JsonValueKind.Null ? null : DigestedJson.GetString(cert, "label"),
                SourceName = sourceName,
                Authentication = auth,
            };
            file.Validate();
        }
        catch (Exception ex) when (ex is FormatException or InvalidOperationException or ArgumentException)
        {
            throw new BackupFileException(BackupFileReason.Corrupt, sourceName, $"{display} is damaged: {ex.Message}.", ex);
        }
        DigestedJson.RequireCanonical(bytes, file.ToBytes(), display, sourceName);
        return file;
    }

    /// <summary>Checks the fields are complete and consistent; throws <see cref="ArgumentException"/> otherwise.</summary>
    public void Validate()
    {
        if (ToolVersion is null) throw new ArgumentException("ToolVersion is required.");
        if (SourceToken is null) throw new ArgumentException("SourceToken is required.");
        SourceToken.Validate("source token");
        if (Created.Year is < 1970 or > 9999) throw new ArgumentException("Created is out of range.");

        KeyClass expectedClass = KeyKind switch
        {
            KeyKind.Rsa or KeyKind.Ec => KeyClass.Private,
            KeyKind.Aes or KeyKind.GenericSecret => KeyClass.Secret,
            _ => throw new ArgumentException($"Key kind {KeyKind} cannot be backed up."),
        };
        if (KeyClass != expectedClass)
            throw new ArgumentException($"A {KeyKind} key is a {expectedClass.ToString().ToLowerInvariant()} key, not {KeyClass.ToString().ToLowerInvariant()}.");
        if (SizeBits is < 1 or > 65536)
            throw new ArgumentException($"Key size {SizeBits} bits is out of range.");
        if (KeyKind == KeyKind.Aes && SizeBits is not (128 or 192 or 256))
            throw new ArgumentException($"An AES key is 128, 192 or 256 bits, not {SizeBits}.");
        if (KeyKind == KeyKind.Ec)
        {
            if (string.IsNullOrEmpty(CurveName)) throw new ArgumentException("An EC key needs its curve name.");
            if (CurveParameters is null || CurveParameters.Length == 0) throw new ArgumentException("An EC key needs its curve parameters (CKA_EC_PARAMS).");
            RequireDer(CurveParameters, "The curve parameters");
        }
        else if (CurveName is not null || CurveParameters is not null)
            throw new ArgumentException("Only EC keys have a curve.");
        if (Id is null) throw new ArgumentException("Id is required (it may be empty).");
        if (Label is null) throw new ArgumentException("Label is required (it may be empty).");
        if (Attributes is null) throw new ArgumentException("Attributes are required.");
        foreach (var name in Attributes.Keys)
            if (!KeyAttributeNames.All.Contains(name))
                throw new ArgumentException($"Unknown key attribute \"{name}\".");
        if (WrapMechanism is null || !MechanismName.IsMatch(WrapMechanism))
            throw new ArgumentException("The wrap mechanism name must be 1-64 letters, digits or underscores (e.g. CKM_AES_KEY_WRAP_PAD).");
        if (WrappingKeyKcv is null || WrappingKeyKcv.Length != KeyCheckValue.Length)
            throw new ArgumentException($"The wrapping key's KCV must be {KeyCheckValue.Length} bytes.");
        if (WrappedKey is null || WrappedKey.Length == 0)
            throw new ArgumentException("The wrapped key is empty.");
        if (PublicKeyInfo is not null)
        {
            if (KeyClass != KeyClass.Private) throw new ArgumentException("Only private keys have a public key.");
            RequireDer(PublicKeyInfo, "The public key (SubjectPublicKeyInfo)");
        }
        if (Certificate is not null)
        {
            if (CertificateLabel is null) throw new ArgumentException("A certificate needs its label (it may be empty).");
            RequireDer(Certificate, "The certificate");
        }
        else if (CertificateLabel is not null)
            throw new ArgumentException("A certificate label without a certificate.");
        _authentication?.Validate();
    }

    private static void RequireDer(byte[] der, string what)
    {
        try
        {
            var reader = new AsnReader(der, AsnEncodingRules.DER);
            reader.ReadEncodedValue();
            if (reader.HasData) throw new ArgumentException($"{what} has bytes after its DER value.");
        }
        catch (AsnContentException ex)
        {
            throw new ArgumentException($"{what} is not valid DER: {ex.Message}", ex);
        }
    }

    private static void WriteStringOrNull(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteString(name, value);
    }
}
