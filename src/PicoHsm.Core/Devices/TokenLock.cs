using System.Security.Cryptography;
using System.Text;
using PicoHsm.Common;

namespace PicoHsm.Devices;

/// <summary>
/// Serialises the changes this host makes to one token, across threads, sessions and processes.
/// Why: PKCS#11 has no "create if no object has this id": a restore or a key generation checks that
/// the id is free, then creates. Two processes restoring the same backup (two admins, a scheduled
/// task and a console) both see the id free and both create, and the token then holds the key twice.
/// Taken around each check-and-create, the second process finds the first's key and reports it as
/// already present.
/// <para>
/// Unix: an exclusive <c>flock</c> on a file in a shared, sticky folder under the temp folder (one
/// file per token, named by a hash of its identity; the lock ends with the process, so a crash
/// cannot leave it held). Windows: a named mutex in the Global namespace. The lock cannot reach
/// another host: two hosts on one network HSM are not serialised (docs/reliability.md says so).
/// </para>
/// </summary>
public sealed class TokenLock : IDisposable
{
    /// <summary>How long a change waits for another process's change to the same token.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    private FileStream? _file;
    private Mutex? _mutex;

    private TokenLock(FileStream? file, Mutex? mutex)
    {
        _file = file;
        _mutex = mutex;
    }

    /// <summary>The file (Unix) or mutex (Windows) name for a token: its identity, hashed.</summary>
    public static string NameFor(PicoHsmToken token)
    {
        ArgumentNullException.ThrowIfNull(token);
        // Serial number and model name a token across module paths (OpenSC directly or through
        // p11-kit) and slot numbers, which change when readers come and go.
        string identity = string.Join("\n", token.Manufacturer ?? "", token.Model ?? "", token.SerialNumber ?? "",
            string.IsNullOrEmpty(token.SerialNumber) ? token.Label ?? "" : "");
        byte[] hash = SHA256.HashData(Encoding.UTF8.GetBytes(identity));
        return "picohsm-token-" + Convert.ToHexString(hash, 0, 12).ToLowerInvariant();
    }

    private static readonly AsyncLocal<CancellationToken> Ambient = new();

    /// <summary>
    /// Every lock wait on this thread (and the work it starts) until the scope is disposed also ends
    /// when <paramref name="cancellation"/> is cancelled. Why: the waits happen deep in a backend
    /// (a restore, a key generation, a DKEK import), whose interface takes no token; the cmdlet base
    /// class opens this scope around each step with its Ctrl+C token, so a stop ends a wait for
    /// another process's change at once instead of after <see cref="DefaultTimeout"/>.
    /// </summary>
    public static IDisposable CancelWaitsWith(CancellationToken cancellation)
    {
        var previous = Ambient.Value;
        Ambient.Value = cancellation;
        return new AmbientScope(previous);
    }

