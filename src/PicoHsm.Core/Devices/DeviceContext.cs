namespace PicoHsm.Devices;

/// <summary>
/// The facts about one connection that a backend needs and that outlive any single call: which
/// session it serves (its id, for messages), the token, the one lock that serialises work on the
/// connection (a PKCS#11 session handle or a card channel is not safe for concurrent use), and
/// whether the user is logged in. The session above and the backend below both hold it, so
/// neither has to know the other's type.
/// </summary>
public sealed class DeviceContext
{
    private static int _nextId;

    public DeviceContext(PicoHsmToken token)
    {
        Token = token ?? throw new ArgumentNullException(nameof(token));
        SessionId = Interlocked.Increment(ref _nextId);
    }

    public int SessionId { get; }
    public PicoHsmToken Token { get; }
    public string? TokenLabel => Token.Label;
    public string? SerialNumber => Token.SerialNumber;

    /// <summary>Taken around every device operation of this connection.</summary>
    public object Gate { get; } = new();

    public bool IsLoggedIn { get; private set; }

    public void SetLoggedIn(bool value) => IsLoggedIn = value;

    public override string ToString() => $"Session {SessionId}: {TokenLabel} ({SerialNumber})";
}
