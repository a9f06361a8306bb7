using System.Management.Automation.Runspaces;
using System.Runtime.CompilerServices;
using PicoHsm.Session;

namespace PicoHsm.Module;

/// <summary>
/// The sessions of one runspace and which is the default. Per runspace, so two runspaces in
/// one process (jobs, a hosting application) do not share or steal each other's login.
/// </summary>
internal sealed class SessionRegistry
{
    private static readonly ConditionalWeakTable<Runspace, SessionRegistry> ByRunspace = new();
    private static readonly SessionRegistry NoRunspace = new();
    private readonly List<PicoHsmSession> _sessions = new();

    public static SessionRegistry Current =>
        Runspace.DefaultRunspace is { } rs ? ByRunspace.GetValue(rs, _ => new SessionRegistry()) : NoRunspace;

    public PicoHsmSession? Default { get; private set; }

    public IReadOnlyList<PicoHsmSession> Sessions
    {
        get { lock (_sessions) return _sessions.Where(s => s.IsOpen).ToList(); }
    }

    public void Add(PicoHsmSession session)
    {
        lock (_sessions)
        {
            _sessions.RemoveAll(s => !s.IsOpen);
            _sessions.Add(session);
            Default = session;
        }
    }

    public void Remove(PicoHsmSession session)
    {
        lock (_sessions)
        {
            _sessions.Remove(session);
            if (ReferenceEquals(Default, session))
                Default = _sessions.LastOrDefault(s => s.IsOpen);
        }
    }

    /// <summary>"The default session is now 2 ('ca-hsm', serial ...)." or that there is none.</summary>
    public string DescribeDefault(string when) => Default is { IsOpen: true } d
        ? $"The default session is {when} {d.Id} ('{d.TokenLabel}', serial {d.SerialNumber}); pass -Session to use another."
        : $"There is {when} no default session: run Connect-PicoHsm, or pass -Session.";

    public void CloseAll()
    {
        List<PicoHsmSession> all;
        lock (_sessions)
        {
            all = _sessions.ToList();
            _sessions.Clear();
            Default = null;
        }
        foreach (var s in all) s.Dispose();
    }
}
