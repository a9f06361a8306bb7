using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

public sealed class ScHsmCardExportTests : CardKeyTestBase
{
    [Fact]
    public void Export_ThenRestoreOnAnotherCardWithTheSameDkek_SameKeyByteForByte()
    {
        using var a = CardHarness.WithVectorDkek();
        var restored = a.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(KeyReference: 7));
        string path = Path.Combine(_dir, "ec.wky");
        var backup = a.Backend.Export(restored, path, overwrite: false);
        Assert.Equal("ScHsmTool", backup.Format);
        Assert.Equal(VectorFiles.KcvHex, backup.Kcv);
        Assert.Equal("02", backup.Id);
        Assert.Equal(7, backup.KeyReference);
        Assert.Equal(PublicKeyInfo.Fingerprint(VectorFiles.Read("ec256.pub.der")), backup.PublicKeyFingerprint);

        // the file is sc-hsm-tool's: blob, PRKD (C407), request (CE07)
        var file = ScHsmWrappedKeyFile.Read(File.ReadAllBytes(path));
        Assert.Equal(a.Simulator.ReadFile(0xC407), file.PrivateKeyDescription);
        Assert.Equal(a.Simulator.ReadFile(0xCE07), file.Certificate);
        var original = ScHsmWrappedKeyFile.Read(VectorFiles.Read("ec256.wky")).ParseKeyBlob();
        using (var m1 = (ScHsmEcKeyMaterial)file.ParseKeyBlob().Decrypt(VectorFiles.Dkek))
        using (var m0 = (ScHsmEcKeyMaterial)original.Decrypt(VectorFiles.Dkek))
        {
            Assert.Equal(m0.D.Span.ToArray(), m1.D.Span.ToArray());
            Assert.Equal(m0.PublicPoint.ToArray(), m1.PublicPoint.ToArray());
        }

        using var b = CardHarness.WithVectorDkek();
        var again = b.Backend.Restore(BackupFiles.Read(path), new RestoreRequest());
        Assert.Equal(restored.PublicKeyFingerprint, again.PublicKeyFingerprint);
        Assert.Equal(a.Simulator.GetKey(7)!.EcD, b.Simulator.GetKey((byte)again.KeyReference!.Value)!.EcD);
        AssertSignatureVerifies(b.Backend, again.KeyReference!.Value, KeyKind.Ec, "ec256.pub.der");
    }

    [Fact]
    public void Export_ByIdOnly_AsAPkcs11ListingWouldGiveIt()
    {
        using var h = CardHarness.WithVectorDkek();
        h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(KeyReference: 5));
        var fromPkcs11 = new PicoKey { Id = "01", Class = "PrivateKey", KeyType = KeyKind.Rsa, Label = "rsa2048" };
        var backup = h.Backend.Export(fromPkcs11, Path.Combine(_dir, "rsa.wky"), false);
        Assert.Equal("01", backup.Id);
        Assert.Equal(2048, backup.Size);
        using var m = (ScHsmRsaKeyMaterial)ScHsmWrappedKeyFile.Read(File.ReadAllBytes(backup.Path)).ParseKeyBlob().Decrypt(VectorFiles.Dkek);
        Assert.True(ScHsmPublicKeyCheck.MatchesPublicKey(m, VectorFiles.Read("rsa2048.pub.der")));
    }

    [Fact]
    public void Export_ExistingFile_WithoutOverwrite_IsRefused_WithOverwriteReplaced()
    {
        using var h = CardHarness.WithVectorDkek();
        var key = h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest());
        string path = Path.Combine(_dir, "exists.wky");
        File.WriteAllText(path, "old");
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Export(key, path, overwrite: false));
        Assert.Equal("FileExists", ex.Reason);
        Assert.Equal(PicoErrorKind.ResourceExists, ex.Kind);
        Assert.Equal("old", File.ReadAllText(path));
        h.Backend.Export(key, path, overwrite: true);
        Assert.Equal(0x30, File.ReadAllBytes(path)[0]);
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void Export_KeyWhoseAlgorithmsForbidWrap_IsKeyNotExportable()
    {
        using var h = CardHarness.WithVectorDkek();
        GenerateEc(h, 9, algorithms: [0x73]);
        var key = Assert.Single(h.Backend.ListKeys());
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Export(key, Path.Combine(_dir, "nw.wky"), false));
        Assert.Equal("KeyNotExportable", ex.Reason);
        Assert.Equal(PicoErrorKind.PermissionDenied, ex.Kind);
        Assert.False(File.Exists(Path.Combine(_dir, "nw.wky")));
    }

    [Fact]
    public void Export_AfterAnotherProgramsLogin_WrapsWithoutSelectOrVerify()
    {
        // The PIN state belongs to the card: another connection (OpenSC's PKCS#11 login) verified it.
        using var h = CardHarness.WithVectorDkek(withPin: false);
        h.Simulator.Process(Convert.FromHexString("00200081063634383231" + "39"));
        GenerateEc(h, 3);
        int from = h.Channel.Sent.Count;
        var key = Assert.Single(h.Backend.ListKeys());
        var backup = h.Backend.Export(key, Path.Combine(_dir, "shared.wky"), false);
        Assert.Equal(VectorFiles.KcvHex, backup.Kcv);
        Assert.Equal(0, h.Channel.AppletSelects(from)); // a SELECT would have logged the other program out
        Assert.DoesNotContain(h.Channel.SentWithIns(0x20, from), c => c.Length > 5);
    }

    [Fact]
    public void Export_PinNotVerified_NoPin_IsAClearError()
    {
        using var h = CardHarness.WithVectorDkek(withPin: false);
        var key = new PicoKey { Id = "01", Class = "PrivateKey", KeyReference = 1 };
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Export(key, Path.Combine(_dir, "p.wky"), false));
        Assert.Equal("PinRequired", ex.Reason);
    }
}
