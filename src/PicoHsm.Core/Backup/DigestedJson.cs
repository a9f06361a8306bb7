using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace PicoHsm.Backup;

/// <summary>
/// The JSON container shared by the product's text files (wrapped keys, manifests): an indented
/// UTF-8 JSON object, LF line ends, whose first members are "format" and "version" and whose last
/// member is "documentSha256": the lower-case hex SHA-256 of every byte of the file before that
/// hex value. The file ends with the hex, a quote, LF, '}', LF. Readers also require the exact
/// canonical form this writer produces, so any byte change is caught: in the digested prefix by
/// the digest, in the hex by the digest, in the fixed tail by the structure check.
/// </summary>
internal static class DigestedJson
{
    public const string DigestMember = "documentSha256";
    private static readonly byte[] Tail = "\"\n}\n"u8.ToArray();
    private const int HexLength = 64;

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        // Only what JSON requires is escaped: labels stay readable, base64 '+' stays '+'.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static byte[] Write(string format, int version, Action<Utf8JsonWriter> writeBody)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("format", format);
            w.WriteNumber("version", version);
            writeBody(w);
            w.WriteString(DigestMember, new string('0', HexLength));
            w.WriteEndObject();
        }
        // Utf8JsonWriter on .NET 8 indents with Environment.NewLine; JSON strings never hold a raw
        // CR or LF (they are escaped), so normalizing CR LF to LF here is safe and makes the bytes
        // the same on every OS.
        byte[] text = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(buffer.WrittenSpan).Replace("\r\n", "\n") + "\n");
        int hexAt = text.Length - Tail.Length - HexLength;
        string hex = Convert.ToHexString(SHA256.HashData(text.AsSpan(0, hexAt))).ToLowerInvariant();
        Encoding.ASCII.GetBytes(hex, text.AsSpan(hexAt, HexLength));
        return text;
    }

    /// <summary>
    /// Checks the container (format name, version, digest) and returns the parsed document; the
    /// caller builds its object, then calls <see cref="RequireCanonical"/>.
    /// </summary>
    public static JsonDocument Open(byte[] bytes, string format, int supportedVersion, string displayName, string? sourceName, string kind) =>
        Open(bytes, format, supportedVersion, supportedVersion, displayName, sourceName, kind, out _);

    /// <summary>As above, for a format read in versions <paramref name="minVersion"/>..<paramref name="maxVersion"/>; gives the file's.</summary>
    public static JsonDocument Open(byte[] bytes, string format, int minVersion, int maxVersion, string displayName, string? sourceName, string kind, out int foundVersion)
    {
        BackupFileException Fail(BackupFileReason r, string detail) => new(r, sourceName, $"{displayName} {detail}");

        // 1. What is it? The first two members are read without trusting the rest.
        string? foundFormat = null;
        long version = -1;
        try
        {
            var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
            if (reader.Read() && reader.TokenType == JsonTokenType.StartObject
                && reader.Read() && reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("format")
                && reader.Read() && reader.TokenType == JsonTokenType.String)
            {
                foundFormat = reader.GetString();
                if (reader.Read() && reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("version")
                    && reader.Read() && reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long v))
                    version = v;
            }
        }
        catch (JsonException) { }
        catch (InvalidOperationException) { }
        if (foundFormat != format)
            throw Fail(BackupFileReason.NotABackup, $"is not a {kind} (it does not start with \"format\": \"{format}\").");
        if (version < minVersion || version > maxVersion)
            throw Fail(version < 0 ? BackupFileReason.Corrupt : BackupFileReason.UnsupportedVersion,
                version < 0 ? "is damaged: its format version cannot be read."
                            : minVersion == maxVersion
                                ? $"has format version {version}; this version of PicoHsm reads version {maxVersion} only."
                                : $"has format version {version}; this version of PicoHsm reads versions {minVersion} to {maxVersion}.");
        foundVersion = (int)version;

        // 2. The digest, over every byte before the hex value.
        int hexAt = bytes.Length - Tail.Length - HexLength;
        if (hexAt <= 0 || !bytes.AsSpan(bytes.Length - Tail.Length).SequenceEqual(Tail))
            throw Fail(BackupFileReason.Corrupt, "is damaged or truncated: it does not end with its integrity digest." + CrLfHint(bytes));
        ReadOnlySpan<byte> hexBytes = bytes.AsSpan(hexAt, HexLength);
        foreach (byte c in hexBytes)
            if (!(c is >= (byte)'0' and <= (byte)'9' || c is >= (byte)'a' and <= (byte)'f'))
                throw Fail(BackupFileReason.Corrupt, "is damaged: its integrity digest is not lower-case hex.");
        byte[] expected = SHA256.HashData(bytes.AsSpan(0, hexAt));
        byte[] recorded = Convert.FromHexString(Encoding.ASCII.GetString(hexBytes));
        if (!CryptographicOperations.FixedTimeEquals(expected, recorded))
            throw Fail(BackupFileReason.DigestMismatch,
                $"has been changed or damaged: its SHA-256 integrity digest does not match its content.{CrLfHint(bytes)} Do not use it; restore from another copy.");

        // 3. The JSON itself.
        try
        {
            return JsonDocument.Parse(bytes, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false, MaxDepth = 16 });
        }
        catch (JsonException ex)
        {
            throw Fail(BackupFileReason.Corrupt, $"is not valid JSON: {ex.Message}");
        }
    }

    public static void RequireCanonical(byte[] bytes, byte[] rewritten, string displayName, string? sourceName)
    {
        if (!bytes.AsSpan().SequenceEqual(rewritten))
            throw new BackupFileException(BackupFileReason.Corrupt, sourceName,
                $"{displayName} is not in the exact form PicoHsm writes (its digest matches, so it was written by another program or edited and re-digested).");
    }

    private static string CrLfHint(byte[] bytes) =>
        bytes.AsSpan().IndexOf("\r\n"u8) >= 0 ? " (It contains CR LF line ends: was it opened and saved in a text editor, or transferred in text mode?)" : "";

    // --- reading helpers: any failure is a FormatException, turned into Corrupt by the caller ---

    public static JsonElement Get(JsonElement obj, string name)
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(name, out var value))
            throw new FormatException($"the member \"{name}\" is missing");
        return value;
    }

    public static string GetString(JsonElement obj, string name)
    {
        var e = Get(obj, name);
        return e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new FormatException($"\"{name}\" is not a string");
    }

    public static string? GetStringOrNull(JsonElement obj, string name)
    {
        var e = Get(obj, name);
        return e.ValueKind == JsonValueKind.Null ? null : GetString(obj, name);
    }

    public static bool GetBool(JsonElement obj, string name)
    {
        var e = Get(obj, name);
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new FormatException($"\"{name}\" is not true or false"),
        };
    }

    public static int GetInt(JsonElement obj, string name)
    {
        var e = Get(obj, name);
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) ? v : throw new FormatException($"\"{name}\" is not an integer");
    }

    public static byte[] GetBase64(JsonElement obj, string name) =>
        Convert.FromBase64String(GetString(obj, name));

    public static byte[]? GetBase64OrNull(JsonElement obj, string name) =>
        GetStringOrNull(obj, name) is { } s ? Convert.FromBase64String(s) : null;

    public static byte[] GetHex(JsonElement obj, string name) =>
        Convert.FromHexString(GetString(obj, name));

    public static DateTimeOffset GetTime(JsonElement obj, string name) =>
        DateTimeOffset.ParseExact(GetString(obj, name), TimeFormat, System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal);

    public const string TimeFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";

    public static string FormatTime(DateTimeOffset t) =>
        t.UtcDateTime.ToString(TimeFormat, System.Globalization.CultureInfo.InvariantCulture);

    public static string Hex(ReadOnlySpan<byte> b) => Convert.ToHexString(b).ToLowerInvariant();

    public static void WriteToken(Utf8JsonWriter w, string name, TokenInfo t)
    {
        w.WriteStartObject(name);
        w.WriteString("manufacturer", t.Manufacturer);
        w.WriteString("model", t.Model);
        w.WriteString("serial", t.Serial);
        w.WriteString("firmware", t.Firmware);
        w.WriteEndObject();
    }

    public static TokenInfo ReadToken(JsonElement obj, string name)
    {
        var t = Get(obj, name);
        return new TokenInfo(GetString(t, "manufacturer"), GetString(t, "model"), GetString(t, "serial"), GetString(t, "firmware"));
    }
}
