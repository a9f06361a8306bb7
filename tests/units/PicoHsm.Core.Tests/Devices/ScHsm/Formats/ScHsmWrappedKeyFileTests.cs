using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Formats;

public class ScHsmWrappedKeyFileTests
{
    [Theory]
    [InlineData("rsa2048.wky", 587, 44, 0x30, 676, 0x67)]
    [InlineData("ec256.wky", 331, 43, 0xA0, 490, 0x67)]
    [InlineData("aes256.wky", 89, 32, 0xA8, 0, 0)]
    [InlineData("offline-rsa2048-crt.wky", 971, 0, 0, 0, 0)]
    public void Read_FindsTheParts_AndWritesTheSameBytes(string file, int blobLength, int prkdLength, int prkdTag,
        int certLength, int certTag)
    {
        var bytes = Vectors.Read(file);
        var wky = ScHsmWrappedKeyFile.Read(bytes);
        Assert.Equal(blobLength, wky.KeyBlob.Length);
        Assert.Equal(prkdLength, wky.PrivateKeyDescription?.Length ?? 0);
        if (prkdLength > 0) Assert.Equal(prkdTag, wky.PrivateKeyDescription![0]);
        Assert.Equal(certLength, wky.Certificate?.Length ?? 0);
        if (certLength > 0)
        {
            Assert.Equal(certTag, wky.Certificate![0]);
            Assert.True(wky.CertificateIsCvRequest);
            Assert.False(wky.CertificateIsX509);
        }
        Assert.Equal(bytes, wky.ToArray());
        Assert.Equal(bytes, new ScHsmWrappedKeyFile(wky.KeyBlob, wky.PrivateKeyDescription, wky.Certificate).ToArray());
    }

    [Fact]
    public void Create_FromParsedParts_GivesTheVectorBytes()
    {
        var bytes = Vectors.Read("ec256.wky");
        var wky = ScHsmWrappedKeyFile.Read(bytes);
        var again = ScHsmWrappedKeyFile.Create(wky.ParseKeyBlob(), wky.ParseDescription(), wky.Certificate);
        Assert.Equal(bytes, again.ToArray());
        Assert.Equal(KeyKind.Ec, wky.ParseKeyBlob().Kind);
    }

    [Fact]
    public void Write_ToDisk_RoundTrips()
    {
        var path = Path.Combine(Path.GetTempPath(), $"picohsm-{Guid.NewGuid():N}.wky");
        try
        {
            ScHsmWrappedKeyFile.Read(Vectors.PathOf("rsa2048.wky")).Write(path);
            Assert.Equal(Vectors.Read("rsa2048.wky"), File.ReadAllBytes(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Read_RejectsNonWrappedKeyFiles()
    {
        Assert.Throws<ScHsmFormatException>(() => ScHsmWrappedKeyFile.Read(Vectors.Read("dkek-share-1.pbe")));
        Assert.Throws<ScHsmFormatException>(() => ScHsmWrappedKeyFile.Read(Vectors.Read("rsa2048.pub.der"))); // SEQUENCE, no OCTET STRING
        var truncated = Vectors.Read("ec256.wky")[..^1];
        Assert.Throws<ScHsmFormatException>(() => ScHsmWrappedKeyFile.Read(truncated));
        byte[] trailing = [.. Vectors.Read("aes256.wky"), 0x00];
        Assert.Throws<ScHsmFormatException>(() => ScHsmWrappedKeyFile.Read(trailing));
        Assert.Throws<ScHsmFormatException>(() => ScHsmWrappedKeyFile.Read(Array.Empty<byte>()));
    }

    [Fact]
    public void LongBlob_GetsThreeByteLength()
    {
        var blob = new byte[70000];
        var bytes = new ScHsmWrappedKeyFile(blob).ToArray();
        Assert.Equal(new byte[] { 0x30, 0x83, 0x01, 0x11, 0x75, 0x04, 0x83, 0x01, 0x11, 0x70 }, bytes[..10]);
        Assert.Equal(blob.Length, ScHsmWrappedKeyFile.Read(bytes).KeyBlob.Length);
    }

    [Theory]
    [InlineData("rsa2048.wky", KeyKind.Rsa, "rsa2048", "01", 1, 2048)]
    [InlineData("ec256.wky", KeyKind.Ec, "ec256", "02", 2, 256)]
    [InlineData("aes256.wky", KeyKind.Aes, "", "34", null, 256)]
    public void Description_GivesLabelIdReferenceAndSize(string file, KeyKind kind, string label, string id, int? reference, int size)
    {
        var description = ScHsmWrappedKeyFile.Read(Vectors.PathOf(file)).ParseDescription()!;
        Assert.Equal(kind, description.Kind);
        Assert.Equal(label, description.Label);
        Assert.Equal(id, Convert.ToHexString(description.Id!));
        Assert.Equal(reference, description.KeyReference);
        Assert.Equal(size, description.KeySizeBits);
    }

    [Fact]
    public void Description_Builders_ReproduceTheVectors()
    {
        var rsa = ScHsmWrappedKeyFile.Read(Vectors.PathOf("rsa2048.wky")).PrivateKeyDescription;
        var ec = ScHsmWrappedKeyFile.Read(Vectors.PathOf("ec256.wky")).PrivateKeyDescription;
        var aes = ScHsmWrappedKeyFile.Read(Vectors.PathOf("aes256.wky")).PrivateKeyDescription;
        Assert.Equal(rsa, ScHsmKeyDescription.BuildRsa("rsa2048", [0x01], 1, 2048).Encoded);
        Assert.Equal(ec, ScHsmKeyDescription.BuildEc("ec256", [0x02], 2, 256).Encoded);
        Assert.Equal(aes, ScHsmKeyDescription.BuildAes("", [0x34], 256).Encoded);
    }

    [Fact]
    public void Description_Builder_HandlesLongLabelsAndIds()
    {
        var label = new string('x', 200) + " é";
        var id = Enumerable.Range(0, 20).Select(i => (byte)i).ToArray();
        var built = ScHsmKeyDescription.BuildRsa(label, id, 200, 4096);
        var parsed = ScHsmKeyDescription.Parse(built.Encoded);
        Assert.Equal(label, parsed.Label);
        Assert.Equal(id, parsed.Id);
        Assert.Equal(200, parsed.KeyReference);
        Assert.Equal(4096, parsed.KeySizeBits);
        var file = new ScHsmWrappedKeyFile(new byte[100], built.Encoded);
        Assert.Equal(built.Encoded, ScHsmWrappedKeyFile.Read(file.ToArray()).PrivateKeyDescription);
    }
}
