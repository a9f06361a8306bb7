using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Parameters;
using PicoHsm.Common;

namespace PicoHsm.Core.Tests.Common;

public class AesKeyWrapTests
{
    private static readonly byte[] RfcKek = Convert.FromHexString("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");

    [Theory]
    // RFC 5649 section 6: a 20-byte key (three blocks) and a 7-byte key (the one-block case).
    [InlineData("c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a")]
    [InlineData("466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f")]
    public void WrapPad_MatchesTheRfcVectors_AndUnwraps(string keyHex, string wrappedHex)
    {
        byte[] wrapped = AesKeyWrap.WrapPad(RfcKek, Convert.FromHexString(keyHex));
        Assert.Equal(wrappedHex, Convert.ToHexString(wrapped).ToLowerInvariant());
        Assert.Equal(keyHex, Convert.ToHexString(AesKeyWrap.UnwrapPad(RfcKek, wrapped)).ToLowerInvariant());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(32)]
    [InlineData(1217)] // a PKCS#8 RSA-2048 private key is about this long
    public void WrapPad_AgreesWithBouncyCastle_ForAnyLength(int length)
    {
        byte[] kek = RandomNumberGenerator.GetBytes(32), key = RandomNumberGenerator.GetBytes(length);
        var engine = new Rfc5649WrapEngine(new AesEngine());
        engine.Init(true, new KeyParameter(kek));
        Assert.Equal(engine.Wrap(key, 0, key.Length), AesKeyWrap.WrapPad(kek, key));
    }

    [Fact]
    public void UnwrapPad_RefusesAWrongKeyAndAChangedByte()
    {
        byte[] kek = RandomNumberGenerator.GetBytes(32);
        byte[] wrapped = AesKeyWrap.WrapPad(kek, RandomNumberGenerator.GetBytes(40));
        Assert.Throws<CryptographicException>(() => AesKeyWrap.UnwrapPad(RandomNumberGenerator.GetBytes(32), wrapped));
        wrapped[^1] ^= 1;
        Assert.Throws<CryptographicException>(() => AesKeyWrap.UnwrapPad(kek, wrapped));
        Assert.Throws<CryptographicException>(() => AesKeyWrap.UnwrapPad(kek, new byte[12]));
    }

    // RFC 3394 section 4.1 (128-bit KEK, 128-bit key) and 4.6 (256-bit KEK, 256-bit key).
    [Theory]
    [InlineData("000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff", "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5")]
    [InlineData("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f",
        "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21")]
    public void WrapAndUnwrap_RfcVectors(string kekHex, string keyHex, string wrappedHex)
    {
        Assert.Equal(wrappedHex, Convert.ToHexString(AesKeyWrap.Wrap(Convert.FromHexString(kekHex), Convert.FromHexString(keyHex))).ToLowerInvariant());
        byte[] key = AesKeyWrap.Unwrap(Convert.FromHexString(kekHex), Convert.FromHexString(wrappedHex));
        Assert.Equal(keyHex, Convert.ToHexString(key).ToLowerInvariant());
    }

    [Theory]
    [InlineData(16)]
    [InlineData(24)]
    [InlineData(32)]
    [InlineData(1216)]
    public void WrapAndUnwrap_AgreeWithBouncyCastle_AndUnwrapRefusesAWrongKeyOrAChangedByte(int length)
    {
        byte[] kek = RandomNumberGenerator.GetBytes(32), key = RandomNumberGenerator.GetBytes(length);
        var engine = new AesWrapEngine();
        engine.Init(true, new KeyParameter(kek));
        byte[] wrapped = engine.Wrap(key, 0, key.Length);
        Assert.Equal(wrapped, AesKeyWrap.Wrap(kek, key));
        Assert.Equal(key, AesKeyWrap.Unwrap(kek, wrapped));
        Assert.Throws<CryptographicException>(() => AesKeyWrap.Unwrap(RandomNumberGenerator.GetBytes(32), wrapped));
        wrapped[length / 2] ^= 1;
        Assert.Throws<CryptographicException>(() => AesKeyWrap.Unwrap(kek, wrapped));
        Assert.Throws<CryptographicException>(() => AesKeyWrap.Unwrap(kek, new byte[16]));
    }
}
