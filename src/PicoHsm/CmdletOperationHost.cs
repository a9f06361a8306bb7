using System.Management.Automation;
using System.Security;
using PicoHsm.Common;
using PicoHsm.Operations;

namespace PicoHsm.Module;

/// <summary>
/// A core service's <see cref="IOperationHost"/> as a cmdlet: ShouldProcess, -SharePassword or the
/// host's prompt (one entry at a time; the service checks each and asks again for that one only),
/// the progress/warning/verbose streams, non-terminating errors, and the cmdlet's Ctrl+C token.
/// The service zeroes the password arrays it gets.
/// </summary>
internal sealed class CmdletOperationHost : IOperationHost, IDisposable
{
    private readonly PicoCmdletBase _cmdlet;
    private readonly SecureString[]? _given;
    private readonly ProgressRecord _progress;

    public CmdletOperationHost(PicoCmdletBase cmdlet, CancellationToken cancellation, SecureString[]? sharePassword = null,
        string passwordParameter = "-SharePassword")
    {
        _cmdlet = cmdlet;
        Cancellation = cancellation;
        _given = sharePassword;
        PasswordParameter = passwordParameter;
        _progress = new ProgressRecord(1, cmdlet.MyInvocation.MyCommand.Name, "Working");
    }

    public CancellationToken Cancellation { get; }

    public bool ShouldProcess(string target, string action) => _cmdlet.ShouldProcess(target, action);

    public string PasswordParameter { get; }

    public IReadOnlyList<char[]>? GivenPasswords() => _given?.Select(SharePasswords.ToChars).ToList();

    public char[]? ReadSecret(string prompt)
    {
        using var typed = _cmdlet.PromptSecretInternal(prompt);
        return typed is null ? null : SharePasswords.ToChars(typed);
    }

    public void Progress(OperationProgress progress)
    {
        _progress.StatusDescription = progress.Status;
        _progress.PercentComplete = progress.Completed ? 100 : progress.Percent;
        _progress.RecordType = progress.Completed ? ProgressRecordType.Completed : ProgressRecordType.Processing;
        _cmdlet.WriteProgress(_progress);
    }

    public void Warning(string message) => _cmdlet.WriteWarning(message);

    public void Verbose(string message) => _cmdlet.WriteVerbose(message);

    public void ItemFailed(PicoHsmException error, object? target) => _cmdlet.WriteItemError(error, target);

    /// <summary>Nothing to release: the services zero every password array they get.</summary>
    public void Dispose()
    {
    }
}
