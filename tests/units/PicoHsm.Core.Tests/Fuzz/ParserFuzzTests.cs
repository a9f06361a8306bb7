using System.Security.Cryptography;
using System.Text;
using Xunit.Abstractions;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.ScHsm.Backend;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Dkek;
using PicoHsm.Keys;
using PicoHsm.PcSc;

namespace PicoHsm.Core.Tests.Fuzz;

/// <summary>
/// Every parser, fed mutated copies of valid inputs (the firmware's files, our own formats) and
/// random bytes: each input ends in success or in one of the module's typed errors, never in an
/// IndexOutOfRange, NullReference, Overflow, OutOfMemory or any other exception. The count per
/// parser is PICOHSM_FUZZ_COUNT (10,000 by default; build.ps1 -Task Fuzz raises it), and each
/// parser's count is written to the test output and, when PICOHSM_FUZZ_REPORT names a file, to it.
/// A failure names the parser, the seed and the input (hex) that reproduce it.
/// </summary>
public sealed class ParserFuzzTests(ITestOutputHelper output)
{
    private static int Count => int.TryParse(Environment.GetEnvironmentVariable("PICOHSM_FUZZ_COUNT"), out int n) && n > 0 ? n : 10_000;

    /// <summary>The module's typed errors: what a caller is promised on bad input.</summary>
    internal static bool IsTyped(Exception e) => e is PicoHsmException or BackupFileException or DkekShareFileException or DkekShareException
        or ScHsmFormatException or ScHsmWrongDkekException or ScHsmWrongPasswordException or ScHsmCardException or PcscException;

    private void Run(string parser, IReadOnlyList<byte[]> seeds, Action<byte[]> parse, bool text = false, int? count = null)
    {
        int n = count ?? Count;
        int seed = RandomNumberGenerator.GetInt32(int.MaxValue);
        var m = new Mutator(seed);
        int accepted = 0, refused = 0;
        foreach (var s in seeds) parse(s); // every seed is valid: a parser that refuses its own format is broken
        for (int i = 0; i < n; i++)
        {
            byte[] input = i % 20 == 0 ? m.RandomBytes(m.Next(300)) : text ? m.MutateText(seeds[i % seeds.Count]) : m.Mutate(seeds[i % seeds.Count]);
            try
            {
                parse(input);
                accepted++;
            }
            catch (Exception e) when (IsTyped(e))
            {
                refused++;
            }
            catch (Exception e)
            {
                Assert.Fail($"{parser}: input {i} (mutator seed {seed}) escaped as {e.GetType().Name}: {e.Message}\ninput: {Convert.ToHexString(input)}\n{e.StackTrace}");
            }
        }
        Report(output, $"{parser}: {n} inputs, {accepted} accepted, {refused} refused with a typed error, 0 escaped");
    }

    private static readonly object ReportLock = new();

    internal static void Report(ITestOutputHelper output, string line)
    {
        output.WriteLine(line);
        if (Environment.GetEnvironmentVariable("PICOHSM_FUZZ_REPORT") is { Length: > 0 } report)
            lock (ReportLock) File.AppendAllText(report, line + Environment.NewLine);
    }

    private static readonly string[] WkyNames = VectorFiles.Wrapped;

    private static IReadOnlyList<ScHsmWrappedKeyFile> Wky() => WkyNames.Select(n => ScHsmWrappedKeyFile.Read(VectorFiles.Read(n))).ToList();

    [Fact]
    public void ScHsmWrappedKeyFile_Read() =>
        Run("sc-hsm-tool wrapped-key file (.wky)", WkyNames.Select(VectorFiles.Read).ToList(), b => ScHsmWrappedKeyFile.Read(b));

    [Fact]
    public void ScHsmShareFile_Read() =>
        Run("sc-hsm-tool share file (.pbe)", new[] { "dkek-share-1.pbe", "dkek-share-2.pbe", "dkek-share-threshold.pbe" }.Select(VectorFiles.Read).ToList(),
            b => ScHsmShareFile.Read(b));

