namespace PicoHsm.Backup;

/// <summary>A whole-device backup as Backup-PicoHsm made it: the folder, its manifest, what is in it and what is not.</summary>
public sealed class PicoHsmBackupSet
{
    public required string Directory { get; init; }
    public required string ManifestPath { get; init; }
    public required DateTimeOffset Created { get; init; }
    public required string Kcv { get; init; }
    public string? SourceToken { get; init; }
    public string? SourceSerial { get; init; }
    public PicoKeyBackup[] Backups { get; init; } = Array.Empty<PicoKeyBackup>();
    /// <summary>"id 'label': reason" for each key that could not be exported.</summary>
    public string[] NotExported { get; init; } = Array.Empty<string>();
    public int KeyCount => Backups.Length;
    public bool Complete => NotExported.Length == 0;
}
