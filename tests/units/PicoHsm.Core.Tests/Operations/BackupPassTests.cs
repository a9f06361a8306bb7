using PicoHsm.Core.Tests.Devices.Pkcs11;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Operations;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>
/// Issue 9's backup: Backup-PicoHsm looked the DKEK up (two searches) and read every token object
/// (a search and one read per object) once more for its exports, right after the listing had passed
/// over the same objects. The exports now take the listing's pass: the DKEK's objects it found (the
/// proof made just before is kept when they are the same) and its keys and certificates by id.
/// Counted with pkcs11-spy on a real SoftHSM2 token; never timed.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class BackupPassTests : IDisposable
{
    private readonly SoftHsmTokens _hsm;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "picohsm-bp-" + Guid.NewGuid().ToString("n")[..8]);

    public BackupPassTests(SoftHsmTokens hsm) => _hsm = hsm;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    [SoftHsmFact(needsSpy: true)]
    public void Backup_ItsExportsSearchNothingAndReadTwoAttributeSetsPerKey()
    {
        const int Keys = 6;
        using var s = SoftHsmTokens.Connect("core-backup-pass", module: SoftHsmTokens.Spy);
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        using (var dkek = SoftHsmTokens.Dkek(23)) b.ImportDkek(dkek, "DKEK", new byte[] { 0xD2, 0x3B });
        for (int i = b.ListKeys().Count; i < Keys; i++)
        {
            if (i % 2 == 0) b.GenerateKey(KeyKind.Ec, 256, "P-256", new byte[] { 0x5C, (byte)i }, $"pass{i}", extractable: true);
            else b.GenerateKey(KeyKind.Aes, 256, null, new byte[] { 0x5C, (byte)i }, $"pass{i}", extractable: true);
        }

        // What a backup does before its first export: the DKEK's look-up and the listing.
        int findsBefore = 0;
        int readsBefore = _hsm.CountCalls("C_GetAttributeValue", () =>
            findsBefore = _hsm.CountCalls("C_FindObjectsInit", () => { b.GetDkek(); Assert.Equal(Keys, b.ListKeys().Count); }));
        int finds = 0;
        var host = new BackupHost();
        int reads = _hsm.CountCalls("C_GetAttributeValue", () =>
            finds = _hsm.CountCalls("C_FindObjectsInit", () => Assert.NotNull(DeviceBackupService.Backup(s.Device, Path.Combine(_root, "backup"), false, host))));
        Assert.Empty(host.Failed);
        Assert.Equal(Keys, Directory.GetFiles(Path.Combine(_root, "backup"), "*.pkb").Length);
        Assert.True(findsBefore > 0 && readsBefore > 0, "the spy logged no calls: the counts prove nothing");

        // Was 3 searches more (the DKEK's record and key again, the catalogue's pass over the objects).
        Assert.Equal(findsBefore, finds);
        // Per key: the DKEK's handle check and the key's own attributes. Was one read more per token
        // object (the catalogue's class and id) and the DKEK look-up's reads besides.
        Assert.InRange(reads - readsBefore, Keys, 2 * Keys);
    }
}