    [Fact]
    public void ScHsmKeyBlob_Parse() => Run("key blob (in .wky)", Wky().Select(w => w.KeyBlob).ToList(), b => ScHsmKeyBlob.Parse(b));

    [Fact]
    public void ScHsmKeyBlob_Decrypt()
    {
        // Past the parse: a blob whose CMAC verifies only when unchanged, so mutants test the MAC check and
        // what follows it must never see an unauthenticated byte.
        var dkek = VectorFiles.Dkek;
        Run("key blob decrypt under the DKEK", Wky().Select(w => w.KeyBlob).ToList(), b =>
        {
            var prefix = new byte[8];
            ScHsmKeyBlob.Parse(b).Decrypt(dkek, prefix).Dispose();
        });
    }

    [Fact]
    public void ScHsmKeyDescription_Parse() =>
        Run("PRKD (private key description)", Wky().Where(w => w.PrivateKeyDescription is not null).Select(w => w.PrivateKeyDescription!).ToList(),
            b => ScHsmKeyDescription.Parse(b));

    [Fact]
    public void ScHsmCardFiles_ReadPublicKey() =>
        Run("certificate / CV request / SPKI DER", Wky().Where(w => w.Certificate is not null).Select(w => w.Certificate!)
                .Concat(new[] { "rsa2048.pub.der", "ec256.pub.der" }.Select(VectorFiles.Read)).ToList(),
            b => ScHsmCardFiles.ReadPublicKey(b));

    [Fact]
    public void ScHsmCardFiles_ReadHolderReference() =>
        Run("CV certificate holder reference", Wky().Where(w => w.Certificate is not null).Select(w => w.Certificate!).ToList(),
            b => ScHsmCardFiles.ReadHolderReference(b));

    [Fact]
    public void ScHsmCardFiles_ReadTokenInfo() =>
        Run("EF.TokenInfo", new[] { TokenInfoSeed() }, b => ScHsmCardFiles.ReadTokenInfo(b));

    [Fact]
    public void DerElement_Read() =>
        Run("DER element", Wky().SelectMany(w => new[] { w.PrivateKeyDescription, w.Certificate }).Where(b => b is not null).Select(b => b!).ToList(),
            b => DerElement.Read(b, "fuzz input"));

    [Fact]
    public void ResponseApdu_Parse() => Run("response APDU", new[] { new byte[] { 0x90, 0x00 }, new byte[] { 1, 2, 3, 0x61, 0x10 } }, b => ResponseApdu.Parse(b));

    [Fact]
    public void PasswordShare_ParseHex() =>
        Run("password share text", new[] { Encoding.ASCII.GetBytes("3f:3e:fa:a8:51:77:40:0b"), Encoding.ASCII.GetBytes("c01baaf34b97a703") },
            b => ScHsmPasswordShares.ParseHex(Encoding.Latin1.GetString(b)), text: true);

    [Fact]
    public void WrappedKeyFile_Read() => Run("PicoHsm backup file (.pkb)", PkbSeeds(), b => WrappedKeyFile.Read(b, "fuzz.pkb"), text: true);

    [Fact]
    public void BackupManifest_Read() => Run("backup manifest.json", new[] { ManifestSeed() }, b => BackupManifest.Read(b, "manifest.json"), text: true);

    [Fact]
    public void DkekShareFile_Read() => Run("PicoHsm share file (.dkekshare)", new[] { ShareSeed() }, b => DkekShareFile.Read(b, "fuzz.dkekshare"), text: true);

