namespace PicoHsm.Operations;

/// <summary>
/// What a core service needs from whoever runs it and cannot do itself: ask before a change,
/// ask for share passwords, show progress, warnings and detail, report a failed item and go on,
/// and stop when asked. A cmdlet implements it with ShouldProcess, the host's prompt and its
/// streams; a test implements it with lists. No PowerShell types here.
/// </summary>
public interface IOperationHost
{
    /// <summary>Cancelled when the user stops the operation (Ctrl+C).</summary>
    CancellationToken Cancellation { get; }

    /// <summary>Whether to make the change (false: -WhatIf, or the user said no).</summary>
    bool ShouldProcess(string target, string action);

    /// <summary>
    /// The share passwords given with the command (-SharePassword), in order, as fresh arrays the
    /// service zeroes; null when none were given (then the service asks for each one with
    /// <see cref="ReadSecret"/>, checking it as it is typed: see <see cref="SharePasswordPrompt"/>).
    /// </summary>
    IReadOnlyList<char[]>? GivenPasswords();

    /// <summary>How the caller gives passwords without a prompt, for messages ("-SharePassword").</summary>
    string PasswordParameter { get; }

    /// <summary>Asks once for a secret, without echo; null when nobody can answer a prompt (non-interactive).</summary>
    char[]? ReadSecret(string prompt);

    void Progress(OperationProgress progress);

    void Warning(string message);

    void Verbose(string message);

    /// <summary>One item failed (a key, a file); the operation goes on with the next.</summary>
    void ItemFailed(Common.PicoHsmException error, object? target);
}

/// <summary>How far an operation is: <see cref="Percent"/> 0..100, or <see cref="Completed"/> at the end.</summary>
public sealed record OperationProgress(string Status, int Percent = 0, bool Completed = false);

/// <summary>Zeroes password arrays a service got from its host.</summary>
internal sealed class PasswordLease : IDisposable
{
    public PasswordLease(IReadOnlyList<char[]> values) => Values = values;

    public IReadOnlyList<char[]> Values { get; }

    public void Dispose()
    {
        foreach (var p in Values) Array.Clear(p);
    }
}
