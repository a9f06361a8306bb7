using PicoHsm.Core.Tests.Devices.ScHsm.Backend;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Dkek;

namespace PicoHsm.Core.Tests.Dkek;

/// <summary>Issue 10: a share file others can read (Unix mode &amp; 077 != 0) gives a warning when opened; an owner-only one does not.</summary>
public sealed class SharePermissionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("picohsm-perm-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void AShareFileOthersCanRead_IsNamedInAWarning_AnOwnerOnlyOneIsNot()
    {
        if (OperatingSystem.IsWindows()) return; // Unix modes only; Windows files are checked by their ACL at write
        foreach (var (name, warn) in new (string, Func<string, string?>)[] { ("a.dkekshare", DkekShareFile.PermissionWarning), ("a.pbe", ScHsmShareFile.PermissionWarning) })
        {
            string path = Path.Combine(_dir, name);
            File.Copy(VectorFiles.PathOf("dkek-share-1.pbe"), path);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            Assert.Null(warn(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead); // 644
            string? w = warn(path);
            Assert.NotNull(w);
            Assert.Contains(path, w);
            Assert.Contains("644", w);
            Assert.Contains("chmod 600", w);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.GroupWrite); // 420: writable by the group is as bad
            Assert.NotNull(warn(path));
        }
        Assert.Null(DkekShareFile.PermissionWarning(Path.Combine(_dir, "missing.dkekshare")));
    }
}
