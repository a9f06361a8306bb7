#if NETSTANDARD2_0
// Owner-only files and folders on Unix without .NET 7's UnixCreateMode/UnixFileMode APIs: libc's
// open(O_CREAT|O_EXCL, 0600), fchmod and chmod. Used when the netstandard2.0 build runs on Linux
// or macOS (PowerShell 7 loading the Desktop build, Mono); on Windows the ACL path is taken.
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace PicoHsm.Compat;

internal static class UnixFiles
{
    private static bool IsMac => RuntimeInformation.IsOSPlatform(OSPlatform.OSX);

    /// <summary>Creates <paramref name="path"/> (it must not exist) with <paramref name="mode"/>, open for writing.</summary>
    public static FileStream CreateNew(string path, UnixFileMode mode)
    {
        // O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC
        int flags = IsMac ? 0x0001 | 0x0200 | 0x0800 | 0x1000000 : 0x01 | 0x40 | 0x80 | 0x80000;
        int fd = Libc.open(Path.GetFullPath(path), flags, (int)mode);
        if (fd < 0)
        {
            int errno = Marshal.GetLastWin32Error();
            if (errno == 17) throw new IOException($"The file '{path}' already exists.", 80); // EEXIST; HResult as .NET's
            if (errno is 13 or 1) throw new UnauthorizedAccessException($"Access to the path '{path}' is denied.");
            throw new IOException($"Cannot create '{path}' (errno {errno}).");
        }
        // Exactly the mode, whatever the umask; then the file is opened again the ordinary way
        // (Mono's FileStream takes no raw descriptor). O_EXCL made it ours; nobody else can open it.
        int rc = Libc.fchmod(fd, (int)mode);
        Libc.close(fd);
        if (rc != 0) throw new IOException($"Cannot set the permissions of '{path}' (errno {Marshal.GetLastWin32Error()}).");
        var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.None);
        Paths.Add(stream.SafeFileHandle, Path.GetFullPath(path));
        return stream;
    }

    /// <summary>The files CreateNew opened, so the handle-based calls below can chmod by path.</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<SafeFileHandle, string> Paths = new();

    extension(File)
    {
        public static void SetUnixFileMode(SafeFileHandle handle, UnixFileMode mode)
        {
            int rc = Paths.TryGetValue(handle, out string? path)
                ? Libc.chmod(path, (int)mode)
                : Libc.fchmod((int)handle.DangerousGetHandle(), (int)mode);
            if (rc != 0)
                throw new IOException($"chmod failed (errno {Marshal.GetLastWin32Error()}).");
        }

        public static UnixFileMode GetUnixFileMode(SafeFileHandle handle) =>
            File.GetUnixFileMode(Paths.TryGetValue(handle, out string? path) ? path : $"/proc/self/fd/{(int)handle.DangerousGetHandle()}");
    }

    extension(Directory)
    {
        public static DirectoryInfo CreateDirectory(string path, UnixFileMode mode)
        {
            var info = Directory.CreateDirectory(path);
            if (Libc.chmod(info.FullName, (int)mode) != 0)
                throw new IOException($"Cannot set the permissions of '{path}' (errno {Marshal.GetLastWin32Error()}).");
            return info;
        }
    }

    private static class Libc
    {
        [DllImport("libc", SetLastError = true)] public static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags, int mode);
        [DllImport("libc", SetLastError = true)] public static extern int fchmod(int fd, int mode);
        [DllImport("libc", SetLastError = true)] public static extern int close(int fd);
        [DllImport("libc", SetLastError = true)] public static extern int chmod([MarshalAs(UnmanagedType.LPStr)] string path, int mode);
    }
}
#endif
