using PicoHsm.Backup;
using PicoHsm.Dkek;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Dkek;

/// <summary>
/// Fixed files of format version 1. They must stay readable by every later version: people keep
/// these files for years. Do not regenerate them; add new vectors for new versions instead.
/// The share file was also decrypted independently (Python hashlib + cryptography) following
/// docs/dkek-share-format.md, and the .pkb digest checked with `head -c -68 f.pkb | sha256sum`.
/// </summary>
public class GoldenFileTests
{
    private const string ShareFileV1Hex =
        "8950444B530D0A1A00010F1E2D3C4B5A69788796A5B4C3D2E1F0020203A1B2C3D4E5F60718000001A21CE06E00010009" +
        "27C0105EBE7F438277E9219E1B53BB463B4AB8019A9A02842DC73F951FACC7D50009676F6C64656E207631C3B1C4DEBC" +
        "46134C8B33F1F9610D7ECEB703BB5903616D270B662265952AB334B4A6BBF14648A58258AE0348DE9A4876";

    [Fact]
    public void ShareFileV1StillDecrypts()
    {
        var file = DkekShareFile.Read(Convert.FromHexString(ShareFileV1Hex), "golden.dkekshare");
        Assert.Equal((2, 2, 3), (file.Index, file.Threshold, file.ShareCount));
        Assert.Equal("a1b2c3d4e5f60718", file.KcvHex);
        Assert.Equal(Guid.Parse("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), file.SplitId);
        Assert.Equal("golden v1", file.Label);
        Assert.Equal(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero), file.Created);
        Assert.Equal(600_000, file.Iterations);
        using var share = file.Decrypt("golden-vector-password");
        Assert.Equal("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", Convert.ToHexString(share.Span).ToLowerInvariant());
    }

    private const string WrappedKeyFileV1 = """
{
  "format": "picohsm-wrapped-key",
  "version": 1,
  "created": "2026-11-27T00:00:00.000Z",
  "tool": "PicoHsm 0.1.0",
  "sourceToken": {
    "manufacturer": "SoftHSM project",
    "model": "SoftHSM v2",
    "serial": "a1b2c3d4e5f6",
    "firmware": "2.6"
  },
  "key": {
    "class": "secret",
    "kind": "Aes",
    "sizeBits": 256,
    "curve": null,
    "curveParameters": null,
    "id": "42",
    "label": "golden aes",
    "attributes": {
      "decrypt": true,
      "encrypt": true
    }
  },
  "wrap": {
    "mechanism": "CKM_AES_KEY_WRAP_PAD",
    "parameters": null,
    "wrappingKeyKcv": "a1b2c3d4e5f60718",
    "wrappedKey": "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3"
  },
  "publicKey": null,
  "certificate": null,
  "documentSha256": "48203036dc7a08736e682882f7aa614719c523196dcfde444732d66548a844ce"
}
""";

    [Fact]
    public void WrappedKeyFileV1StillReads()
    {
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(WrappedKeyFileV1.ReplaceLineEndings("\n") + "\n");
        var file = WrappedKeyFile.Read(bytes, "golden.pkb");
        Assert.Equal(KeyKind.Aes, file.KeyKind);
        Assert.Equal("42", file.IdHex);
        Assert.Equal("golden aes", file.Label);
        Assert.Equal("00112233445566778899aabbccddeeff0011223344556677", Convert.ToHexString(file.WrappedKey).ToLowerInvariant());
        Assert.Equal(bytes, file.ToBytes()); // the writer still produces exactly this
    }
}