    private sealed class AmbientScope : IDisposable
    {
        private readonly CancellationToken _previous;
        private int _done;
        public AmbientScope(CancellationToken previous) => _previous = previous;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) Ambient.Value = _previous;
        }
    }

    /// <summary>
    /// Takes the token's lock, waiting for another holder up to <paramref name="timeout"/>. The wait ends
    /// with an <see cref="OperationCanceledException"/> (the core's "Stopped", a cmdlet's pipeline stop) as
    /// soon as <paramref name="cancellation"/> or the scope's token (<see cref="CancelWaitsWith"/>) is cancelled.
    /// </summary>
    public static TokenLock Acquire(PicoHsmToken token, CancellationToken cancellation, TimeSpan? timeout = null)
    {
        string name = NameFor(token);
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        var ambient = Ambient.Value;
        if (!cancellation.CanBeCanceled) cancellation = ambient;
        else if (ambient.CanBeCanceled && ambient != cancellation)
        {
            using var both = CancellationTokenSource.CreateLinkedTokenSource(cancellation, ambient);
            return Acquire(token, name, both.Token, deadline);
        }
        return Acquire(token, name, cancellation, deadline);
    }

    private static TokenLock Acquire(PicoHsmToken token, string name, CancellationToken cancellation, DateTime deadline)
    {
        try
        {
            return OperatingSystem.IsWindows() ? AcquireMutex(token, name, cancellation, deadline) : AcquireFile(token, name, cancellation, deadline);
        }
        catch (OperationCanceledException ex) when (ex.CancellationToken == cancellation)
        {
            throw new OperationCanceledException(
                $"Stopped while waiting for another PicoHsm process (or session) to finish changing token '{token.Label}': nothing was changed on it.", ex, cancellation);
        }
    }

    private static TokenLock AcquireMutex(PicoHsmToken token, string name, CancellationToken cancellation, DateTime deadline)
    {
        var mutex = new Mutex(false, @"Global\" + name);
        try
        {
            while (true)
            {
                cancellation.ThrowIfCancellationRequested();
                try
                {
                    if (mutex.WaitOne(TimeSpan.FromMilliseconds(200))) return new TokenLock(null, mutex);
                }
                catch (AbandonedMutexException)
                {
                    // The holder died: the mutex is ours now, and PKCS#11 changes are atomic per object.
                    return new TokenLock(null, mutex);
                }
                if (DateTime.UtcNow > deadline) throw Busy(token, "mutex " + name);
            }
        }
        catch
        {
            mutex.Dispose();
            throw;
        }
    }

    private static TokenLock AcquireFile(PicoHsmToken token, string name, CancellationToken cancellation, DateTime deadline)
    {
        string path = Path.Combine(LockFolder(), name + ".lock");
        int delay = 2;
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            try
            {
                // FileShare.None is an exclusive, non-blocking flock on Unix: held by this open file
                // only, released when it is closed or the process ends.
                var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
                TryShare(path);
                return new TokenLock(fs, null);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Held by another process (or another session of this one): wait for it.
            }
            catch (UnauthorizedAccessException ex)
            {
                throw new PicoHsmException(PicoErrorKind.PermissionDenied, "TokenLockDenied",
                    $"The token lock file '{path}' cannot be opened ({ex.Message}). It is shared by every user that changes this token from this host: " +
                    "make it readable and writable by them (chmod 666), or remove it when no PicoHsm process is running.", path, ex);
            }
            if (DateTime.UtcNow > deadline) throw Busy(token, path);
            cancellation.WaitHandle.WaitOne(delay); // wakes at once when cancelled
            delay = Math.Min(delay * 2, 100);
        }
    }

    /// <summary>One folder for every user of this host: world-writable with the sticky bit, as /tmp.</summary>
    private static string LockFolder()
    {
        string dir = Path.Combine(Path.GetTempPath(), "picohsm-locks");
        if (!Directory.Exists(dir))
        {
            Directory.CreateDirectory(dir);
            try { File.SetUnixFileMode(dir, (UnixFileMode)0x3FF /* 01777 */); }
            catch (Exception ex) when (ex is UnauthorizedAccessException or IOException) { /* another user made it */ }
        }
        return dir;
    }

    private static void TryShare(string path)
    {
        // The lock file holds nothing; another user's process must be able to open it to wait its turn.
        try
        {
            const UnixFileMode rw = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;
            if (File.GetUnixFileMode(path) != rw) File.SetUnixFileMode(path, rw);
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException) { /* not ours: its owner made it shareable */ }
    }

    private static PicoHsmException Busy(PicoHsmToken token, string what) => new(PicoErrorKind.ResourceUnavailable, "TokenBusy",
        $"Another PicoHsm process (or session) has been changing token '{token.Label}' for over a minute and still holds its lock ({what}). " +
        "Wait for it to finish, or stop it, and run the command again.", token.Label);

    public void Dispose()
    {
        _file?.Dispose();
        _file = null;
        if (_mutex is not null)
        {
            _mutex.ReleaseMutex();
            _mutex.Dispose();
            _mutex = null;
        }
    }
}
