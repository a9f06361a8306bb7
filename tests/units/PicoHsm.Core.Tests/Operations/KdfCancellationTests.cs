using System.Diagnostics;
using System.Security.Cryptography;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Dkek;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>
/// Ctrl+C reaches the password KDFs: sc-hsm-tool's 10,000,000-round MD5 chain (~3-4 s a share file)
/// and our PBKDF2 stop within a second of the token being cancelled.
/// </summary>
public sealed class KdfCancellationTests
{
    private static void AssertStopsWithinASecond(Action<CancellationToken> work)
    {
        using var cts = new CancellationTokenSource();
        var sw = new Stopwatch();
        var task = Task.Run(() => work(cts.Token));
        Thread.Sleep(300);
        Assert.False(task.IsCompleted, "the work ended before it could be cancelled, so this test proves nothing");
        sw.Start();
        cts.Cancel();
        var ex = Assert.ThrowsAny<OperationCanceledException>(() => task.GetAwaiter().GetResult());
        sw.Stop();
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(1), $"stopped {sw.ElapsedMilliseconds} ms after the cancel");
        Assert.Equal(cts.Token, ex.CancellationToken);
    }

    [Fact]
    public void ScHsmShareDecrypt_Cancelled_ThrowsWithinASecond()
    {
        var file = ScHsmShareFile.Read(TestData.ReadVector("dkek-share-1.pbe"));
        AssertStopsWithinASecond(ct => file.Decrypt("wrong password"u8, cancellation: ct).Dispose());
    }

    [Fact]
    public void ScHsmShareCreate_Cancelled_ThrowsWithinASecond()
    {
        var share = new byte[ScHsmShareFile.ShareLength];
        AssertStopsWithinASecond(ct => ScHsmShareFile.Create(share, "a password"u8, cancellation: ct));
    }

    [Fact]
    public void DkekSharePbkdf2_Cancelled_ThrowsWithinASecond()
    {
        // The maximum iteration count a file may claim: ~several seconds, so the cancel lands mid-KDF.
        AssertStopsWithinASecond(ct => DkekShareFile.DeriveKey("a password", new byte[16], DkekShareFile.MaxIterations, ct).Dispose());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4096)]
    [InlineData(4097)]
    [InlineData(10_000)]
    public void Pbkdf2InChunks_GivesWhatThePlatformPbkdf2Gives(int iterations)
    {
        byte[] password = "correct horse battery"u8.ToArray();
        byte[] salt = RandomNumberGenerator.GetBytes(16);
        var expected = Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, HashAlgorithmName.SHA256, 32);
        var actual = new byte[32];
        DkekShareFile.Pbkdf2HmacSha256(password, salt, actual, iterations, CancellationToken.None);
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(200)]
    public void Pbkdf2_PasswordsAroundTheHmacBlock_GiveWhatThePlatformPbkdf2Gives(int passwordLength)
    {
        // HMAC pads a key up to 64 bytes and hashes a longer one first (the Desktop build's own rounds do both).
        byte[] password = RandomNumberGenerator.GetBytes(passwordLength);
        byte[] salt = RandomNumberGenerator.GetBytes(passwordLength % 40);
        var expected = Rfc2898DeriveBytes.Pbkdf2(password, salt, 3, HashAlgorithmName.SHA256, 32);
        var actual = new byte[32];
        DkekShareFile.Pbkdf2HmacSha256(password, salt, actual, 3, CancellationToken.None);
        Assert.Equal(expected, actual);
    }

    [Theory]
    // PBKDF2-HMAC-SHA256 test vectors (P = "password", S = "salt", dkLen = 32), as published with RFC 7914's errata and used by OpenSSL's tests.
    [InlineData(1, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b")]
    [InlineData(2, "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43")]
    [InlineData(4096, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a")]
    public void Pbkdf2_KnownVectors(int iterations, string hex)
    {
        var actual = new byte[32];
        DkekShareFile.Pbkdf2HmacSha256("password"u8, "salt"u8, actual, iterations, CancellationToken.None);
        Assert.Equal(hex, Convert.ToHexString(actual).ToLowerInvariant());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(65_535)]
    [InlineData(65_536)]
    [InlineData(200_001)]
    public void Md5ChainInChunks_IsTheSameChain(int rounds)
    {
        var chunked = RandomNumberGenerator.GetBytes(16);
        var oneByOne = (byte[])chunked.Clone();
        Md5Iteration.Apply(chunked, rounds);
        for (int i = 0; i < rounds; i++) oneByOne = MD5.HashData(oneByOne);
        Assert.Equal(oneByOne, chunked);
    }
}
