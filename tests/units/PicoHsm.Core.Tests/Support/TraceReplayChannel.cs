using Xunit.Sdk;
using PicoHsm.PcSc;

namespace PicoHsm.Core.Tests.Support;

/// <summary>
/// An <see cref="ICardChannel"/> that replays one APDU transcript from tests/traces:
/// every Transmit must send exactly the next recorded command, and gets the recorded answer back.
///
/// Skipping rule (the only implicit one): a recorded SELECT-by-AID (00 A4 04 ..) of an AID other than the
/// SmartCard-HSM's is a probe by one of OpenSC's other drivers (coolkey, muscle) and is skipped when the
/// command sent does not match it. Anything else OpenSC did that our client does not do must be skipped
/// explicitly by the test with <see cref="SkipUntil"/> / <see cref="SkipCount"/>, so every deviation is
/// visible in the test.
/// </summary>
public sealed class TraceReplayChannel : ICardChannel
{
    private static readonly byte[] ScHsmAid = [0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01];

    public sealed record Exchange(int Index, byte[] Command, byte[] Response, string Comment, int Line);

    private readonly List<Exchange> _exchanges;
    private int _next;

    public TraceReplayChannel(string traceFileName)
    {
        string path = Path.IsPathRooted(traceFileName) ? traceFileName : SharedFiles.Trace(traceFileName);
        Name = Path.GetFileName(path);
        _exchanges = Parse(File.ReadAllLines(path), Name);
        Atr = Convert.FromHexString("3BFE1800008131FE458031815448534D31738021408107FA");
    }

    public string Name { get; }

    public IReadOnlyList<Exchange> Exchanges => _exchanges;

    /// <summary>Index of the next recorded exchange.</summary>
    public int Position => _next;

    public int Remaining => _exchanges.Count - _next;

    /// <summary>The commands actually sent, in order.</summary>
    public List<byte[]> Sent { get; } = new();

    public int TransactionsBegun { get; private set; }

    public string ReaderName => "Virtual PCD 00 00";

    public byte[] Atr { get; }

    public static List<Exchange> Parse(string[] lines, string name)
    {
        var list = new List<Exchange>();
        var comment = new List<string>();
        byte[]? pending = null;
        int pendingLine = 0;
        string pendingComment = "";
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.StartsWith('#'))
            {
                comment.Add(line.TrimStart('#', ' '));
                continue;
            }
            if (line.StartsWith("> "))
            {
                if (pending is not null) throw new FormatException($"{name}:{i + 1}: command without response before it");
                pending = Hex(line[2..]);
                pendingLine = i + 1;
                pendingComment = comment.Count > 0 ? comment[^1] : "";
                comment.Clear();
            }
            else if (line.StartsWith("< "))
            {
                if (pending is null) throw new FormatException($"{name}:{i + 1}: response without command");
                list.Add(new Exchange(list.Count, pending, Hex(line[2..]), pendingComment, pendingLine));
                pending = null;
            }
        }
        if (pending is not null) throw new FormatException($"{name}: last command has no response");
        return list;
    }

    public static byte[] Hex(string s) => Convert.FromHexString(s.Replace(" ", ""));

    private static string ToHex(ReadOnlySpan<byte> b) => Convert.ToHexString(b);

    /// <summary>OpenSC's other drivers probe with SELECT of their own AIDs; those are not ours.</summary>
    public static bool IsForeignDriverProbe(byte[] command)
        => command.Length >= 5 && command[0] == 0x00 && command[1] == 0xA4 && command[2] == 0x04
           && command[4] <= command.Length - 5
           && !command.AsSpan(5, command[4]).SequenceEqual(ScHsmAid);

    public byte[] Transmit(ReadOnlySpan<byte> apdu)
    {
        byte[] cmd = apdu.ToArray();
        Sent.Add(cmd);
        while (_next < _exchanges.Count && !_exchanges[_next].Command.AsSpan().SequenceEqual(cmd)
               && IsForeignDriverProbe(_exchanges[_next].Command))
            _next++;
        if (_next >= _exchanges.Count)
            throw new XunitException($"{Name}: the trace has ended, but the client sent {ToHex(cmd)}");
        Exchange e = _exchanges[_next];
        if (!e.Command.AsSpan().SequenceEqual(cmd))
            throw new XunitException(
                $"{Name}: exchange #{e.Index} (line {e.Line}, \"{e.Comment}\") differs.\n" +
                $"  recorded: {ToHex(e.Command)}\n  sent:     {ToHex(cmd)}");
        _next++;
        return (byte[])e.Response.Clone();
    }

    /// <summary>Skips recorded exchanges until (not including) the first whose command matches.</summary>
    public TraceReplayChannel SkipUntil(Func<byte[], bool> commandMatches, string why)
    {
        int i = _next;
        while (i < _exchanges.Count && !commandMatches(_exchanges[i].Command)) i++;
        if (i >= _exchanges.Count) throw new XunitException($"{Name}: no recorded command for '{why}' after #{_next}");
        _next = i;
        return this;
    }

    public TraceReplayChannel SkipUntil(string commandHexPrefix, string why)
    {
        byte[] prefix = Hex(commandHexPrefix);
        return SkipUntil(c => c.AsSpan().StartsWith(prefix), why);
    }

    public TraceReplayChannel SkipCount(int count)
    {
        _next = Math.Min(_exchanges.Count, _next + count);
        return this;
    }

    /// <summary>The recorded exchange that the next Transmit will be compared with.</summary>
    public Exchange? Peek() => _next < _exchanges.Count ? _exchanges[_next] : null;

    public void AssertAllConsumed()
    {
        if (_next < _exchanges.Count)
        {
            Exchange e = _exchanges[_next];
            throw new XunitException($"{Name}: {Remaining} recorded exchange(s) not replayed, next #{e.Index} (line {e.Line}): {ToHex(e.Command)}");
        }
    }

    public IDisposable BeginTransaction()
    {
        TransactionsBegun++;
        return new Noop();
    }

    public void Reconnect(bool reset) => throw new XunitException($"{Name}: Reconnect is not part of any recorded trace");

    public void Dispose()
    {
    }

    private sealed class Noop : IDisposable
    {
        public void Dispose()
        {
        }
    }
}
