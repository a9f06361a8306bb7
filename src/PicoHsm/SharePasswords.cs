using System.Management.Automation;
using System.Runtime.InteropServices;
using System.Security;
using PicoHsm.Common;
using PicoHsm.Dkek;

namespace PicoHsm.Module;

/// <summary>
/// Share passwords as char arrays the caller zeroes (<see cref="Dispose"/>): from -SharePassword,
/// else asked per custodian at the prompt (with confirmation for new shares), else an error that
/// says how to pass them when nobody can answer a prompt.
/// </summary>
internal sealed class SharePasswords : IDisposable
{
    private readonly List<char[]> _passwords = new();

    public IReadOnlyList<char[]> Values => _passwords;

    public static char[] ToChars(SecureString s)
    {
        IntPtr p = Marshal.SecureStringToGlobalAllocUnicode(s);
        try
        {
            var chars = new char[s.Length];
            Marshal.Copy(p, chars, 0, chars.Length);
            return chars;
        }
        finally
        {
            Marshal.ZeroFreeGlobalAllocUnicode(p);
        }
    }

    /// <param name="names">What each password is for, shown at the prompt ("share 2 of 5").</param>
    public static SharePasswords Get(PicoCmdletBase cmdlet, SecureString[]? given, IReadOnlyList<string> names, bool confirm, string parameterName)
    {
        var result = new SharePasswords();
        try
        {
            if (given is not null)
            {
                if (given.Length != names.Count)
                    throw new PicoHsmException(PicoErrorKind.InvalidArgument, "PasswordCountMismatch",
                        $"{parameterName} has {given.Length} password(s) but {names.Count} are needed ({string.Join(", ", names)}), in that order.", null);
                foreach (var g in given) result._passwords.Add(ToChars(g));
                RequireNonEmpty(result._passwords, names, parameterName);
                return result;
            }
            foreach (string name in names)
            {
                while (true)
                {
                    var first = cmdlet.PromptSecretInternal($"Password for {name}") ?? throw new PicoHsmException(PicoErrorKind.InvalidArgument, "PasswordRequired",
                        $"Passwords are needed for {string.Join(", ", names)} and this session cannot prompt (non-interactive). " +
                        $"Pass them in order with {parameterName} (an array of SecureString, e.g. from Get-Secret or Import-Clixml).", null);
                    char[] a = ToChars(first);
                    if (!confirm) { result._passwords.Add(a); break; }
                    var second = cmdlet.PromptSecretInternal($"Confirm the password for {name}");
                    char[] b = second is null ? Array.Empty<char>() : ToChars(second);
                    bool same = a.AsSpan().SequenceEqual(b);
                    Array.Clear(b);
                    string? problem = null;
                    if (same && Dkek.DkekPasswordPolicy.TryValidate(a, out problem))
                    {
                        result._passwords.Add(a);
                        break;
                    }
                    Array.Clear(a);
                    cmdlet.Host.UI.WriteWarningLine(same ? $"That password cannot be used: {problem ?? "too weak"}" : "The two entries differ; try again.");
                }
            }
            RequireNonEmpty(result._passwords, names, parameterName);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>An empty password (Enter pressed at the prompt) is a clear error, not a failed decryption.</summary>
    private static void RequireNonEmpty(List<char[]> passwords, IReadOnlyList<string> names, string parameterName)
    {
        int i = passwords.FindIndex(p => p.Length == 0);
        if (i >= 0)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "PasswordEmpty",
                $"The password for {names[i]} is empty. Type it again, or pass it with {parameterName}.", null);
    }

    public void Dispose()
    {
        foreach (var p in _passwords) Array.Clear(p);
        _passwords.Clear();
    }
}