    private static List<byte[]> PkbSeeds()
    {
        var seeds = new List<byte[]>();
        foreach (var (kind, cls) in new[] { (KeyKind.Rsa, KeyClass.Private), (KeyKind.Ec, KeyClass.Private), (KeyKind.Aes, KeyClass.Secret) })
        {
            var file = new WrappedKeyFile
            {
                Created = DateTimeOffset.UnixEpoch.AddDays(20000),
                ToolVersion = "PicoHsm 0.1.0",
                SourceToken = new TokenInfo("SoftHSM project", "SoftHSM v2", "0123456789abcdef", "2.6"),
                KeyClass = cls,
                KeyKind = kind,
                SizeBits = kind switch { KeyKind.Rsa => 2048, KeyKind.Ec => 256, _ => 256 },
                CurveName = kind == KeyKind.Ec ? "secp256r1" : null,
                CurveParameters = kind == KeyKind.Ec ? Convert.FromHexString("06082A8648CE3D030107") : null,
                Id = [0x01, 0x02],
                Label = "fuzz-" + kind,
                Attributes = new Dictionary<string, bool> { ["sign"] = true, ["decrypt"] = false },
                WrapMechanism = "CKM_AES_KEY_WRAP_PAD",
                WrappingKeyKcv = RandomNumberGenerator.GetBytes(8),
                WrappedKey = RandomNumberGenerator.GetBytes(kind == KeyKind.Aes ? 40 : 200),
                PublicKeyInfo = kind == KeyKind.Rsa ? VectorFiles.Read("rsa2048.pub.der") : kind == KeyKind.Ec ? VectorFiles.Read("ec256.pub.der") : null,
            };
            // Format version 2 (with its authentication tag, as written now) and version 1 (still read).
            byte[] dkek = RandomNumberGenerator.GetBytes(32);
            seeds.Add(file.WithAuthentication(BackupAuthentication.CreateOffline(file, dkek, "CKM_AES_KEY_WRAP_PAD")).ToBytes());
            seeds.Add(file.ToBytes());
        }
        return seeds;
    }

    private static byte[] ManifestSeed() => new BackupManifest
    {
        Created = DateTimeOffset.UnixEpoch.AddDays(20000),
        ToolVersion = "PicoHsm 0.1.0",
        SourceToken = new TokenInfo("SoftHSM project", "SoftHSM v2", "0123456789abcdef", "2.6"),
        DkekKcv = RandomNumberGenerator.GetBytes(8),
        Entries = new[]
        {
            new BackupManifestEntry("01-a.pkb", "01", "a", KeyKind.Rsa, 2048, null, "0011223344556677", new string('a', 64)),
            new BackupManifestEntry("02-b.pkb", "02", "b", KeyKind.Ec, 256, "secp256r1", "0011223344556677", new string('b', 64)),
        },
        NotExported = new[] { new NotExportedKey("03", "c", KeyKind.Aes, "CKA_EXTRACTABLE is false") },
    }.ToBytes();

    private static byte[]? _share;

    private static byte[] ShareSeed()
    {
        // One PBKDF2 (600,000 rounds) to make it; parsing never runs the KDF.
        if (_share is not null) return _share;
        var share = RandomNumberGenerator.GetBytes(32);
        var file = DkekShareFile.Create(share, 1, 2, 3, KeyCheckValue.Compute(share), Guid.NewGuid(), "fuzz", "fuzz-password-1".ToCharArray());
        return _share = file.ToBytes();
    }

    private static byte[] TokenInfoSeed()
    {
        // EF.TokenInfo as the firmware writes it: SEQUENCE { version, serial, manufacturer, [0] label, flags }.
        static byte[] Tlv(byte tag, byte[] value) => [tag, (byte)value.Length, .. value];
        byte[] body = [.. Tlv(0x02, [0]), .. Tlv(0x04, Encoding.ASCII.GetBytes("ESPICOHSMTR")), .. Tlv(0x0C, Encoding.UTF8.GetBytes("Pol Henarejos")),
            .. Tlv(0x80, Encoding.UTF8.GetBytes("Pico-HSM")), .. Tlv(0x03, [0x04, 0x10])];
        return Tlv(0x30, body);
    }
}
