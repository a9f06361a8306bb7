using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Devices.ScHsm.Shares;

/// <summary>
/// A share file written again for a new custodian: its 64 bytes, the KCV of the DKEK share inside
/// (SHA-256(share)[0..8], the same before and after, so the DKEK the shares XOR to is unchanged), and for
/// a threshold file the new prime and password shares (the caller shows them and then zeroes them).
/// </summary>
public sealed record ScHsmRotatedShareFile(byte[] File, string ShareKcv, ScHsmPasswordSplit? PasswordShares);

/// <summary>
/// Gives an sc-hsm-tool DKEK share file (.pbe) a new password without any device: the share is
/// decrypted in memory, encrypted again under a fresh salt and the new password (a typed password, or
/// a fresh random 8-byte password split n-of-m over a new prime, as <c>--pwd-shares-threshold</c> does),
/// and the new file is decrypted once more to prove it opens to the same share. The old file is not
/// touched and keeps opening with the old password until every copy of it is destroyed.
/// </summary>
public static class ScHsmShareRotation
{
    /// <summary>
    /// sc-hsm-tool reads a share id with BN_hex2bn although it prints it in decimal, so ids from 10 up
    /// would be read back wrong: at most 9 password shares.
    /// </summary>
    public const int MaxPasswordShares = 9;

    /// <summary>The KCV of one DKEK share on its own (what a card holding only this share would report).</summary>
    public static string ShareKcv(ReadOnlySpan<byte> share) => KeyCheckValue.ToHex(KeyCheckValue.Compute(share));

    /// <summary>Opens the file with its password; a wrong password throws a <see cref="PicoHsmException"/> (WrongSharePassword).</summary>
    public static SecretBytes Open(ReadOnlySpan<byte> file, ReadOnlySpan<byte> password, int iterations = ScHsmShareFile.DefaultIterations)
    {
        ScHsmShareFile f;
        try
        {
            f = ScHsmShareFile.Read(file);
        }
        catch (ScHsmFormatException ex)
        {
            throw new PicoHsmException(PicoErrorKind.InvalidData, "NotAShareFile", $"This is not an sc-hsm-tool DKEK share file: {ex.Message}", null, ex);
        }
        try
        {
            return f.Decrypt(password, iterations);
        }
        catch (ScHsmWrongPasswordException ex)
        {
            throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "WrongSharePassword",
                "The share file did not decrypt: its password (or the password shares) is wrong, or the file is damaged. Ask its custodian(s) again.", null, ex);
        }
    }

    /// <summary>The same share under a new typed password (its UTF-8 bytes, as sc-hsm-tool's --password takes them).</summary>
    public static ScHsmRotatedShareFile WithPassword(ReadOnlySpan<byte> oldFile, ReadOnlySpan<byte> oldPassword, ReadOnlySpan<byte> newPassword,
        int iterations = ScHsmShareFile.DefaultIterations)
    {
        if (newPassword.IsEmpty) throw new ArgumentException("The new password is empty.", nameof(newPassword));
        if (newPassword.Contains((byte)0))
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "PasswordHasNul",
                "The new password contains a NUL character, which sc-hsm-tool cannot take (it measures passwords with strlen). Choose another.", null);
        using var share = Open(oldFile, oldPassword, iterations);
        return Rewrite(share.Span, newPassword, null, iterations);
    }

    /// <summary>
    /// The same share under a fresh random 8-byte password split <paramref name="threshold"/>-of-<paramref name="total"/>
    /// over a new prime: the file sc-hsm-tool writes with <c>--pwd-shares-threshold t --pwd-shares-total n</c>.
    /// </summary>
    public static ScHsmRotatedShareFile WithPasswordShares(ReadOnlySpan<byte> oldFile, ReadOnlySpan<byte> oldPassword, int threshold, int total,
        int iterations = ScHsmShareFile.DefaultIterations)
    {
        if (total > MaxPasswordShares)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "TooManyPasswordShares",
                $"sc-hsm-tool reads a password share id as hex although it prints it in decimal, so share ids from 10 up would not open the file with it. Split into at most {MaxPasswordShares} password shares.", total);
        if (threshold < 2 || total < 3 || threshold > total)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "PasswordShareCounts",
                $"sc-hsm-tool's password shares need a threshold of at least 2, at least 3 shares in all, and a threshold no larger than the total; {threshold}-of-{total} is not that.", threshold);
        using var share = Open(oldFile, oldPassword, iterations);
        byte[] password = ScHsmPasswordShares.NewPassword();
        try
        {
            var split = ScHsmPasswordShares.Split(password, threshold, total);
            return Rewrite(share.Span, password, split, iterations);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(password);
        }
    }

    /// <summary>The 8-byte password of a threshold file, rebuilt from the prime and at least the threshold of the custodians' shares.</summary>
    public static byte[] PasswordFromShares(ReadOnlySpan<byte> prime, IReadOnlyList<ScHsmPasswordShare> shares)
    {
        try
        {
            return ScHsmPasswordShares.Combine(prime, shares);
        }
        catch (Exception ex) when (ex is ArgumentException or ScHsmFormatException)
        {
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "PasswordSharesInvalid",
                $"The password shares do not rebuild the share file's password: {ex.Message} Give at least the threshold of distinct shares, with the prime the custodians were shown.", null, ex);
        }
    }

    private static ScHsmRotatedShareFile Rewrite(ReadOnlySpan<byte> share, ReadOnlySpan<byte> password, ScHsmPasswordSplit? split, int iterations)
    {
        byte[] file = ScHsmShareFile.Create(share, password, iterations: iterations);
        // Read back before anyone relies on it: the new file must open to the very same share.
        using (var check = ScHsmShareFile.Read(file).Decrypt(password, iterations))
            if (!CryptographicOperations.FixedTimeEquals(check.Span, share))
                throw new PicoHsmException(PicoErrorKind.InvalidOperation, "RewriteCheckFailed",
                    "The new share file did not read back to the same DKEK share; nothing was written. Report this as a bug.", null);
        return new ScHsmRotatedShareFile(file, ShareKcv(share), split);
    }
}
