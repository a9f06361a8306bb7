namespace PicoHsm.Backup;

public enum BackupFileReason
{
    /// <summary>Not a file of the expected kind (another JSON document, a binary file...).</summary>
    NotABackup,
    /// <summary>A format version this build does not read.</summary>
    UnsupportedVersion,
    /// <summary>The integrity digest does not match the content: the file was changed or damaged.</summary>
    DigestMismatch,
    /// <summary>The digest matches but the content is not valid (missing or out-of-range fields, non-canonical form).</summary>
    Corrupt,
}

/// <summary>A backup file (wrapped key or manifest) that cannot be read. The message names the file.</summary>
public sealed class BackupFileException : Exception
{
    public BackupFileException(BackupFileReason reason, string? sourceName, string message, Exception? inner = null)
        : base(message, inner)
    {
        Reason = reason;
        SourceName = sourceName;
    }

    public BackupFileReason Reason { get; }
    public string? SourceName { get; }
}
