using System.Security.Cryptography;
using System.Text.Json;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Backup;

/// <summary>One backed-up key: its file (a plain name in the backup folder) and what it holds.</summary>
public sealed record BackupManifestEntry(
    string FileName, string IdHex, string Label, KeyKind KeyKind, int SizeBits, string? CurveName, string KcvHex, string Sha256)
{
    /// <summary>An entry for a .pkb file from the exact bytes written to disk.</summary>
    public static BackupManifestEntry For(string fileName, byte[] wrappedKeyFileBytes)
    {
        var f = WrappedKeyFile.Read(wrappedKeyFileBytes, fileName);
        return new BackupManifestEntry(fileName, f.IdHex, f.Label, f.KeyKind, f.SizeBits, f.CurveName,
            KeyCheckValue.ToHex(f.WrappingKeyKcv), DigestedJson.Hex(SHA256.HashData(wrappedKeyFileBytes)));
    }
}

/// <summary>A key found on the token that could not be exported, and why (e.g. CKA_EXTRACTABLE false).</summary>
public sealed record NotExportedKey(string IdHex, string Label, KeyKind KeyKind, string Reason);

public enum ManifestProblemSeverity { Error, Warning }

public enum ManifestProblemKind
{
    /// <summary>A listed file is not in the folder.</summary>
    MissingFile,
    /// <summary>A listed file's SHA-256 is not the recorded one.</summary>
    DigestMismatch,
    /// <summary>A listed file exists but cannot be read.</summary>
    UnreadableFile,
    /// <summary>A listed key file does not hold what its entry says (id, kind, size, curve, label, KCV).</summary>
    EntryMismatch,
    /// <summary>A file in the folder is not listed (warning: e.g. a leftover temp file or a file from another backup).</summary>
    UnlistedFile,
    /// <summary>An entry's wrapping-key KCV is not the manifest's DKEK KCV (warning).</summary>
    OtherDkek,
}

public sealed record ManifestProblem(ManifestProblemSeverity Severity, ManifestProblemKind Kind, string FileName, string Message)
{
    public override string ToString() => $"{Severity}: {Message}";
}

/// <summary>
/// manifest.json of a whole-device backup, format version 1: the same canonical JSON + trailing
/// SHA-256 container as <see cref="WrappedKeyFile"/>; see docs/backup-format.md.
/// </summary>
public sealed class BackupManifest
{
    public const string FileName = "manifest.json";
    public const string Format = "picohsm-backup-manifest";
    public const int FormatVersion = 1;

    public required DateTimeOffset Created { get; init; }
    public required string ToolVersion { get; init; }
    public required TokenInfo SourceToken { get; init; }
    /// <summary>KCV of the DKEK the keys are wrapped under (8 bytes).</summary>
    public required byte[] DkekKcv { get; init; }
    public required IReadOnlyList<BackupManifestEntry> Entries { get; init; }
    public required IReadOnlyList<NotExportedKey> NotExported { get; init; }
    public string? SourceName { get; private init; }

    public string DkekKcvHex => KeyCheckValue.ToHex(DkekKcv);

