using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Sim = PicoHsm.CardSimulator;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

public sealed class ScHsmCardRestoreTests : CardKeyTestBase
{
    [Theory]
    [InlineData("rsa2048.wky", "rsa2048.pub.der", KeyKind.Rsa)]
    [InlineData("ec256.wky", "ec256.pub.der", KeyKind.Ec)]
    [InlineData("offline-rsa2048-crt.wky", "offline-rsa2048-crt.pub.der", KeyKind.Rsa)]
    public void Restore_Vector_ThenTheCardSignsAndTheVectorPublicKeyVerifies(string wky, string pub, KeyKind kind)
    {
        using var h = CardHarness.WithVectorDkek();
        var key = h.Backend.Restore(VectorFiles.Backup(wky), new RestoreRequest());
        Assert.Equal(1, key.KeyReference);                       // the first free reference
        Assert.Equal(new byte[] { 1 }, UserKeys(h));
        Assert.Equal(kind, key.KeyType);
        Assert.Equal("PrivateKey", key.Class);
        Assert.Equal(PublicKeyInfo.Fingerprint(VectorFiles.Read(pub)), key.PublicKeyFingerprint);
        Assert.True(key.Exportable);
        Assert.False(key.HasCertificate); // a CV request is not a certificate
        AssertSignatureVerifies(h.Backend, 1, kind, pub);
    }

