using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Dkek;

namespace PicoHsm.Core.Tests.Dkek;

public class DkekGeneratorTests
{
    [Fact]
    public void XorsTokenBytesWithOsBytes()
    {
        byte[]? given = null;
        using var a = DkekGenerator.Create(n => { given = Enumerable.Repeat((byte)0xAA, n).ToArray(); return given; });
        Assert.Equal(32, a.Length);
        Assert.NotNull(given);
        Assert.All(given!, b => Assert.Equal(0, b)); // the token's array is zeroed after use
        // a token that always answers zeros does not give a zero (or constant) DKEK
        using var z1 = DkekGenerator.Create(n => new byte[n]);
        using var z2 = DkekGenerator.Create(n => new byte[n]);
        Assert.NotEqual(z1.Span.ToArray(), z2.Span.ToArray());
        Assert.NotEqual(new byte[32], z1.Span.ToArray());
        using var osOnly = DkekGenerator.Create(null);
        Assert.Equal(32, osOnly.Length);
    }

    [Fact]
    public void MixedRandomIsTokenXorOs()
    {
        // With a token that answers all-ones, the result is the complement of the OS bytes, and
        // different calls differ: the OS share is present.
        var fill = DkekGenerator.MixedRandom(n => Enumerable.Repeat((byte)0xFF, n).ToArray());
        var x = new byte[64]; var y = new byte[64];
        fill(x); fill(y);
        Assert.NotEqual(x, y);
    }

    [Fact]
    public void ATokenAnsweringTheWrongLengthIsRefused()
    {
        Assert.Throws<InvalidOperationException>(() => DkekGenerator.Create(n => new byte[n - 1]));
        Assert.Throws<InvalidOperationException>(() => DkekGenerator.Create(n => null!));
    }
}
