using System.Runtime.Versioning;
using PicoHsm.Common;

namespace PicoHsm.Core.Tests.Common;

// AtomicFile.DirectorySynced is one static hook: the classes that set it do not run side by side.
[Collection("AtomicFile hooks")]
public sealed class AtomicFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "atomicfile-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose()
    {
        AtomicFile.BeforeMove.Value = null;
        AtomicFile.DirectorySynced = null;
        Directory.Delete(_dir, recursive: true);
    }

    private string[] Entries() => Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName).Order().ToArray()!;

    [Fact]
    public void WritesTheBytesAndLeavesNoTempFile()
    {
        string path = Path.Combine(_dir, "key.pkb");
        byte[] data = Enumerable.Range(0, 10000).Select(i => (byte)i).ToArray();
        AtomicFile.WriteAllBytes(path, data, overwrite: false);
        Assert.Equal(data, File.ReadAllBytes(path));
        Assert.Equal(new[] { "key.pkb" }, Entries());
    }

    [FactNotOnWindows("Unix file modes; on Windows the file gets a protected DACL, not checked here")]
    [UnsupportedOSPlatform("windows")]
    public void TheFileIsOwnerOnly()
    {
        string path = Path.Combine(_dir, "share.dkekshare");
        AtomicFile.WriteAllBytes(path, new byte[] { 1, 2, 3 }, overwrite: false);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        // also when it replaces a world-readable file
        string other = Path.Combine(_dir, "old.pkb");
        File.WriteAllBytes(other, new byte[] { 9 });
        File.SetUnixFileMode(other, (UnixFileMode)0b110_100_100);
        AtomicFile.WriteAllBytes(other, new byte[] { 4 }, overwrite: true);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(other));
    }

    [FactNotOnWindows("Unix file modes; on Windows the file gets a protected DACL, not checked here")]
    [UnsupportedOSPlatform("windows")]
    public void TheTempFileIsOwnerOnlyFromTheStart()
    {
        UnixFileMode? seen = null;
        AtomicFile.BeforeMove.Value = temp => { if (!OperatingSystem.IsWindows()) seen = File.GetUnixFileMode(temp); };
        AtomicFile.WriteAllBytes(Path.Combine(_dir, "x"), new byte[] { 1 }, overwrite: false);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, seen);
    }

    [Fact]
    public void DoesNotOverwriteWithoutTheFlag()
    {
        string path = Path.Combine(_dir, "manifest.json");
        File.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        var ex = Assert.Throws<IOException>(() => AtomicFile.WriteAllBytes(path, new byte[] { 4, 5 }, overwrite: false));
        Assert.Contains("already exists", ex.Message);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(path));
        Assert.Equal(new[] { "manifest.json" }, Entries());
    }

    [Fact]
    public void OverwritesWithTheFlag()
    {
        string path = Path.Combine(_dir, "manifest.json");
        File.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        AtomicFile.WriteAllBytes(path, new byte[] { 4, 5 }, overwrite: true);
        Assert.Equal(new byte[] { 4, 5 }, File.ReadAllBytes(path));
        Assert.Equal(new[] { "manifest.json" }, Entries());
    }

    [Fact]
    public void ATargetThatAppearsDuringTheWriteIsNotOverwritten()
    {
        // The existence check at the start is not enough: the rename itself must refuse.
        string path = Path.Combine(_dir, "race.pkb");
        AtomicFile.BeforeMove.Value = _ => File.WriteAllBytes(path, new byte[] { 7 });
        Assert.Throws<IOException>(() => AtomicFile.WriteAllBytes(path, new byte[] { 1, 2 }, overwrite: false));
        Assert.Equal(new byte[] { 7 }, File.ReadAllBytes(path));
        Assert.Equal(new[] { "race.pkb" }, Entries());
    }

    [Fact]
    public void AFailureBeforeTheRenameLeavesNothing()
    {
        string path = Path.Combine(_dir, "fail.pkb");
        AtomicFile.BeforeMove.Value = _ => throw new IOException("simulated disk failure");
        Assert.Throws<IOException>(() => AtomicFile.WriteAllBytes(path, new byte[] { 1, 2 }, overwrite: true));
        Assert.Empty(Entries());
    }

    [Fact]
    public void AFailureKeepsTheOldContent()
    {
        string path = Path.Combine(_dir, "keep.pkb");
        File.WriteAllBytes(path, new byte[] { 1 });
        AtomicFile.BeforeMove.Value = _ => throw new IOException("simulated disk failure");
        Assert.Throws<IOException>(() => AtomicFile.WriteAllBytes(path, new byte[] { 2 }, overwrite: true));
        Assert.Equal(new byte[] { 1 }, File.ReadAllBytes(path));
        Assert.Equal(new[] { "keep.pkb" }, Entries());
    }

    [Fact]
    public void MissingFolderAndFolderTargetsAreRefused()
    {
        Assert.Throws<DirectoryNotFoundException>(() =>
            AtomicFile.WriteAllBytes(Path.Combine(_dir, "no-such-dir", "a"), new byte[] { 1 }, overwrite: true));
        Directory.CreateDirectory(Path.Combine(_dir, "sub"));
        Assert.Throws<IOException>(() => AtomicFile.WriteAllBytes(Path.Combine(_dir, "sub"), new byte[] { 1 }, overwrite: true));
        Assert.Equal(new[] { "sub" }, Entries());
    }

    [Fact]
    public void EmptyDataIsWritten()
    {
        string path = Path.Combine(_dir, "empty");
        AtomicFile.WriteAllBytes(path, ReadOnlySpan<byte>.Empty, overwrite: false);
        Assert.Empty(File.ReadAllBytes(path));
    }
    /// <summary>Counts the fsyncs of this test's folder (the hook is static: other tests' folders are ignored).</summary>
    private Func<int> CountSyncs()
    {
        int n = 0;
        AtomicFile.DirectorySynced = d => { if (d == _dir) Interlocked.Increment(ref n); };
        return () => Volatile.Read(ref n);
    }

    [FactNotOnWindows("the folder fsync is Unix only (NTFS journals renames)")]
    public void EachWriteSyncsItsFolder()
    {
        var syncs = CountSyncs();
        for (int i = 0; i < 3; i++) AtomicFile.WriteAllBytes(Path.Combine(_dir, $"k{i}"), new byte[] { 1 }, overwrite: false);
        Assert.Equal(3, syncs());
    }
}
