using System.Management.Automation;
using System.Security;
using PicoHsm.Common;
using PicoHsm.Operations;

namespace PicoHsm.Module;

/// <summary>
/// A core service's <see cref="IOperationHost"/> as a cmdlet: ShouldProcess, -SharePassword or the
/// host's prompt, the progress/warning/verbose streams, non-terminating errors, and the cmdlet's
/// Ctrl+C token. Dispose zeroes the passwords it handed out.
/// </summary>
internal sealed class CmdletOperationHost : IOperationHost, IDisposable
{
    private readonly PicoCmdletBase _cmdlet;
    private readonly SecureString[]? _given;
    private readonly string _passwordParameter;
    private readonly List<SharePasswords> _passwords = new();
    private readonly ProgressRecord _progress;

    public CmdletOperationHost(PicoCmdletBase cmdlet, CancellationToken cancellation, SecureString[]? sharePassword = null,
        string passwordParameter = "-SharePassword")
    {
        _cmdlet = cmdlet;
        Cancellation = cancellation;
        _given = sharePassword;
        _passwordParameter = passwordParameter;
        _progress = new ProgressRecord(1, cmdlet.MyInvocation.MyCommand.Name, "Working");
    }

    public CancellationToken Cancellation { get; }

    public bool ShouldProcess(string target, string action) => _cmdlet.ShouldProcess(target, action);

    public IReadOnlyList<char[]> GetPasswords(IReadOnlyList<string> names, bool confirm)
    {
        var p = SharePasswords.Get(_cmdlet, _given, names, confirm, _passwordParameter);
        _passwords.Add(p);
        return p.Values;
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

    public void Dispose()
    {
        foreach (var p in _passwords) p.Dispose();
        _passwords.Clear();
    }
}
