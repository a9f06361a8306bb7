using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Backup;

/// <summary>A backup file of one key, as Export-PicoWrappedKey writes it and Get-PicoKeyBackup reads it.</summary>
public sealed class PicoKeyBackup
{
    public required string Path { get; init; }
    /// <summary>"PicoHsm" (this module's format for generic tokens) or "ScHsmTool" (sc-hsm-tool --wrap-key files).</summary>
    public required string Format { get; init; }
    public string? Id { get; init; }
    public string? Label { get; init; }
    public string? KeyClass { get; init; }
    public KeyKind KeyType { get; init; }
    public int Size { get; init; }
    public string? Curve { get; init; }
    /// <summary>KCV of the DKEK the key is wrapped under.</summary>
    public required string Kcv { get; init; }
    /// <summary>SHA-256 of the whole file, lower-case hex.</summary>
    public required string Sha256 { get; init; }
    public DateTimeOffset? Created { get; init; }
    public string? Mechanism { get; init; }
    public string? SourceToken { get; init; }
    public string? SourceSerial { get; init; }
    public bool HasPublicKey { get; init; }
    public bool HasCertificate { get; init; }
    public string? PublicKeyFingerprint { get; init; }
    /// <summary>Key reference of the key on the SmartCard-HSM it came from, when known.</summary>
    public int? KeyReference { get; init; }

    /// <summary>
    /// A .pkb: whether it carries an authentication tag (format version 2; the tag itself is checked only
    /// with the DKEK: on a session, or offline from the shares). Null for sc-hsm-tool files.
    /// </summary>
    public bool? Authenticated { get; init; }

    /// <summary>The warning to give before using an unauthenticated (version 1) .pkb; null otherwise.</summary>
    public string? AuthenticationWarning => Authenticated == false ? BackupAuthentication.UnauthenticatedWarning(Path) : null;

    private readonly WrappedKeyFile? _content;
    private readonly byte[]? _scHsmFile;

    /// <summary>The parsed content of a PicoHsm-format file (generic tokens); of a description <see cref="OnDisk"/>, read from the file when asked.</summary>
    internal WrappedKeyFile? Content { get => _content ?? (OnDisk ? ReadBack().Content : null); init => _content = value; }
    /// <summary>The raw bytes of an sc-hsm-tool file (card path); of a description <see cref="OnDisk"/>, read from the file when asked.</summary>
    internal byte[]? ScHsmFile { get => _scHsmFile ?? (OnDisk ? ReadBack().ScHsmFile : null); init => _scHsmFile = value; }

    /// <summary>
    /// A description that does not hold the file (the set Backup-PicoHsm returns: thousands of keys must
    /// not each keep their parsed file in memory): a restore or a test reads the file at
    /// <see cref="Path"/> when it needs it, each time, and refuses one that is no longer the file
    /// described (its SHA-256 differs).
    /// </summary>
    internal bool OnDisk { get; init; }

    private PicoKeyBackup ReadBack()
    {
        var b = BackupFiles.Read(Path);
        if (!string.Equals(b.Sha256, Sha256, StringComparison.OrdinalIgnoreCase))
            throw new PicoHsmException(PicoErrorKind.InvalidData, "BackupChanged",
                $"'{Path}' is not the file that was backed up: its SHA-256 changed since. Read it again with Get-PicoKeyBackup to use it as it is now, or restore from another copy of the backup.", Path);
        return b;
    }

    /// <summary>This description at <paramref name="path"/> without the file's content (see <see cref="OnDisk"/>).</summary>
    internal PicoKeyBackup WithoutContent(string path) => new()
    {
        Path = path, Format = Format, Id = Id, Label = Label, KeyClass = KeyClass, KeyType = KeyType, Size = Size, Curve = Curve,
        Kcv = Kcv, Sha256 = Sha256, Created = Created, Mechanism = Mechanism, SourceToken = SourceToken, SourceSerial = SourceSerial,
        HasPublicKey = HasPublicKey, HasCertificate = HasCertificate, PublicKeyFingerprint = PublicKeyFingerprint,
        KeyReference = KeyReference, Authenticated = Authenticated, OnDisk = true,
    };

    public string Algorithm => KeyType switch
    {
        KeyKind.Rsa => $"RSA-{Size}",
        KeyKind.Ec => $"EC {Curve ?? Size.ToString()}",
        KeyKind.Aes => $"AES-{Size}",
        KeyKind.GenericSecret => $"Secret-{Size}",
        _ => "Unknown",
    };

    public override string ToString() => Path;
}

/// <summary>What Test-PicoKeyBackup found.</summary>
public sealed class PicoBackupTestResult
{
    public required string Path { get; init; }
    public string? Id { get; init; }
    public string? Label { get; init; }
    public string? Kcv { get; init; }
    /// <summary>The file is well formed and its digests check out.</summary>
    public bool Valid { get; init; }
    /// <summary>Null when not checked (no session).</summary>
    public bool? DkekMatch { get; init; }
    public bool? Compatible { get; init; }
    /// <summary>Null unless -RestoreTest was asked for.</summary>
    public bool? Restorable { get; init; }
    public string[] Problems { get; init; } = Array.Empty<string>();
    /// <summary>What the caller should hear but does not fail the test (e.g. an unauthenticated version 1 file).</summary>
    public string[] Warnings { get; init; } = Array.Empty<string>();
    public string? Detail { get; init; }
    /// <summary>Everything asked was checked and passed.</summary>
    public bool Passed => Valid && DkekMatch != false && Compatible != false && Restorable != false && Problems.Length == 0;
}
