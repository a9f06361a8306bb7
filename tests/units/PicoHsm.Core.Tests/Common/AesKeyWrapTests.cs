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
}
