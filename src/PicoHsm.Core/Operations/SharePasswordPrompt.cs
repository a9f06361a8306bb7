using PicoHsm.Common;
using PicoHsm.Dkek;

namespace PicoHsm.Operations;

/// <summary>
/// Share passwords for the ceremony and the import, one custodian at a time. Each entry is checked
/// as it is typed and only that entry is asked again: a new share's password for length, policy,
/// confirmation and reuse by another custodian; an existing share's password by opening that
/// share. Passwords given up front (-SharePassword) get the same checks, and the first problem is
/// one error with its reason and the share it concerns. Messages never contain a password.
/// </summary>
public static class SharePasswordPrompt
{
    /// <summary>How often one share's password is asked for before its error is final (a damaged file fails every time).</summary>
    public const int Attempts = 3;

    /// <summary>One checked password per new share, in order; the caller disposes (zeroes) them.</summary>
    internal static PasswordLease ForNewShares(IOperationHost host, IReadOnlyList<string> names)
    {
        var accepted = new List<char[]>();
        try
        {
            if (host.GivenPasswords() is { } given)
            {
                using var lease = new PasswordLease(given);
                CheckCount(host, given, names);
                for (int i = 0; i < given.Count; i++)
                {
                    if (Problem(given[i], accepted) is { } p)
                        throw new PicoHsmException(PicoErrorKind.InvalidArgument, p.Reason,
                            $"The password for {names[i]}: {p.Text} Give {host.PasswordParameter} one password per custodian, each their own.", i + 1);
                    accepted.Add(given[i].ToArray());
                }
                return new PasswordLease(accepted);
            }
            for (int i = 0; i < names.Count; i++)
                accepted.Add(AskNew(host, names, i, accepted));
            return new PasswordLease(accepted);
        }
        catch
        {
            foreach (var a in accepted) Array.Clear(a);
            throw;
        }
    }

    private static char[] AskNew(IOperationHost host, IReadOnlyList<string> names, int i, List<char[]> accepted)
    {
        while (true)
        {
            host.Cancellation.ThrowIfCancellationRequested();
            char[] a = host.ReadSecret($"Password for {names[i]}") ?? throw Required(host, names);
            if (Problem(a, accepted) is { } p)
            {
                Array.Clear(a);
                host.Warning($"{Capital(names[i])}: {p.Text} Type it again.");
                continue;
            }
            char[] b = host.ReadSecret($"Confirm the password for {names[i]}") ?? Array.Empty<char>();
            bool same = a.AsSpan().SequenceEqual(b);
            Array.Clear(b);
            if (same) return a;
            Array.Clear(a);
            host.Warning($"{Capital(names[i])}: the two entries differ. Type it again.");
        }
    }

    /// <summary>
    /// Opens each share with its password as it is typed (<paramref name="open"/>); a wrong password
    /// is asked again for that share only, up to <see cref="Attempts"/> times. With given passwords,
    /// the first wrong one is the error. The caller disposes the results.
    /// </summary>
    /// <param name="isWrongPassword">Whether an error of <paramref name="open"/> means "wrong password (or damaged file)".</param>
    internal static List<T> OpenEach<T>(IOperationHost host, IReadOnlyList<string> names, Func<int, char[], T> open, Func<Exception, bool> isWrongPassword,
        Action<int>? progress = null) where T : IDisposable
    {
        var opened = new List<T>();
        try
        {
            if (host.GivenPasswords() is { } given)
            {
                using var lease = new PasswordLease(given);
                CheckCount(host, given, names);
                int empty = given.ToList().FindIndex(g => g.Length == 0);
                if (empty >= 0) throw Empty(host, names, empty);
                for (int i = 0; i < given.Count; i++)
                {
                    host.Cancellation.ThrowIfCancellationRequested();
                    progress?.Invoke(i);
                    opened.Add(open(i, given[i]));
                }
                return opened;
            }
            for (int i = 0; i < names.Count; i++)
            {
                progress?.Invoke(i);
                opened.Add(AskAndOpen(host, names, i, open, isWrongPassword));
            }
            return opened;
        }
        catch
        {
            foreach (var o in opened) o.Dispose();
            throw;
        }
    }

    private static T AskAndOpen<T>(IOperationHost host, IReadOnlyList<string> names, int i, Func<int, char[], T> open, Func<Exception, bool> isWrongPassword)
    {
        for (int attempt = 1; ; attempt++)
        {
            host.Cancellation.ThrowIfCancellationRequested();
            char[] pw = host.ReadSecret($"Password for {names[i]}") ?? throw Required(host, names);
            try
            {
                if (pw.Length == 0)
                {
                    if (attempt >= Attempts) throw Empty(host, names, i);
                    host.Warning($"{Capital(names[i])}: the password is empty. Type it again.");
                    continue;
                }
                return open(i, pw);
            }
            catch (Exception ex) when (attempt < Attempts && isWrongPassword(ex))
            {
                host.Warning($"{Capital(names[i])}: the password is wrong (or the file was changed). Type it again ({Attempts - attempt} more attempt(s)); the other shares stay open.");
            }
            finally { Array.Clear(pw); }
        }
    }

    private sealed record PasswordProblem(string Reason, string Text);

    /// <summary>What is wrong with a new share's password: empty, against the policy, or another custodian's.</summary>
    private static PasswordProblem? Problem(char[] password, List<char[]> accepted)
    {
        if (password.Length == 0) return new("PasswordEmpty", "the password is empty.");
        if (!DkekPasswordPolicy.TryValidate(password, out string? problem)) return new("WeakPassword", problem ?? "the password is not acceptable.");
        int same = accepted.FindIndex(a => a.AsSpan().SequenceEqual(password));
        return same < 0 ? null : new("DuplicatePassword", $"it is the same as the password of share {same + 1}; each custodian needs their own.");
    }

    private static void CheckCount(IOperationHost host, IReadOnlyList<char[]> given, IReadOnlyList<string> names)
    {
        if (given.Count != names.Count)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "PasswordCountMismatch",
                $"{host.PasswordParameter} has {given.Count} password(s) but {names.Count} are needed ({string.Join(", ", names)}), in that order.", null);
    }

    private static PicoHsmException Required(IOperationHost host, IReadOnlyList<string> names) =>
        new(PicoErrorKind.InvalidArgument, "PasswordRequired",
            $"Passwords are needed for {string.Join(", ", names)} and this session cannot prompt (non-interactive). " +
            $"Pass them in order with {host.PasswordParameter} (an array of SecureString, e.g. from Get-Secret or Import-Clixml).", null);

    private static PicoHsmException Empty(IOperationHost host, IReadOnlyList<string> names, int i) =>
        new(PicoErrorKind.InvalidArgument, "PasswordEmpty",
            $"The password for {names[i]} is empty. Type it again, or pass it with {host.PasswordParameter}.", i + 1);

    private static string Capital(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
}
