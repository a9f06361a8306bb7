namespace PicoHsm.Dkek;

public enum DkekShareFileReason
{
    /// <summary>The bytes do not start with the share file magic: this is some other file.</summary>
    NotAShareFile,
    /// <summary>A share file of a format version this build does not read (made by a newer version).</summary>
    UnsupportedVersion,
    /// <summary>The structure is damaged: truncated, trailing bytes, a field out of range, an unknown algorithm.</summary>
    Corrupt,
    /// <summary>The key derivation parameters are weaker than the minimum (refused so a tampered file cannot downgrade).</summary>
    WeakKdf,
    /// <summary>The AES-GCM tag does not verify: wrong password, or the file was changed.</summary>
    WrongPasswordOrTampered,
}

/// <summary>A DKEK share file that cannot be read or decrypted. The message names the file, never the password.</summary>
public sealed class DkekShareFileException : Exception
{
    public DkekShareFileException(DkekShareFileReason reason, string? sourceName, string message, Exception? inner = null)
        : base(message, inner)
    {
        Reason = reason;
        SourceName = sourceName;
    }

    public DkekShareFileReason Reason { get; }

    /// <summary>The file name (or other source description) the caller gave when reading, if any.</summary>
    public string? SourceName { get; }
}