    [Fact]
    public void Restore_Ec256_WritesThePrkdWithTheNewKeyReference_AndTheRequest()
    {
        using var h = CardHarness.WithVectorDkek();
        var file = ScHsmWrappedKeyFile.Read(VectorFiles.Read("ec256.wky"));
        var key = h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(KeyReference: 20));
        Assert.Equal(20, key.KeyReference);
        Assert.Equal("02", key.Id);
        Assert.Equal("ec256", key.Label);
        Assert.Equal("P-256", key.Curve);
        Assert.Equal(256, key.Size);
        var prkd = ScHsmKeyDescription.Parse(h.Simulator.ReadFile(0xC414)!);
        Assert.Equal(20, prkd.KeyReference);
        Assert.Equal("ec256", prkd.Label);
        Assert.Equal(file.Certificate, h.Simulator.ReadFile(0xCE14));
        // only the key reference differs from the file's PRKD
        var original = ScHsmKeyDescription.Parse(file.PrivateKeyDescription!);
        Assert.Equal(2, original.KeyReference);
        Assert.Equal(file.PrivateKeyDescription!.Length, h.Simulator.ReadFile(0xC414)!.Length);
    }

    [Fact]
    public void Restore_Aes256_TheCardHoldsTheVectorKey()
    {
        using var h = CardHarness.WithVectorDkek();
        var key = h.Backend.Restore(VectorFiles.Backup("aes256.wky"), new RestoreRequest());
        Assert.Equal("SecretKey", key.Class);
        Assert.Equal(KeyKind.Aes, key.KeyType);
        Assert.Equal(256, key.Size);
        byte[] aesKey = h.Simulator.GetKey((byte)key.KeyReference!.Value)!.AesKey!;
        using var aes = Aes.Create();
        aes.Key = aesKey;
        byte[] ct = aes.EncryptCbc(new byte[32], new byte[16], PaddingMode.None);
        Assert.Equal("add4a43267efce014b2ee2b5aafb4db54734125e53242fc5f936cb1919e8d2a3", Convert.ToHexString(ct).ToLowerInvariant());
    }

    [Fact]
    public void Restore_OccupiedReference_RefusedWithoutForce_ReplacedWithForce()
    {
        using var h = CardHarness.WithVectorDkek();
        h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(KeyReference: 3));
        var ecD = h.Simulator.GetKey(3)!.EcD;
        int from = h.Channel.Sent.Count;
        var ex = Assert.Throws<PicoHsmException>(() =>
            h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(KeyReference: 3)));
        Assert.Equal("KeyReferenceInUse", ex.Reason);
        Assert.Equal(0, h.Channel.Changes(from));
        Assert.Equal(ecD, h.Simulator.GetKey(3)!.EcD);

        var replaced = h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(KeyReference: 3, Force: true));
        Assert.Equal(KeyKind.Rsa, replaced.KeyType);
        Assert.Equal("01", replaced.Id);
        Assert.Equal(Sim.CardKeyKind.Rsa, h.Simulator.GetKey(3)!.Kind);
        Assert.Equal(3, ScHsmKeyDescription.Parse(h.Simulator.ReadFile(0xC403)!).KeyReference);
        Assert.Equal(ScHsmWrappedKeyFile.Read(VectorFiles.Read("rsa2048.wky")).Certificate, h.Simulator.ReadFile(0xCE03));
    }

    [Fact]
    public void Restore_IdInUse_Refused_NewIdAccepted_WithNewLabel()
    {
        using var h = CardHarness.WithVectorDkek();
        h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest());
        int from = h.Channel.Sent.Count;
        // another key (rsa2048) under the id ec256 holds
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(NewId: [0x02])));
        Assert.Equal("IdInUse", ex.Reason);
        Assert.Equal(PicoErrorKind.ResourceExists, ex.Kind);
        Assert.Contains("-Id <another id>", ex.Message);
        Assert.Contains("-Force", ex.Message);
        Assert.Equal(0, h.Channel.Changes(from));
        Assert.Single(UserKeys(h));

        var second = h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(NewId: [0x77], NewLabel: "copy"));
        Assert.Equal("77", second.Id);
        Assert.Equal("copy", second.Label);
        Assert.Equal(2, second.KeyReference);
        var prkd = ScHsmKeyDescription.Parse(h.Simulator.ReadFile(0xC402)!);
        Assert.Equal(new byte[] { 0x77 }, prkd.Id);
        Assert.Equal(2, prkd.KeyReference);
        Assert.Equal(256, prkd.KeySizeBits);
        Assert.Equal(KeyKind.Ec, prkd.Kind);

        // -NewId that is in use as well is refused
        var ex2 = Assert.Throws<PicoHsmException>(() => h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(NewId: [0x77])));
        Assert.Equal("IdInUse", ex2.Reason);
    }

    [Fact]
    public void Restore_WrongDkek_RefusedBeforeAnyChange_NamingBothKcvs()
    {
        using var h = CardHarness.Create(1, new[] { Enumerable.Repeat((byte)0x11, 32).ToArray() });
        h.Backend.Restore(MakeOwnKey(h), new RestoreRequest());
        var keysBefore = UserKeys(h);
        string stateBefore = h.Simulator.ExportState();
        int from = h.Channel.Sent.Count;
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest()));
        Assert.Equal("DkekMismatch", ex.Reason);
        Assert.Contains(VectorFiles.KcvHex, ex.Message);
        Assert.Contains(KeyCheckValueOf(Enumerable.Repeat((byte)0x11, 32).ToArray()), ex.Message);
        Assert.Equal(0, h.Channel.Changes(from));
        Assert.Equal(keysBefore, UserKeys(h));
        Assert.Equal(stateBefore, h.Simulator.ExportState());
    }

    [Fact]
    public void Restore_PkbBackup_IsNotSupported()
    {
        using var h = CardHarness.WithVectorDkek();
        var pkb = new PicoKeyBackup { Path = "x.pkb", Format = "PicoHsm", Kcv = VectorFiles.KcvHex, Sha256 = "00" };
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Restore(pkb, new RestoreRequest()));
        Assert.Equal("FormatNotSupported", ex.Reason);
        Assert.Equal(PicoErrorKind.NotSupported, ex.Kind);
    }

    [Fact]
    public void Restore_CorruptedBlob_IsRejectedByTheCard_WithAClearError()
    {
        using var h = CardHarness.WithVectorDkek();
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Restore(Corrupted("ec256.wky"), new RestoreRequest()));
        Assert.Equal("BlobRejected", ex.Reason);
        Assert.Empty(UserKeys(h));
    }

    [Fact]
    public void X509Certificate_IsACertificate_AndItsKeyIsTheKeysPublicKey()
    {
        using var h = CardHarness.WithVectorDkek();
        string path = Ec256WithX509(out byte[] cert);
        var backup = BackupFiles.Read(path);
        Assert.True(backup.HasCertificate);
        Assert.Equal(PublicKeyInfo.Fingerprint(VectorFiles.Read("ec256.pub.der")), backup.PublicKeyFingerprint);

        var key = h.Backend.Restore(backup, new RestoreRequest(KeyReference: 6));
        Assert.True(key.HasCertificate);
        Assert.Equal(PublicKeyInfo.Fingerprint(VectorFiles.Read("ec256.pub.der")), key.PublicKeyFingerprint);
        Assert.Equal("P-256", key.Curve);
        Assert.Equal(cert, h.Simulator.ReadFile(0xCE06));

        var test = h.Backend.Test(backup, restoreTest: false);
        Assert.True(test.Passed, string.Join(" | ", test.Problems));
        // the restore test needs a free id? no: it unwraps under a free reference and signs, whatever the id
        var t2 = h.Backend.Test(backup, restoreTest: true);
        Assert.True(t2.Restorable, string.Join(" | ", t2.Problems) + t2.Detail);
        Assert.Equal(new byte[] { 6 }, h.Simulator.KeyReferences.Where(k => k != 0).ToArray());
    }

    [Fact]
    public void Restore_CrtBlobWithoutPrkd_NewIdAndLabel_BuildsAPrkdWithTheCardsSize()
    {
        using var h = CardHarness.WithVectorDkek();
        var key = h.Backend.Restore(VectorFiles.Backup("offline-rsa2048-crt.wky"), new RestoreRequest(NewId: [0xAB, 0xCD], NewLabel: "crt"));
        Assert.Equal("abcd", key.Id);
        Assert.Equal("crt", key.Label);
        Assert.Equal(2048, key.Size);
        var prkd = ScHsmKeyDescription.Parse(h.Simulator.ReadFile((ushort)(0xC400 | key.KeyReference!.Value))!);
        Assert.Equal(KeyKind.Rsa, prkd.Kind);
        Assert.Equal(2048, prkd.KeySizeBits);
        Assert.Equal(key.KeyReference, prkd.KeyReference);
        Assert.Equal(PublicKeyInfo.Fingerprint(VectorFiles.Read("offline-rsa2048-crt.pub.der")), key.PublicKeyFingerprint);
    }
}
