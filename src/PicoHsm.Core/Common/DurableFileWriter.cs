namespace PicoHsm.Common;

/// <summary>
/// Durable writes of many files (<see cref="AtomicFile"/>: temporary file, fsync, rename) on a few
/// threads at once, while the caller goes on with the next file's content (a backup: the token wraps the
/// next key while this one reaches the disk).
/// </summary>
/// <remarks>
/// Why threads: a file's fsync waits for the file system's journal commit, and journaling file systems
/// (ext4, XFS) commit the fsyncs that wait at the same time in one transaction. Measured on this project's
/// 2-core machine (ext4): 1,000 files of 1.4 KiB written one after the other took 0.96 s, with two writers
/// 0.17 s, with four 0.14 s. Every file is still written exactly as <see cref="AtomicFile.WriteAllBytes(string, ReadOnlySpan{byte}, bool)"/>
/// writes it; only the folder's fsync (which makes the renames durable) is left to <see cref="Flush"/>, once
/// per folder, so a caller reports a file (or publishes a set of them) only after Flush returned.
/// At most <c>capacity</c> files wait in memory: <see cref="Write"/> blocks while the writers catch up.
/// </remarks>
public sealed class DurableFileWriter : IDisposable
{
    /// <summary>Files written at once: past four the measured gain is small, and each holds a file open.</summary>
    public const int DefaultWriters = 4;

    /// <summary>How long an idle writer waits for the next file before its thread ends.</summary>
    private static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(250);

    private sealed class Item(string path, byte[] data, bool overwrite, Action? written, Action<Exception>? failed)
    {
        public readonly string Path = path;
        public readonly byte[] Data = data;
        public readonly bool Overwrite = overwrite;
        public readonly Action? Written = written;
        public readonly Action<Exception>? Failed = failed;
    }

    private readonly object _lock = new();
    private readonly Queue<Item> _queue = new();
    private readonly HashSet<string> _directories = new(StringComparer.Ordinal);
    private readonly int _writers;
    private readonly int _capacity;
    private readonly bool _stopAtFirstFailure;
    private int _running; // writer threads started and not yet returned
    private int _idle;    // of those, waiting for a file
    private int _inFlight; // queued or being written
    private bool _closed;
    private Exception? _firstFailure;
    private int _written;

    /// <param name="stopAtFirstFailure">
    /// After a write fails, the files still queued are not written (nor reported either way): for a run that
    /// stops at the first failure. Writes already started finish. Otherwise every file is tried.
    /// </param>
    public DurableFileWriter(bool stopAtFirstFailure, int writers = DefaultWriters, int capacity = 64)
    {
        if (writers < 1) throw new ArgumentOutOfRangeException(nameof(writers));
        if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity));
        _stopAtFirstFailure = stopAtFirstFailure;
        _capacity = capacity;
        _writers = writers;
    }

    /// <summary>How many files are written (content fsynced, renamed into place); their folders are durable after <see cref="Flush"/>.</summary>
    public int Written => Volatile.Read(ref _written);

    /// <summary>The first write that failed, if any.</summary>
    public Exception? FirstFailure { get { lock (_lock) return _firstFailure; } }

    /// <summary>
    /// Queues a durable write of <paramref name="data"/> to <paramref name="path"/> (the array must not change
    /// afterwards). <paramref name="written"/> or <paramref name="failed"/> runs on a writer thread when it is done.
    /// </summary>
    public void Write(string path, byte[] data, bool overwrite, Action? written = null, Action<Exception>? failed = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(data);
        lock (_lock)
        {
            if (_closed) throw new ObjectDisposedException(nameof(DurableFileWriter));
            while (_queue.Count >= _capacity) Monitor.Wait(_lock);
            _queue.Enqueue(new Item(path, data, overwrite, written, failed));
            _inFlight++;
            // Writer threads start as files come, up to the limit (one file costs one thread, not four),
            // and each ends when no file came for Linger (a thread start every few files costs more than
            // the overlap gains). Threads of their own, not the pool's: the gain is in several fsyncs
            // waiting at once, which a busy pool would not give. The caller's execution context flows
            // (AtomicFile's test hooks are AsyncLocal).
            if (_running < _writers && _idle < _queue.Count)
            {
                _running++;
                new Thread(Drain) { IsBackground = true, Name = "PicoHsm file writer" }.Start();
            }
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>
    /// Waits for every queued write, then fsyncs each folder a file was renamed into since the last Flush:
    /// from here every file written so far is durable, content and name. Failures are not thrown here: each
    /// file's own callback has its error, and <see cref="FirstFailure"/> the first.
    /// </summary>
    public void Flush() => SyncFoldersOnce(() => _inFlight > 0);

    /// <summary>Waits while <paramref name="busy"/> (under the lock), then fsyncs the folders written to since the last time.</summary>
    private void SyncFoldersOnce(Func<bool> busy)
    {
        string[] dirs;
        lock (_lock)
        {
            while (busy()) Monitor.Wait(_lock);
            dirs = new string[_directories.Count];
            _directories.CopyTo(dirs);
            _directories.Clear();
        }
        foreach (string d in dirs) AtomicFile.FsyncDirectory(d);
    }

    private void Drain()
    {
        while (true)
        {
            Item item;
            lock (_lock)
            {
                int since = Environment.TickCount;
                while (_queue.Count == 0 && !_closed)
                {
                    int left = (int)Linger.TotalMilliseconds - (Environment.TickCount - since);
                    if (left <= 0) break;
                    _idle++;
                    Monitor.Wait(_lock, left);
                    _idle--;
                }
                if (_queue.Count == 0)
                {
                    _running--;
                    Monitor.PulseAll(_lock);
                    return;
                }
                item = _queue.Dequeue();
                Monitor.PulseAll(_lock); // room for the producer
                if (_stopAtFirstFailure && _firstFailure is not null)
                {
                    _inFlight--;
                    continue;
                }
            }
            Exception? error = null;
            bool renamed = false;
            try
            {
                AtomicFile.WriteAllBytes(item.Path, item.Data, item.Overwrite, syncDirectory: false);
                renamed = true;
                Interlocked.Increment(ref _written);
            }
            catch (Exception ex)
            {
                error = ex;
            }
            try
            {
                if (error is null) item.Written?.Invoke();
                else item.Failed?.Invoke(error);
            }
            catch (Exception ex)
            {
                error ??= ex;
            }
            lock (_lock)
            {
                if (renamed) _directories.Add(Path.GetDirectoryName(Path.GetFullPath(item.Path))!);
                if (error is not null) _firstFailure ??= error;
                _inFlight--;
                Monitor.PulseAll(_lock);
            }
        }
    }

    /// <summary>Lets the queued writes finish, then fsyncs their folders (as <see cref="Flush"/>, without throwing).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_closed) return;
            _closed = true;
            Monitor.PulseAll(_lock);
        }
        SyncFoldersOnce(() => _running > 0); // every writer thread has ended
    }
}
