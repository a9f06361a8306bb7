using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Sim = PicoHsm.CardSimulator;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Backend;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;
using PicoHsm.PcSc;

namespace PicoHsm.Core.Tests.CardBackend;

public sealed class ScHsmCardBackendMoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("schsm-more-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>ec256.wky with a self-signed X.509 certificate of its own key instead of the CV request.</summary>
    private string Ec256WithX509(out byte[] certDer)
    {
        var f = ScHsmWrappedKeyFile.Read(VectorFiles.Read("ec256.wky"));
        using var material = (ScHsmEcKeyMaterial)f.ParseKeyBlob().Decrypt(VectorFiles.Dkek);
        using var ec = material.ToECDsa();
        var req = new CertificateRequest("CN=ec256", ec, HashAlgorithmName.SHA256);
        using var cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        certDer = cert.RawData;
        string path = Path.Combine(_dir, "ec256-x509.wky");
        File.WriteAllBytes(path, new ScHsmWrappedKeyFile(f.KeyBlob, f.PrivateKeyDescription, certDer).ToArray());
        return path;
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
    public void ReadToken_AppletAlreadySelected_NoSelect_VersionFromThePico()
    {
        var sim = new Sim.ScHsmSimulator(new Sim.ScHsmOptions { Initialized = true });
        sim.Process(Convert.FromHexString("00A404000BE82B0601040181C31F020100")); // another program selected it
        var ch = new SimulatorChannel(sim);
        var token = ScHsmCardBackend.ReadToken(ch);
        Assert.Equal(0, ch.AppletSelects());
        Assert.Equal("SmartCard-HSM version 6.0", token.Model);
        Assert.Equal("ESPICOHSMTR", token.SerialNumber);
        Assert.True(token.Initialized);
    }

    /// <summary>A channel that loses the card once after INITIALIZE (the Pico reboots) until reconnected.</summary>
    private sealed class RebootingChannel(Sim.ScHsmSimulator sim) : ICardChannel
    {
        private bool _gone;
        public int Reconnects { get; private set; }
        public string ReaderName => "Rebooting";
        public byte[] Atr => sim.Atr;
        public byte[] Transmit(ReadOnlySpan<byte> apdu)
        {
            if (_gone) throw new PcscException(PcscError.SCARD_W_REMOVED_CARD, "SCardTransmit", ReaderName);
            byte[] r = sim.Process(apdu.ToArray());
            if (apdu.Length > 5 && apdu[0] == 0x80 && apdu[1] == 0x50) { _gone = true; sim.Reset(); }
            return r;
        }
        public IDisposable BeginTransaction() => new Nothing();
        public void Reconnect(bool reset) { _gone = false; Reconnects++; }
        public void Dispose() { }
        private sealed class Nothing : IDisposable { public void Dispose() { } }
    }

    [Fact]
    public void Initialize_DeviceReboots_BackendReconnects()
    {
        var sim = new Sim.ScHsmSimulator(new Sim.ScHsmOptions { Initialized = true, DkekShares = 2 });
        var ch = new RebootingChannel(sim);
        using var b = new ScHsmCardBackend(new DeviceContext(ScHsmCardBackend.ReadToken(ch)), ch, null);
        b.Initialize(Convert.FromHexString("3537363231383830"), Encoding.ASCII.GetBytes("654321"), dkekShares: 1, keyDomains: null);
        Assert.Equal(1, ch.Reconnects);
        Assert.True(b.HasPin);
        using var dkek = SecretBytes.CopyOf(VectorFiles.Dkek);
        Assert.True(b.ImportDkek(dkek, "d", [1]));
        Assert.Equal(VectorFiles.KcvHex, Assert.Single(b.GetDkek()).KeyCheckValue);
    }

    [Fact]
    public void DescribeScHsm_ReadsPublicKeyAndSizeFromTheFile()
    {
        var rsa = VectorFiles.Backup("rsa2048.wky");
        Assert.Equal(2048, rsa.Size);
        Assert.True(rsa.HasPublicKey);
        Assert.False(rsa.HasCertificate);
        Assert.Equal(PublicKeyInfo.Fingerprint(VectorFiles.Read("rsa2048.pub.der")), rsa.PublicKeyFingerprint);
        var ec = VectorFiles.Backup("ec256.wky");
        Assert.Equal("P-256", ec.Curve);
        Assert.Equal(PublicKeyInfo.Fingerprint(VectorFiles.Read("ec256.pub.der")), ec.PublicKeyFingerprint);
        var aes = VectorFiles.Backup("aes256.wky");
        Assert.Equal(256, aes.Size);
        Assert.False(aes.HasPublicKey);
        var crt = VectorFiles.Backup("offline-rsa2048-crt.wky");
        Assert.Null(crt.Id);
        Assert.False(crt.HasPublicKey);
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

    [Fact]
    public void WithKeyReference_ChangesOnlyTheKeyReference()
    {
        var prkd = ScHsmWrappedKeyFile.Read(VectorFiles.Read("rsa2048.wky")).PrivateKeyDescription!;
        var changed = ScHsmCardFiles.WithKeyReference(prkd, 200);
        var a = ScHsmKeyDescription.Parse(prkd);
        var b = ScHsmKeyDescription.Parse(changed);
        Assert.Equal(1, a.KeyReference);
        Assert.Equal(200, b.KeyReference);
        Assert.Equal(a.Label, b.Label);
        Assert.Equal(a.Id, b.Id);
        Assert.Equal(a.Usage, b.Usage);
        Assert.Equal(a.KeySizeBits, b.KeySizeBits);
        Assert.Equal(prkd.Length + 1, changed.Length); // 200 needs a leading zero byte
        Assert.Equal(prkd, ScHsmCardFiles.WithKeyReference(prkd, 1));
    }

    [Fact]
    public void Test_WithoutPin_KcvUnknown_DkekMatchIsNull_AndTheReasonIsGiven()
    {
        using var h = CardHarness.WithVectorDkek(withPin: false);
        int from = h.Channel.Sent.Count;
        var r = h.Backend.Test(VectorFiles.Backup("ec256.wky"), restoreTest: true);
        Assert.True(r.Valid);
        Assert.Null(r.DkekMatch);
        Assert.False(r.Restorable);
        Assert.Contains(r.Problems, p => p.Contains("PIN"));
        Assert.Equal(0, h.Channel.Changes(from));
    }

    [Fact]
    public void ImportShares_SameSharesAgain_IsANoOp_OtherShareIsRefused()
    {
        using var h = CardHarness.Create(2, new[] { VectorFiles.Share1, VectorFiles.Share2 });
        using var s1 = SecretBytes.CopyOf(VectorFiles.Share1);
        using var s2 = SecretBytes.CopyOf(VectorFiles.Share2);
        int from = h.Channel.Sent.Count;
        Assert.Equal(VectorFiles.KcvHex, h.Backend.ImportShares(new[] { s1, s2 }).KeyCheckValue);
        Assert.Equal(0, h.Channel.Changes(from));
        var ex = Assert.Throws<PicoHsmException>(() => h.Backend.ImportShares(new[] { s1 }));
        Assert.Equal("OtherDkekPresent", ex.Reason);
    }
}
