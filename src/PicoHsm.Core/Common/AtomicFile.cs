using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Security.AccessControl;
using System.Security.Cryptography;
using System.Security.Principal;

namespace PicoHsm.Common;

/// <summary>
/// Writes files so that the target is either absent, its old content, or the complete new content,
/// never partial; and readable by the current user only from the moment it exists.
/// </summary>
/// <remarks>
/// Steps: create a temporary file in the target's directory (".name.random.tmp") with owner-only
/// permissions set at creation (Unix: mode 0600 via <see cref="FileStreamOptions.UnixCreateMode"/>,
/// then chmod 0600 on the handle so the umask cannot widen or narrow it; Windows: a protected DACL
/// granting only the current user full control, given to CreateFile so there is no window with
/// inherited ACEs); write; flush to disk (fsync); rename over the target; on Unix, fsync the
/// directory (best effort) so the rename itself survives a crash. Without overwrite the rename is
/// File.Move(overwrite: false): on Windows MoveFileEx without REPLACE_EXISTING and on Unix
/// link()+unlink(), both of which fail if the target appeared in the meantime. The temporary file is
/// deleted on any failure.
/// </remarks>
public static class AtomicFile
{
    /// <summary>Test hook, called with the temp path after it is written and before the rename.</summary>
    internal static readonly AsyncLocal<Action<string>?> BeforeMove = new();

    /// <summary>Test hook, called with the folder after each fsync of a folder.</summary>
    internal static Action<string>? DirectorySynced;

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> data, bool overwrite) => WriteAllBytes(path, data, overwrite, syncDirectory: true);

    /// <summary>
    /// As <see cref="WriteAllBytes(string, ReadOnlySpan{byte}, bool)"/>; with <paramref name="syncDirectory"/> false the
    /// folder is not fsynced after the rename: the caller
    /// fsyncs it (<see cref="FsyncDirectory"/>) before it reports the file (see <see cref="DurableFileWriter"/>).
    /// </summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> data, bool overwrite, bool syncDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string name = Path.GetFileName(full);
        string? directory = Path.GetDirectoryName(full);
        if (string.IsNullOrEmpty(name) || string.IsNullOrEmpty(directory))
            throw new ArgumentException($"'{path}' does not name a file.", nameof(path));
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"The folder '{directory}' does not exist.");
        if (Directory.Exists(full))
            throw new IOException($"'{full}' is a folder.");
        if (!overwrite && File.Exists(full))
            throw new IOException($"The file '{full}' already exists (not overwritten).");

        string temp = Path.Combine(directory, $".{name}.{Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.tmp");
        bool moved = false;
        try
        {
            using (FileStream stream = CreateOwnerOnly(temp))
            {
                stream.Write(data);
                stream.Flush(flushToDisk: true);
            }
            BeforeMove.Value?.Invoke(temp);
            try
            {
                File.Move(temp, full, overwrite);
            }
            catch (IOException ex) when (!overwrite && File.Exists(full))
            {
                throw new IOException($"The file '{full}' already exists (not overwritten).", ex);
            }
            moved = true;
            if (syncDirectory && !OperatingSystem.IsWindows())
            {
                FsyncDirectory(directory);
            }
        }
        finally
        {
            if (!moved)
            {
                try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }
    }

    private static FileStream CreateOwnerOnly(string path)
    {
        if (OperatingSystem.IsWindows())
            return CreateOwnerOnlyWindows(path);

        const UnixFileMode ownerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
#if NET
        var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            UnixCreateMode = ownerOnly,
        });
#else
        var stream = UnixFiles.CreateNew(path, ownerOnly);
#endif
        try
        {
            try
            {
                File.SetUnixFileMode(stream.SafeFileHandle, ownerOnly); // exactly 0600 whatever the umask
            }
            catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
            {
                // Some file systems (FAT/exFAT USB sticks, some network shares) refuse chmod and
                // take modes from mount options. Accept only if nobody else can access the file.
                const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                    | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
                UnixFileMode actual = File.GetUnixFileMode(stream.SafeFileHandle);
                if ((actual & others) != 0)
                    throw new IOException(
                        $"Cannot make '{path}' readable by its owner only on this file system (its mode is {Convert.ToString((int)actual, 8)}); " +
                        "choose a folder on a file system with Unix permissions, or mount it with owner-only permissions.", ex);
            }
            return stream;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    [SupportedOSPlatform("windows")]
    private static FileStream CreateOwnerOnlyWindows(string path)
    {
        var user = WindowsIdentity.GetCurrent().User
            ?? throw new InvalidOperationException("Cannot determine the current Windows user.");
        var security = new FileSecurity();
        security.SetOwner(user);
        security.SetAccessRuleProtection(isProtected: true, preserveInheritance: false);
        security.AddAccessRule(new FileSystemAccessRule(user, FileSystemRights.FullControl, AccessControlType.Allow));
        return new FileInfo(path).Create(FileMode.CreateNew, FileSystemRights.Write | FileSystemRights.ReadData,
            FileShare.None, 4096, FileOptions.None, security);
    }

    /// <summary>
    /// Makes a folder's entries durable (a file created or renamed in it, a folder renamed into it):
    /// fsync of the folder on Unix, best effort (not every file system lets a folder be opened or
    /// synced); nothing on Windows, where NTFS journals renames.
    /// </summary>
    public static void FsyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows()) return;
        try
        {
            int fd = Native.open(directory, 0 /* O_RDONLY */);
            if (fd < 0) return;
            try { Native.fsync(fd); }
            finally { Native.close(fd); }
            DirectorySynced?.Invoke(directory);
        }
        catch (DllNotFoundException) { }
        catch (EntryPointNotFoundException) { }
    }

    private static class Native
    {
        [DllImport("libc", SetLastError = true)]
#if NET
        public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
#else
        public static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags); // UTF-8 on Unix (the only caller)
#endif

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);
    }
}
