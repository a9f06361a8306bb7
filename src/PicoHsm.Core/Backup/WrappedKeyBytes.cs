namespace PicoHsm.Backup;

/// <summary>
/// A key wrapped under the DKEK, as the bytes of its backup file, not yet written anywhere: what a
/// backend's export makes before the disk is touched, so that a backup can write one key's file while
/// the device wraps the next (see <see cref="Common.DurableFileWriter"/>).
/// </summary>
public sealed class WrappedKeyBytes
{
    private readonly Func<string, PicoKeyBackup> _describe;

    public WrappedKeyBytes(byte[] bytes, Func<string, PicoKeyBackup> describe)
    {
        Bytes = bytes ?? throw new ArgumentNullException(nameof(bytes));
        _describe = describe ?? throw new ArgumentNullException(nameof(describe));
    }

    /// <summary>The file's content (not to be changed).</summary>
    public byte[] Bytes { get; }

    /// <summary>The backup as it reads once these bytes are the file at <paramref name="path"/> (reads nothing from disk).</summary>
    public PicoKeyBackup DescribeAt(string path) => _describe(path);
}
