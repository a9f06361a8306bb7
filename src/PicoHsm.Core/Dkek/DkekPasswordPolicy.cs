using System.Text;

namespace PicoHsm.Dkek;

/// <summary>
/// Rules for the password that protects one custodian's DKEK share file. Checked when a share file
/// is created (never when one is read: an old file must always stay readable).
/// </summary>
public static class DkekPasswordPolicy
{
    /// <summary>Minimum length in Unicode characters (code points, not UTF-16 units or bytes).</summary>
    public const int MinLength = 10;

    /// <summary>Maximum length in UTF-16 units, to bound the work done on input.</summary>
    public const int MaxLength = 1024;

    /// <summary>Throws <see cref="ArgumentException"/> with a message for the user when the password is not acceptable.</summary>
    public static void Validate(ReadOnlySpan<char> password)
    {
        if (!TryValidate(password, out string? problem))
            throw new ArgumentException(problem, nameof(password));
    }

    /// <summary>Returns false with a user-facing explanation when the password is not acceptable. The message never contains the password.</summary>
    public static bool TryValidate(ReadOnlySpan<char> password, out string? problem)
    {
        problem = null;
        if (password.Length > MaxLength)
        {
            problem = $"The password is too long (more than {MaxLength} characters).";
            return false;
        }
        int count = 0;
        ReadOnlySpan<char> rest = password;
        while (!rest.IsEmpty)
        {
            if (Rune.DecodeFromUtf16(rest, out Rune rune, out int used) != System.Buffers.OperationStatus.Done)
            {
                problem = "The password contains an invalid character (an unpaired UTF-16 surrogate).";
                return false;
            }
            if (Rune.IsControl(rune))
            {
                problem = "The password contains a control character (such as a tab or a line break); these cannot be typed reliably.";
                return false;
            }
            count++;
            rest = rest[used..];
        }
        if (count < MinLength)
        {
            problem = $"The password is too short: at least {MinLength} characters are required.";
            return false;
        }
        if (char.IsWhiteSpace(password[0]) || char.IsWhiteSpace(password[^1]))
        {
            problem = "The password begins or ends with a space; this is easily lost when typed or pasted, so it is not allowed.";
            return false;
        }
        return true;
    }
}
