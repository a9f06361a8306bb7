using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using Xunit.Abstractions;
using PicoHsm.Common;
using PicoHsm.Dkek;

namespace PicoHsm.Core.Tests.Dkek;

public class DkekPasswordPolicyTests
{
    [Theory]
    [InlineData("0123456789", true)]
    [InlineData("correct horse battery staple", true)]
    [InlineData("\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9", true)]
    [InlineData("012345678", false)]
    [InlineData("", false)]
    [InlineData("0123456789\n", false)]
    [InlineData("01234\t56789", false)]
    [InlineData(" 0123456789", false)]
    [InlineData("0123456789 ", false)]
    public void Validate(string password, bool ok)
    {
        Assert.Equal(ok, DkekPasswordPolicy.TryValidate(password, out string? problem));
        Assert.Equal(ok, problem is null);
        if (ok) DkekPasswordPolicy.Validate(password);
        else
        {
            var ex = Assert.Throws<ArgumentException>(() => DkekPasswordPolicy.Validate(password));
            if (password.Length > 0) Assert.DoesNotContain(password, ex.Message);
        }
    }

    [Fact]
    public void UnpairedSurrogatesAreRefused()
    {
        // (not InlineData: xUnit's serialization would replace the lone surrogate)
        Assert.False(DkekPasswordPolicy.TryValidate("0123\ud80056789", out string? problem));
        Assert.Contains("surrogate", problem);
        Assert.False(DkekPasswordPolicy.TryValidate("0123456789\udc00", out _));
    }

    [Fact]
    public void LengthCountsCharactersNotUtf16Units()
    {
        // 5 emoji are 10 UTF-16 units but 5 characters
        string fiveEmoji = string.Concat(Enumerable.Repeat("\U0001F511", 5));
        Assert.Equal(10, fiveEmoji.Length);
        Assert.False(DkekPasswordPolicy.TryValidate(fiveEmoji, out _));
    }
}
