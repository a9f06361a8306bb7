using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using PicoHsm.Common;

namespace PicoHsm.Backup;

/// <summary>
/// The authentication tag of a .pkb file (format version 2): HMAC-SHA256 over the canonical bytes
/// of every field a restore uses (<see cref="AuthenticatedBytes"/>), under a MAC key that exists in
/// clear only inside the token (or, offline, in the memory of whoever holds the DKEK shares). The
/// file carries that MAC key wrapped under the DKEK, with the same RFC 5649 wrap as the key itself,
/// so checking the tag needs the DKEK: on a token, the token unwraps the MAC key into a session
/// object and verifies (C_Verify); offline, the DKEK rebuilt from its shares unwraps it in memory.
/// One MAC key serves every file of one backup run. See docs/backup-format.md.
/// </summary>
public sealed record BackupAuthentication(string MacMechanism, string KeyWrapMechanism, byte[] WrappedMacKey, byte[] Tag)
{
    /// <summary>The only MAC mechanism of format version 2.</summary>
    public const string HmacSha256 = "CKM_SHA256_HMAC";
    /// <summary>The MAC key's length in bytes (HMAC-SHA256 with a key as long as its output).</summary>
    public const int MacKeyLength = 32;
    public const int TagLength = 32;

    private static readonly byte[] Domain = Encoding.ASCII.GetBytes("PicoHsm wrapped-key attributes v2\n");

    private static readonly JsonWriterOptions Compact = new() { Indented = false, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Checks the fields; throws <see cref="ArgumentException"/> otherwise.</summary>
    public void Validate()
    {
        if (MacMechanism != HmacSha256)
            throw new ArgumentException($"The authentication mechanism must be {HmacSha256}, not \"{MacMechanism}\".");
        if (KeyWrapMechanism is not ("CKM_AES_KEY_WRAP_PAD" or "CKM_AES_KEY_WRAP"))
            throw new ArgumentException("The MAC key's wrap mechanism must be CKM_AES_KEY_WRAP_PAD or CKM_AES_KEY_WRAP.");
        // RFC 5649 / 3394 of a 32-byte key: 40 bytes; a little room for other key lengths, no more.
        if (WrappedMacKey is null || WrappedMacKey.Length is < 24 or > 80 || WrappedMacKey.Length % 8 != 0)
            throw new ArgumentException("The wrapped MAC key must be 24-80 bytes, a multiple of 8.");
        if (Tag is null || Tag.Length != TagLength)
            throw new ArgumentException($"The authentication tag must be {TagLength} bytes.");
    }

    /// <summary>
    /// What the tag covers: a fixed domain string, then compact canonical JSON of the key (class, kind,
    /// size, curve, id, label, every usage attribute), the wrap (mechanism, parameters, KCV, wrapped
    /// key), the public key, the certificate and its label, and this record's mechanisms and wrapped
    /// MAC key. Not covered: "created", "tool" and "sourceToken" (descriptive only; no restore reads them).
    /// </summary>
    public static byte[] AuthenticatedBytes(WrappedKeyFile file, string macMechanism, string keyWrapMechanism, byte[] wrappedMacKey)
    {
        var buffer = new ArrayBufferWriter<byte>();
        buffer.Write(Domain);
        using (var w = new Utf8JsonWriter(buffer, Compact))
        {
            w.WriteStartObject();
            file.WriteRestoreFields(w);
            w.WriteStartObject("mac");
            w.WriteString("mechanism", macMechanism);
            w.WriteString("keyWrap", keyWrapMechanism);
            w.WriteString("wrappedKey", Convert.ToBase64String(wrappedMacKey));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The bytes this file's tag must cover.</summary>
    public byte[] AuthenticatedBytes(WrappedKeyFile file) => AuthenticatedBytes(file, MacMechanism, KeyWrapMechanism, WrappedMacKey);

    /// <summary>
    /// Host side (offline check, conversion): a fresh MAC key, wrapped under <paramref name="dkek"/>, and the
    /// tag over <paramref name="file"/>'s restore fields. The MAC key is zeroed before returning.
    /// </summary>
    public static BackupAuthentication CreateOffline(WrappedKeyFile file, ReadOnlySpan<byte> dkek, string keyWrapMechanism)
    {
        byte[] macKey = RandomNumberGenerator.GetBytes(MacKeyLength);
        try
        {
            byte[] wrapped = Wrap(true, dkek, macKey, keyWrapMechanism);
            byte[] tag = HMACSHA256.HashData(macKey, AuthenticatedBytes(file, HmacSha256, keyWrapMechanism, wrapped));
            return new BackupAuthentication(HmacSha256, keyWrapMechanism, wrapped, tag);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(macKey);
        }
    }

    /// <summary>Host side: whether the tag verifies under the MAC key unwrapped with <paramref name="dkek"/> (false when it does not unwrap).</summary>
    public bool VerifyOffline(WrappedKeyFile file, ReadOnlySpan<byte> dkek)
    {
        byte[] macKey;
        try { macKey = Wrap(false, dkek, WrappedMacKey, KeyWrapMechanism); }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            return false;
        }
        try
        {
            if (macKey.Length != MacKeyLength) return false;
            byte[] expected = HMACSHA256.HashData(macKey, AuthenticatedBytes(file));
            return CryptographicOperations.FixedTimeEquals(expected, Tag);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(macKey);
        }
    }

    private static byte[] Wrap(bool wrap, ReadOnlySpan<byte> kek, byte[] data, string mechanism) => mechanism == "CKM_AES_KEY_WRAP_PAD"
        ? (wrap ? AesKeyWrap.WrapPad(kek, data) : AesKeyWrap.UnwrapPad(kek, data))
        : (wrap ? AesKeyWrap.Wrap(kek, data) : AesKeyWrap.Unwrap(kek, data));

    /// <summary>The warning for a file of format version 1 (no tag).</summary>
    public static string UnauthenticatedWarning(string? path) =>
        $"{(path is null ? "The backup" : $"'{path}'")} is a format version 1 backup: its attributes (label, id, key type, usage flags) are not authenticated, " +
        "so an edit of them cannot be detected. Restore it only from a copy you trust, then back the key up again (the new file carries an authentication tag).";
}
