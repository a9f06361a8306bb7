#if !NET
using System.Security.Cryptography;
using PicoHsm.Compat;

namespace PicoHsm.Core.Tests.Compat;

/// <summary>
/// The Desktop build's own PBKDF2-HMAC-SHA256 (netstandard2.0: .NET Framework, Mono; run by the
/// Mono xUnit run) against the platform's Rfc2898DeriveBytes: its first round is SHA-256 blocks
/// continued from the pad states over salt || INT(i), so salts around and beyond one SHA-256 block
/// (the 9 bytes of padding spill into a second block from 52 bytes of salt), passwords longer than a
/// block (hashed first) and the second output block are each checked.
/// </summary>
public sealed class Pbkdf2Sha256Tests
{
    private static byte[] Ours(byte[] password, byte[] salt, int iterations, int blockIndex)
    {
        var output = new byte[32];
        Pbkdf2Sha256.DeriveBlock(password, salt, output, iterations, 1000, CancellationToken.None, blockIndex);
        return output;
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(16, 2)]
    [InlineData(51, 3)]
    [InlineData(52, 1)]
    [InlineData(55, 2)]
    [InlineData(56, 1)]
    [InlineData(60, 2)]
    [InlineData(64, 3)]
    [InlineData(115, 1)]
    [InlineData(116, 2)]
    [InlineData(119, 1)]
    [InlineData(120, 2)]
    [InlineData(200, 3)]
    public void SaltsAroundAndBeyondOneBlock_BothOutputBlocks_GiveWhatThePlatformGives(int saltLength, int iterations)
    {
        byte[] password = "correct horse battery"u8.ToArray();
        byte[] salt = RandomNumberGenerator.GetBytes(saltLength);
        byte[] expected = Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, HashAlgorithmName.SHA256, 64);
        Assert.Equal(expected.AsSpan(0, 32).ToArray(), Ours(password, salt, iterations, 1));
        Assert.Equal(expected.AsSpan(32, 32).ToArray(), Ours(password, salt, iterations, 2));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(55)]
    [InlineData(56)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(119)]
    [InlineData(120)]
    [InlineData(300)]
    public void PasswordsAroundAndBeyondOneBlock_GiveWhatThePlatformGives(int passwordLength)
    {
        byte[] password = RandomNumberGenerator.GetBytes(passwordLength);
        byte[] salt = RandomNumberGenerator.GetBytes(70);
        byte[] expected = Rfc2898DeriveBytes.Pbkdf2(password, salt, 2, HashAlgorithmName.SHA256, 96);
        for (int i = 1; i <= 3; i++)
            Assert.Equal(expected.AsSpan(32 * (i - 1), 32).ToArray(), Ours(password, salt, 2, i));
    }

    [Fact]
    public void Rfc7914Vector_BothBlocksOfA64ByteOutput()
    {
        // RFC 7914 section 11 (PBKDF2-HMAC-SHA256, P = "passwd", S = "salt", c = 1, dkLen = 64): both blocks.
        const string hex = "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
            + "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783";
        var first = Ours("passwd"u8.ToArray(), "salt"u8.ToArray(), 1, 1);
        var second = Ours("passwd"u8.ToArray(), "salt"u8.ToArray(), 1, 2);
        Assert.Equal(hex, Convert.ToHexString(first).ToLowerInvariant() + Convert.ToHexString(second).ToLowerInvariant());
    }
}
#endif
