using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Sim = PicoHsm.CardSimulator;
using PicoHsm.Backup;
using PicoHsm.Devices.ScHsm.Backend;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;
using PicoHsm.PcSc;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

/// <summary>Keys on the simulated card for the catalogue, export, restore and restore-test classes: a temporary folder and the helpers they share.</summary>
public abstract class CardKeyTestBase : IDisposable
{
    protected readonly string _dir = Directory.CreateTempSubdirectory("schsm-backend-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>Key references on the card other than the device key (CC00).</summary>
    protected static byte[] UserKeys(CardHarness h) => h.Simulator.KeyReferences.Where(k => k != 0).ToArray();

    protected static byte[] Message => File.ReadAllBytes(VectorFiles.PathOf("msg.txt"));

    protected static void AssertSignatureVerifies(ScHsmCardBackend b, int kid, KeyKind kind, string pubDer)
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

    /// <summary>GENERATE (00 46) as OpenSC sends it: an EC P-256 key, optionally with an algorithm list (tag 91).</summary>
    protected static void GenerateEc(CardHarness h, byte kid, byte[]? algorithms = null)
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
        var apdu = new CommandApdu(0x00, 0x46, kid, 0x00, data, 65536).ToArray();
        var r = h.Simulator.Process(apdu);
        Assert.Equal(new byte[] { 0x90, 0x00 }, r[^2..]);
    }

    protected static string KeyCheckValueOf(byte[] dkek) => Convert.ToHexString(SHA256.HashData(dkek)[..8]).ToLowerInvariant();

    /// <summary>A backup of an EC key made under the harness card's own DKEK (0x11 x 32), via a blob built on the host.</summary>
    protected PicoKeyBackup MakeOwnKey(CardHarness h)
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var material = ScHsmEcKeyMaterial.FromECAlgorithm(ec);
        var blob = ScHsmKeyBlob.Build(Enumerable.Repeat((byte)0x11, 32).ToArray(), material);
        var prkd = ScHsmKeyDescription.BuildEc("own", [0x55], 1, 256);
        string path = Path.Combine(_dir, "own.wky");
        File.WriteAllBytes(path, ScHsmWrappedKeyFile.Create(blob, prkd).ToArray());
        return BackupFiles.Read(path);
    }

    protected PicoKeyBackup Corrupted(string name)
    {
        var f = ScHsmWrappedKeyFile.Read(VectorFiles.Read(name));
        byte[] blob = f.KeyBlob.ToArray();
        blob[^20] ^= 0x01; // a ciphertext byte: KCV still matches, CMAC fails
        string path = Path.Combine(_dir, "corrupt-" + name);
        File.WriteAllBytes(path, new ScHsmWrappedKeyFile(blob, f.PrivateKeyDescription, f.Certificate).ToArray());
        return BackupFiles.Read(path);
    }

    /// <summary>ec256.wky with a self-signed X.509 certificate of its own key instead of the CV request.</summary>
    protected string Ec256WithX509(out byte[] certDer)
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
}