    public byte[] ToBytes()
    {
        Validate();
        return DigestedJson.Write(Format, FormatVersion, w =>
        {
            w.WriteString("created", DigestedJson.FormatTime(Created));
            w.WriteString("tool", ToolVersion);
            DigestedJson.WriteToken(w, "sourceToken", SourceToken);
            w.WriteString("dkekKcv", DkekKcvHex);
            w.WriteStartArray("entries");
            foreach (var e in Entries)
            {
                w.WriteStartObject();
                w.WriteString("file", e.FileName);
                w.WriteString("id", e.IdHex);
                w.WriteString("label", e.Label);
                w.WriteString("kind", e.KeyKind.ToString());
                w.WriteNumber("sizeBits", e.SizeBits);
                if (e.CurveName is null) w.WriteNull("curve"); else w.WriteString("curve", e.CurveName);
                w.WriteString("kcv", e.KcvHex);
                w.WriteString("sha256", e.Sha256);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("notExported");
            foreach (var n in NotExported)
            {
                w.WriteStartObject();
                w.WriteString("id", n.IdHex);
                w.WriteString("label", n.Label);
                w.WriteString("kind", n.KeyKind.ToString());
                w.WriteString("reason", n.Reason);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
    }

    public static BackupManifest Read(byte[] bytes, string? sourceName)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        string display = sourceName is null ? "The backup manifest" : $"The backup manifest '{sourceName}'";
        using var doc = DigestedJson.Open(bytes, Format, FormatVersion, display, sourceName, "PicoHsm backup manifest");
        BackupManifest manifest;
        try
        {
            var root = doc.RootElement;
            var entries = new List<BackupManifestEntry>();
            foreach (var e in Array(root, "entries"))
                entries.Add(new BackupManifestEntry(
                    DigestedJson.GetString(e, "file"), DigestedJson.GetString(e, "id"), DigestedJson.GetString(e, "label"),
                    ParseKind(DigestedJson.GetString(e, "kind")), DigestedJson.GetInt(e, "sizeBits"),
                    DigestedJson.GetStringOrNull(e, "curve"), DigestedJson.GetString(e, "kcv"), DigestedJson.GetString(e, "sha256")));
            var notExported = new List<NotExportedKey>();
            foreach (var n in Array(root, "notExported"))
                notExported.Add(new NotExportedKey(DigestedJson.GetString(n, "id"), DigestedJson.GetString(n, "label"),
                    ParseKind(DigestedJson.GetString(n, "kind")), DigestedJson.GetString(n, "reason")));
            manifest = new BackupManifest
            {
                Created = DigestedJson.GetTime(root, "created"),
                ToolVersion = DigestedJson.GetString(root, "tool"),
                SourceToken = DigestedJson.ReadToken(root, "sourceToken"),
                DkekKcv = KeyCheckValue.FromHex(DigestedJson.GetString(root, "dkekKcv")),
                Entries = entries,
                NotExported = notExported,
                SourceName = sourceName,
            };
            manifest.Validate();
        }
        catch (Exception ex) when (ex is FormatException or InvalidOperationException or ArgumentException)
        {
            throw new BackupFileException(BackupFileReason.Corrupt, sourceName, $"{display} is damaged: {ex.Message}.", ex);
        }
        DigestedJson.RequireCanonical(bytes, manifest.ToBytes(), display, sourceName);
        return manifest;
    }

    /// <summary>
    /// Checks the backup folder against the manifest: every listed file present, readable and with
    /// its recorded SHA-256; key files (.pkb) also hold what their entry says. Files in the folder
    /// that are not listed are warnings. An empty list means the backup is complete and intact.
    /// </summary>
    public IReadOnlyList<ManifestProblem> Verify(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"The backup folder '{directory}' does not exist.");
        var problems = new List<ManifestProblem>();
        foreach (var e in Entries)
        {
            string path = Path.Combine(directory, e.FileName);
            if (!File.Exists(path))
            {
                problems.Add(new(ManifestProblemSeverity.Error, ManifestProblemKind.MissingFile, e.FileName,
                    $"'{e.FileName}' (key {e.IdHex} '{e.Label}') is listed in the manifest but missing."));
                continue;
            }
            byte[] bytes;
            try { bytes = File.ReadAllBytes(path); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                problems.Add(new(ManifestProblemSeverity.Error, ManifestProblemKind.UnreadableFile, e.FileName,
                    $"'{e.FileName}' cannot be read: {ex.Message}"));
                continue;
            }
            string actual = DigestedJson.Hex(SHA256.HashData(bytes));
            if (!string.Equals(actual, e.Sha256, StringComparison.Ordinal))
            {
                problems.Add(new(ManifestProblemSeverity.Error, ManifestProblemKind.DigestMismatch, e.FileName,
                    $"'{e.FileName}' has been changed or damaged: its SHA-256 is {actual}, the manifest records {e.Sha256}."));
                continue;
            }
            if (e.FileName.EndsWith(WrappedKeyFile.Extension, StringComparison.OrdinalIgnoreCase))
            {
                try
                {
                    var actualEntry = BackupManifestEntry.For(e.FileName, bytes);
                    if (actualEntry != e)
                        problems.Add(new(ManifestProblemSeverity.Error, ManifestProblemKind.EntryMismatch, e.FileName,
                            $"'{e.FileName}' does not hold what the manifest says (manifest: {Describe(e)}; file: {Describe(actualEntry)})."));
                }
                catch (BackupFileException ex)
                {
                    problems.Add(new(ManifestProblemSeverity.Error, ManifestProblemKind.UnreadableFile, e.FileName, ex.Message));
                }
            }
            if (!string.Equals(e.KcvHex, DkekKcvHex, StringComparison.Ordinal))
                problems.Add(new(ManifestProblemSeverity.Warning, ManifestProblemKind.OtherDkek, e.FileName,
                    $"'{e.FileName}' is wrapped under the key with KCV {e.KcvHex}, not the backup's DKEK (KCV {DkekKcvHex})."));
        }
        var listed = new HashSet<string>(Entries.Select(e => e.FileName), StringComparer.Ordinal) { FileName };
        foreach (string path in Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(path);
            if (!listed.Contains(name))
                problems.Add(new(ManifestProblemSeverity.Warning, ManifestProblemKind.UnlistedFile, name,
                    $"'{name}' is in the backup folder but not listed in the manifest."));
        }
        return problems;
    }

    private static string Describe(BackupManifestEntry e) =>
        $"id {e.IdHex}, '{e.Label}', {e.KeyKind} {(e.CurveName ?? e.SizeBits + " bits")}, KCV {e.KcvHex}";

    public void Validate()
    {
        if (ToolVersion is null) throw new ArgumentException("ToolVersion is required.");
        if (SourceToken is null) throw new ArgumentException("SourceToken is required.");
        SourceToken.Validate("source token");
        if (DkekKcv is null || DkekKcv.Length != KeyCheckValue.Length) throw new ArgumentException("The DKEK KCV must be 8 bytes.");
        if (Entries is null || NotExported is null) throw new ArgumentException("Entries and NotExported are required (they may be empty).");
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { FileName };
        foreach (var e in Entries)
        {
            if (e is null) throw new ArgumentException("An entry is null.");
            ValidateFileName(e.FileName);
            if (!names.Add(e.FileName))
                throw new ArgumentException($"The file name '{e.FileName}' is listed twice (names are compared ignoring case, for Windows and macOS).");
            RequireHex(e.IdHex, "id", any: true);
            RequireHex(e.KcvHex, "KCV", bytes: KeyCheckValue.Length);
            RequireHex(e.Sha256, "SHA-256", bytes: 32);
            if (e.Label is null) throw new ArgumentException("An entry's label is null.");
            if (e.KeyKind == KeyKind.Unknown || !Enum.IsDefined(e.KeyKind)) throw new ArgumentException($"Entry '{e.FileName}' has no key kind.");
            if (e.SizeBits is < 1 or > 65536) throw new ArgumentException($"Entry '{e.FileName}' has size {e.SizeBits} bits.");
            if ((e.KeyKind == KeyKind.Ec) != (e.CurveName is not null)) throw new ArgumentException($"Entry '{e.FileName}': EC keys, and only they, have a curve.");
        }
        foreach (var n in NotExported)
        {
            if (n is null) throw new ArgumentException("A not-exported key is null.");
            RequireHex(n.IdHex, "id", any: true);
            if (n.Label is null || n.Reason is null) throw new ArgumentException("A not-exported key needs a label and a reason.");
            if (!Enum.IsDefined(n.KeyKind)) throw new ArgumentException("A not-exported key has an invalid kind.");
        }
    }

    /// <summary>A plain file name, portable to Windows, macOS and Linux: no folders, no "..".</summary>
    public static void ValidateFileName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 255)
            throw new ArgumentException("A file name in the manifest must be 1..255 characters.");
        if (name is "." or ".." || name.EndsWith('.') || name.EndsWith(' ') || name.StartsWith(' ')
            || name.Any(c => c < 0x20 || c == 0x7F || "/\\:*?\"<>|".Contains(c)))
            throw new ArgumentException($"'{name}' is not a plain, portable file name (no folders, no / \\ : * ? \" < > |).");
        string stem = name.Split('.')[0].ToUpperInvariant();
        if (stem is "CON" or "PRN" or "AUX" or "NUL" || (stem.Length == 4 && (stem.StartsWith("COM") || stem.StartsWith("LPT")) && char.IsDigit(stem[3])))
            throw new ArgumentException($"'{name}' is a reserved device name on Windows.");
    }

    private static void RequireHex(string? hex, string what, int bytes = -1, bool any = false)
    {
        if (hex is null || hex.Length % 2 != 0 || hex.Any(c => !(c is >= '0' and <= '9' or >= 'a' and <= 'f')))
            throw new ArgumentException($"The {what} must be lower-case hex.");
        if (!any && hex.Length != bytes * 2)
            throw new ArgumentException($"The {what} must be {bytes} bytes.");
    }

    private static KeyKind ParseKind(string kind) =>
        Enum.TryParse<KeyKind>(kind, ignoreCase: false, out var k) && k.ToString() == kind
            ? k : throw new FormatException($"unknown key kind \"{kind}\"");

    private static JsonElement.ArrayEnumerator Array(JsonElement root, string name)
    {
        var e = DigestedJson.Get(root, name);
        return e.ValueKind == JsonValueKind.Array ? e.EnumerateArray() : throw new FormatException($"\"{name}\" is not an array");
    }
}
