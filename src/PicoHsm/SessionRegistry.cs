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

    // IsDefault on a session (Get-PicoHsmSession's column) asks the registry of the runspace that reads it.
    static SessionRegistry() => PicoHsmSession.DefaultProbe = s => Current.Default is { IsOpen: true } d && ReferenceEquals(d, s);

    public static SessionRegistry Current =>
        Runspace.DefaultRunspace is { } rs ? ByRunspace.GetValue(rs, _ => new SessionRegistry()) : NoRunspace;

    public PicoHsmSession? Default { get; private set; }

    /// <summary>
    /// Every session not disconnected, open or not: one whose card was wiped, removed or restarted
    /// stays listed (IsOpen False) until Disconnect-PicoHsm, so a script sees that it went stale.
    /// </summary>
    public IReadOnlyList<PicoHsmSession> Sessions
    {
        get { lock (_sessions) return _sessions.ToList(); }
    }

    /// <summary>
    /// Every session, each asked once whether its device is still there (<see cref="PicoHsmSession.CheckConnection"/>:
    /// one SCardStatus per card session, nothing sent to a device, no login): a card removed or restarted outside the
    /// module shows IsOpen False. A stale default stays the default, so using it says it is closed and what to do.
    /// </summary>
    public IReadOnlyList<PicoHsmSession> CheckSessions()
    {
        var all = Sessions;
        foreach (var s in all)
            if (s.IsOpen) s.CheckConnection();
        return all;
    }

    public void Add(PicoHsmSession session)
    {
        lock (_sessions)
        {
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

    /// <summary>
    /// The card in <paramref name="reader"/> was initialised (wiped) or otherwise changed behind the
    /// PKCS#11 module's back: every session of this runspace on that card is closed (it shows
    /// IsOpen False; using it is a SessionClosed error saying to connect again), and every loaded
    /// PKCS#11 module is refreshed once no session uses it, so Connect-PicoHsm sees the card as it is now.
    /// </summary>
    /// <param name="keep">A session to leave open (the one that did the change and still reads from it), or null.</param>
    public void CardChanged(string reader, PicoHsmSession? keep = null)
    {
        List<PicoHsmSession> stale;
        lock (_sessions)
        {
            stale = _sessions.Where(s => !ReferenceEquals(s, keep) && s.IsOpen && OnReader(s, reader)).ToList();
            if (Default is { } d && stale.Contains(d)) Default = null;
        }
        foreach (var s in stale) s.Dispose();
        SessionConnector.RefreshModules();
    }

    private static bool OnReader(PicoHsmSession s, string reader) =>
        s.ReaderName == reader || (s.ReaderName.Length > 0 && (reader.StartsWith(s.ReaderName, StringComparison.Ordinal) || s.ReaderName.StartsWith(reader, StringComparison.Ordinal)));

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
