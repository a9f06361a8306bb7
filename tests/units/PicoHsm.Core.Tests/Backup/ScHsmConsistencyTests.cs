using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.ScHsm.Backend;
using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Core.Tests.Backup;

/// <summary>
/// Issue 10: an sc-hsm-tool file's PRKD and certificate are not under the blob's CMAC. One that
/// contradicts the blob (another key type, another key's certificate, another size) is refused when
/// the file is read (BackupInconsistent: before a check or restore reaches a card) and reported by
/// the offline check; the firmware's own files pass.
/// </summary>
public sealed class ScHsmConsistencyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("picohsm-wky-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, ScHsmWrappedKeyFile f)
    {
        string p = Path.Combine(_dir, name);
        File.WriteAllBytes(p, f.ToArray());
        return p;
    }

    public static TheoryData<string> Vectors() => new() { "rsa2048.wky", "ec256.wky", "aes256.wky", "offline-rsa2048-crt.wky" };

    [Theory]
    [MemberData(nameof(Vectors))]
    public void TheFirmwaresFiles_AreConsistent(string name) => Assert.NotNull(VectorFiles.Backup(name));

    [Fact]
    public void AnotherKeysDescriptionOrCertificate_IsRefusedAtRead_AndByTheOfflineCheck()
    {
        var rsa = ScHsmWrappedKeyFile.Read(VectorFiles.Read("rsa2048.wky"));
        var ec = ScHsmWrappedKeyFile.Read(VectorFiles.Read("ec256.wky"));
        var rsaDescription = rsa.ParseDescription()!;
        var cases = new Dictionary<string, ScHsmWrappedKeyFile>
        {
            ["prkd"] = new(rsa.KeyBlob.ToArray(), ec.PrivateKeyDescription, null),
            ["certificate"] = new(rsa.KeyBlob.ToArray(), rsa.PrivateKeyDescription, ec.Certificate),
            ["size"] = new(rsa.KeyBlob.ToArray(),
                ScHsmKeyDescription.BuildRsa(rsaDescription.Label ?? "", rsaDescription.Id ?? [], rsaDescription.KeyReference ?? 1, 4096).Encoded, rsa.Certificate),
        };
        using var dkek = SecretBytes.CopyOf(VectorFiles.Dkek);
        foreach (var (what, file) in cases)
        {
            string path = Write(what + ".wky", file);
            var e = Assert.Throws<PicoHsmException>(() => BackupFiles.Read(path));
            Assert.Equal("BackupInconsistent", e.Reason);
            Assert.Equal(PicoErrorKind.InvalidData, e.Kind);
            var r = ScHsmOfflineCheck.Check(File.ReadAllBytes(path), dkek, path);
            Assert.False(r.Passed, what);
            Assert.NotEmpty(r.Problems);
        }
    }
}
