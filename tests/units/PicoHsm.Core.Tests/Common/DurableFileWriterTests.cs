using System.Collections.Concurrent;
using System.Runtime.Versioning;
using PicoHsm.Common;

namespace PicoHsm.Core.Tests.Common;

// AtomicFile.DirectorySynced is one static hook: the classes that set it do not run side by side.
[Collection("AtomicFile hooks")]
public sealed class DurableFileWriterTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "durablewriter-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Content(int i) => Enumerable.Range(0, 1000 + i).Select(b => (byte)(b ^ i)).ToArray();

    [Fact]
    public void EveryFileIsWrittenWhole_ThroughSeveralWriters_AndNoTemporaryFileIsLeft()
    {
        int written = 0;
        var threads = new ConcurrentDictionary<int, bool>();
        using (var w = new DurableFileWriter(stopAtFirstFailure: true))
        {
            for (int i = 0; i < 200; i++)
                w.Write(Path.Combine(_dir, $"k{i}.pkb"), Content(i), overwrite: false,
                    written: () => { Interlocked.Increment(ref written); threads[Environment.CurrentManagedThreadId] = true; });
            w.Flush();
            Assert.Equal(200, w.Written);
            Assert.Null(w.FirstFailure);
        }
        Assert.Equal(200, written);
        Assert.True(threads.Count > 1, "the files were written by one thread only");
        for (int i = 0; i < 200; i++) Assert.Equal(Content(i), File.ReadAllBytes(Path.Combine(_dir, $"k{i}.pkb")));
        Assert.Equal(200, Directory.GetFileSystemEntries(_dir).Length);
    }

    [FactNotOnWindows("folder fsync is a Unix step")]
    [UnsupportedOSPlatform("windows")]
    public void Flush_SyncsEachFolderOnce_AfterItsFilesAreRenamed_AndTheFilesAreOwnerOnly()
    {
        string a = Directory.CreateDirectory(Path.Combine(_dir, "a")).FullName, b = Directory.CreateDirectory(Path.Combine(_dir, "b")).FullName;
        var synced = new ConcurrentQueue<(string Dir, int Files)>();
        Action<string> hook = d => { if (d == a || d == b) synced.Enqueue((d, Directory.GetFiles(d).Length)); };
        AtomicFile.DirectorySynced += hook;
        try
        {
            using var w = new DurableFileWriter(stopAtFirstFailure: false);
            for (int i = 0; i < 20; i++) w.Write(Path.Combine(i % 2 == 0 ? a : b, $"k{i}.pkb"), Content(i), overwrite: false);
            w.Flush();
            // One fsync per folder, and only once all ten of its files are in place.
            Assert.Equal(new[] { (a, 10), (b, 10) }, synced.OrderBy(s => s.Dir).ToArray());
            w.Flush();
            Assert.Equal(2, synced.Count); // nothing new written: nothing to sync
        }
        finally { AtomicFile.DirectorySynced -= hook; }
        Assert.All(Directory.GetFiles(a).Concat(Directory.GetFiles(b)), f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));
    }

    [Fact]
    public void AFailedWrite_IsReportedToItsOwnCallback_AndTheOthersAreWritten()
    {
        var errors = new ConcurrentDictionary<int, Exception>();
        using var w = new DurableFileWriter(stopAtFirstFailure: false);
        File.WriteAllBytes(Path.Combine(_dir, "k3.pkb"), new byte[] { 1 });
        for (int i = 0; i < 8; i++)
        {
            int n = i;
            w.Write(Path.Combine(_dir, $"k{i}.pkb"), Content(i), overwrite: false, failed: ex => errors[n] = ex);
        }
        w.Flush();
        Assert.Equal(new[] { 3 }, errors.Keys.ToArray());
        Assert.IsAssignableFrom<IOException>(errors[3]);
        Assert.Same(errors[3], w.FirstFailure);
        Assert.Equal(7, w.Written);
        Assert.Equal(new byte[] { 1 }, File.ReadAllBytes(Path.Combine(_dir, "k3.pkb"))); // not overwritten
        Assert.Equal(8, Directory.GetFileSystemEntries(_dir).Length); // no temporary file
    }

    [Fact]
    public void StopAtFirstFailure_WritesNothingQueuedAfterTheFailure()
    {
        int calls = 0;
        using var w = new DurableFileWriter(stopAtFirstFailure: true, writers: 1);
        w.Write(Path.Combine(_dir, "missing", "k0.pkb"), Content(0), overwrite: false, failed: _ => Interlocked.Increment(ref calls));
        for (int i = 1; i < 10; i++)
            w.Write(Path.Combine(_dir, $"k{i}.pkb"), Content(i), overwrite: false, written: () => Interlocked.Increment(ref calls), failed: _ => Interlocked.Increment(ref calls));
        w.Flush();
        Assert.IsAssignableFrom<IOException>(w.FirstFailure);
        Assert.Equal(1, calls); // only the failed file's own callback
        Assert.Equal(0, w.Written);
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Write_WaitsWhileTheQueueIsFull_AndDisposeLetsTheQueuedFilesLand()
    {
        var w = new DurableFileWriter(stopAtFirstFailure: false, writers: 1, capacity: 2);
        for (int i = 0; i < 30; i++) w.Write(Path.Combine(_dir, $"k{i}.pkb"), Content(i), overwrite: false);
        w.Dispose();
        Assert.Equal(30, w.Written);
        Assert.Throws<ObjectDisposedException>(() => w.Write(Path.Combine(_dir, "late.pkb"), Content(0), overwrite: false));
        Assert.Equal(30, Directory.GetFiles(_dir).Length);
    }
}
