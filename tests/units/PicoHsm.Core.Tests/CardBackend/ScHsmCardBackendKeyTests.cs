using System.Security.Cryptography;
using System.Text;
using Sim = PicoHsm.CardSimulator;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Backend;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;
using PicoHsm.PcSc;

namespace PicoHsm.Core.Tests.CardBackend;

public sealed class ScHsmCardBackendKeyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("schsm-backend-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>Key references on the card other than the device key (CC00).</summary>
    private static byte[] UserKeys(CardHarness h) => h.Simulator.KeyReferences.Where(k => k != 0).ToArray();

    private static byte[] Message => File.ReadAllBytes(VectorFiles.PathOf("msg.txt"));

    private static void AssertSignatureVerifies(ScHsmCardBackend b, int kid, KeyKind kind, string pubDer)
    {
        byte[] spki = VectorFiles.Read(pubDer);
        byte[] msg = Message;
        if (kind == KeyKind.Ec)
        {
            byte[] sig = b.Card.Sign((byte)kid, ScHsmCard.AlgorithmEcdsaSha256, msg);
            using var ec = ECDsa.Create();
            ec.ImportSubjectPublicKeyInfo(spki, out _);
            Assert.True(ec.VerifyData(msg, sig, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
            Assert.False(ec.VerifyData(msg.Append((byte)0x20).ToArray(), sig, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence));
        }
        else
        {
            byte[] sig = b.Card.Sign((byte)kid, ScHsmCard.AlgorithmRsaPkcs1Sha256, msg);
            using var rsa = RSA.Create();
            rsa.ImportSubjectPublicKeyInfo(spki, out _);
            Assert.True(rsa.VerifyData(msg, sig, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
            Assert.False(rsa.VerifyData(msg.Append((byte)0x20).ToArray(), sig, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
        }
    }

    // ---------------------------------------------------------------- restore of the vectors

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
    public void ListKeys_FromTheCardAlone()
    {
        using var h = CardHarness.WithVectorDkek();
        h.Backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest(KeyReference: 1));
        h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest(KeyReference: 2));
        h.Backend.Restore(VectorFiles.Backup("aes256.wky"), new RestoreRequest(KeyReference: 4));
        var keys = h.Backend.ListKeys().OrderBy(k => k.KeyReference).ToList();
        Assert.Equal(new int?[] { 1, 2, 4 }, keys.Select(k => k.KeyReference).ToArray());
        Assert.Equal(new[] { "01", "02" }, keys.Take(2).Select(k => k.Id).ToArray()); // lower-case hex CKA_ID, as PKCS#11
        Assert.Equal(KeyKind.Rsa, keys[0].KeyType);
        Assert.Equal(2048, keys[0].Size);
        Assert.Equal(PublicKeyInfo.Fingerprint(VectorFiles.Read("rsa2048.pub.der")), keys[0].PublicKeyFingerprint);
        Assert.Equal(VectorFiles.Read("rsa2048.pub.der"), keys[0].PublicKeyInfo);
        Assert.Equal(VectorFiles.Read("ec256.pub.der"), keys[1].PublicKeyInfo);
        Assert.Equal("SecretKey", keys[2].Class);
        Assert.All(keys, k => Assert.True(k.Exportable));
        Assert.All(keys, k => Assert.Equal(0, k.KeyDomain));
        Assert.DoesNotContain(keys, k => k.KeyReference == 0); // never the device key
    }

    [Fact]
    public void ListKeys_WithoutCompleteDkek_KeysAreNotExportable_WithReason()
    {
        using var h = CardHarness.Create(shares: 2);
        GenerateEc(h, 3);
        var k = Assert.Single(h.Backend.ListKeys());
        Assert.False(k.Exportable);
        Assert.Equal("no complete DKEK in the key domain", k.ExportBlockedReason);
        Assert.Equal(KeyKind.Ec, k.KeyType);
        Assert.NotNull(k.PublicKeyFingerprint);
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Export(k, Path.Combine(_dir, "x.wky"), false));
        Assert.Equal("NoDkek", ex.Reason);
        Assert.False(File.Exists(Path.Combine(_dir, "x.wky")));
    }

    /// <summary>GENERATE (00 46) as OpenSC sends it: an EC P-256 key, optionally with an algorithm list (tag 91).</summary>
    private static void GenerateEc(CardHarness h, byte kid, byte[]? algorithms = null)
    {
        var curve = ScHsmCurve.FromOid("1.2.840.10045.3.1.7")!;
        var parts = new List<byte[]>
        {
            Sim.Tlv.Build(0x5F29, new byte[] { 0 }),
            Sim.Tlv.Build(0x42, Encoding.ASCII.GetBytes("UTCA00001")),
            Sim.Tlv.Build(0x7F49, Sim.Tlv.Build(0x06, ScHsmKeyBlob.EcAlgorithmOid.ToArray()), Sim.Tlv.Build(0x81, curve.Prime)),
            Sim.Tlv.Build(0x5F20, Encoding.ASCII.GetBytes("ESPICOHSMTR00001")),
        };
        if (algorithms is not null) parts.Add(Sim.Tlv.Build(0x91, algorithms));
        byte[] data = Sim.Tlv.Concat(parts.ToArray());
        h.Simulator.Process(Convert.FromHexString("00200081063634383231" + "39"));
        var apdu = new PicoHsm.PcSc.CommandApdu(0x00, 0x46, kid, 0x00, data, 65536).ToArray();
        var r = h.Simulator.Process(apdu);
        Assert.Equal(new byte[] { 0x90, 0x00 }, r[^2..]);
    }

    // ---------------------------------------------------------------- export

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

    // ---------------------------------------------------------------- restore checks

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
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.Restore(VectorFiles.Backup("ec256.wky"), new RestoreRequest()));
        Assert.Equal("IdInUse", ex.Reason);
        Assert.Equal(PicoErrorKind.ResourceExists, ex.Kind);
        Assert.Contains("-Id <another id>", ex.Message);
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

    private static string KeyCheckValueOf(byte[] dkek) => Convert.ToHexString(SHA256.HashData(dkek)[..8]).ToLowerInvariant();

    /// <summary>A backup of an EC key made under the harness card's own DKEK (0x11 x 32), via a blob built on the host.</summary>
    private PicoKeyBackup MakeOwnKey(CardHarness h)
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var material = ScHsmEcKeyMaterial.FromECAlgorithm(ec);
        var blob = ScHsmKeyBlob.Build(Enumerable.Repeat((byte)0x11, 32).ToArray(), material);
        var prkd = ScHsmKeyDescription.BuildEc("own", [0x55], 1, 256);
        string path = Path.Combine(_dir, "own.wky");
        File.WriteAllBytes(path, ScHsmWrappedKeyFile.Create(blob, prkd).ToArray());
        return BackupFiles.Read(path);
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

    private PicoKeyBackup Corrupted(string name)
    {
        var f = ScHsmWrappedKeyFile.Read(VectorFiles.Read(name));
        byte[] blob = f.KeyBlob.ToArray();
        blob[^20] ^= 0x01; // a ciphertext byte: KCV still matches, CMAC fails
        string path = Path.Combine(_dir, "corrupt-" + name);
        File.WriteAllBytes(path, new ScHsmWrappedKeyFile(blob, f.PrivateKeyDescription, f.Certificate).ToArray());
        return BackupFiles.Read(path);
    }

    // ---------------------------------------------------------------- restore test

    [Theory]
    [InlineData("rsa2048.wky")]
    [InlineData("ec256.wky")]
    [InlineData("aes256.wky")]
    [InlineData("offline-rsa2048-crt.wky")]
    public void Test_RestoreTest_PassesForEachVector_AndLeavesNothingBehind(string name)
    {
        using var h = CardHarness.WithVectorDkek();
        string before = h.Simulator.ExportState();
        var r = h.Backend.Test(VectorFiles.Backup(name), restoreTest: true);
        Assert.True(r.Valid);
        Assert.True(r.DkekMatch);
        Assert.True(r.Compatible);
        Assert.True(r.Restorable, string.Join(" | ", r.Problems) + " " + r.Detail);
        Assert.Empty(r.Problems);
        Assert.True(r.Passed);
        Assert.Equal(VectorFiles.KcvHex, r.Kcv);
        Assert.Empty(UserKeys(h));
        Assert.Equal(before.Length, h.Simulator.ExportState().Length);
        // the temporary key's C4/CE files are gone too
        for (int kid = 1; kid < 255; kid++)
        {
            Assert.Null(h.Simulator.ReadFile((ushort)(0xC400 | kid)));
            Assert.Null(h.Simulator.ReadFile((ushort)(0xCE00 | kid)));
        }
        if (name != "aes256.wky")
            Assert.NotEmpty(h.Channel.SentWithIns(0x68)); // it really signed
    }

    [Fact]
    public void Test_CorruptedBlob_NotRestorable_TemporaryKeyDeleted()
    {
        using var h = CardHarness.WithVectorDkek();
        var r = h.Backend.Test(Corrupted("rsa2048.wky"), restoreTest: true);
        Assert.True(r.Valid);
        Assert.True(r.DkekMatch);
        Assert.False(r.Restorable);
        Assert.False(r.Passed);
        Assert.Empty(UserKeys(h));
    }

    [Fact]
    public void Test_WrongDkek_NoRestoreAttempted()
    {
        using var h = CardHarness.Create(1, new[] { Enumerable.Repeat((byte)0x11, 32).ToArray() });
        int from = h.Channel.Sent.Count;
        var r = h.Backend.Test(VectorFiles.Backup("ec256.wky"), restoreTest: true);
        Assert.False(r.DkekMatch);
        Assert.False(r.Restorable);
        Assert.Contains(r.Problems, p => p.Contains(VectorFiles.KcvHex));
        Assert.Equal(0, h.Channel.Changes(from));
    }

    [Fact]
    public void Test_WithoutRestoreTest_DoesNotTouchTheCard()
    {
        using var h = CardHarness.WithVectorDkek();
        int from = h.Channel.Sent.Count;
        var r = h.Backend.Test(VectorFiles.Backup("rsa2048.wky"), restoreTest: false);
        Assert.True(r.DkekMatch);
        Assert.Null(r.Restorable);
        Assert.True(r.Passed);
        Assert.Equal(0, h.Channel.Changes(from));
    }

    [Fact]
    public void Test_TheKeyPairsWithTheOriginalOnly_ATamperedPublicKeyFails()
    {
        // An RSA blob with the EC key's request: the card's signature cannot verify with that public key.
        using var h = CardHarness.WithVectorDkek();
        var ec = ScHsmWrappedKeyFile.Read(VectorFiles.Read("ec256.wky"));
        var other = ScHsmWrappedKeyFile.Read(VectorFiles.Read("rsa2048.wky"));
        string path = Path.Combine(_dir, "mixed.wky");
        File.WriteAllBytes(path, new ScHsmWrappedKeyFile(other.KeyBlob, other.PrivateKeyDescription, ec.Certificate).ToArray());
        var r = h.Backend.Test(BackupFiles.Read(path), restoreTest: true);
        Assert.False(r.Restorable);
        Assert.Empty(UserKeys(h));
    }
}
