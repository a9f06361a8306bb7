using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Dkek;

namespace PicoHsm.Core.Tests.Dkek;

public sealed class DkekCeremonyTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "ceremony-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void GenerateSplitWriteReadCombine()
    {
        Func<int, byte[]> token = RandomNumberGenerator.GetBytes; // stands in for C_GenerateRandom
        using var dkek = DkekGenerator.Create(token);
        byte[] kcv = KeyCheckValue.Compute(dkek.Span);
        var passwords = new List<char[]> { "alice's long passphrase".ToCharArray(), "bob's long passphrase".ToCharArray(), "carol's long passphrase".ToCharArray() };

        var files = DkekShareSet.Split(dkek.Span, 2, 3, "Root CA DKEK 2026", passwords, DkekGenerator.MixedRandom(token), verify: false);
        foreach (var f in files)
            AtomicFile.WriteAllBytes(Path.Combine(_dir, f.SuggestedFileName), f.ToBytes(), overwrite: false);
        Assert.Equal(3, Directory.GetFiles(_dir, "*" + DkekShareFile.Extension).Length);
        if (!OperatingSystem.IsWindows())
            foreach (string p in Directory.GetFiles(_dir))
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(p));

        // Later: carol and alice come back with their files.
        string hex = KeyCheckValue.ToHex(kcv);
        var carol = DkekShareFile.Read(File.ReadAllBytes(Path.Combine(_dir, $"dkek-{hex}-share-3-of-3.dkekshare")), "carol");
        var alice = DkekShareFile.Read(File.ReadAllBytes(Path.Combine(_dir, $"dkek-{hex}-share-1-of-3.dkekshare")), "alice");
        using var s3 = DecryptedDkekShare.Decrypt(carol, passwords[2]);
        using var s1 = DecryptedDkekShare.Decrypt(alice, passwords[0]);
        using var rebuilt = DkekShareSet.Combine([s3, s1]);
        Assert.True(rebuilt.Span.SequenceEqual(dkek.Span));
        Assert.Equal(kcv, KeyCheckValue.Compute(rebuilt.Span));
        Assert.Equal("Root CA DKEK 2026", carol.Label);

        foreach (var p in passwords) CryptographicOperations.ZeroMemory(System.Runtime.InteropServices.MemoryMarshal.AsBytes(p.AsSpan()));
    }
}
