using System.Security.Cryptography;
using PicoHsm.Keys;

namespace PicoHsm.Core.Tests.Keys;

public sealed class PublicKeyInfoTests
{
    /// <summary>
    /// The listing encodes an RSA SubjectPublicKeyInfo directly (no RSA object per key); its bytes,
    /// and so the fingerprints backups record, are the ones .NET's own export gives.
    /// </summary>
    [Theory]
    [InlineData(1024)]
    [InlineData(2048)]
    [InlineData(3072)]
    public void FromRsa_IsWhatDotNetExports(int bits)
    {
        using var rsa = RSA.Create(bits);
        var p = rsa.ExportParameters(false);
        byte[] expected = rsa.ExportSubjectPublicKeyInfo();
        Assert.Equal(expected, PublicKeyInfo.FromRsa(p.Modulus!, p.Exponent!));
        // PKCS#11 tokens may give the modulus and exponent with leading zero bytes.
        Assert.Equal(expected, PublicKeyInfo.FromRsa(new byte[] { 0, 0 }.Concat(p.Modulus!).ToArray(), new byte[] { 0 }.Concat(p.Exponent!).ToArray()));
        Assert.Equal(PublicKeyInfo.Fingerprint(expected), PublicKeyInfo.Fingerprint(PublicKeyInfo.FromRsa(p.Modulus!, p.Exponent!)));
    }
}
