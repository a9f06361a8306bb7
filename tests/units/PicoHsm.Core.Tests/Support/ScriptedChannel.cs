using Xunit.Sdk;
using PicoHsm.PcSc;

namespace PicoHsm.Core.Tests.Support;

/// <summary>A fake card: each Transmit is checked against the next scripted command (hex, or a predicate) and answered.</summary>
public sealed class ScriptedChannel : ICardChannel
{
    private readonly Queue<(Func<byte[], bool> Match, string Expected, byte[] Response)> _script = new();

    public List<byte[]> Sent { get; } = new();

    public int TransactionDepth { get; private set; }

    public int TransactionsBegun { get; private set; }

    public string ReaderName => "Scripted";

    public byte[] Atr => [0x3B, 0x00];

    /// <summary>Expects exactly <paramref name="commandHex"/> and answers <paramref name="responseHex"/>.</summary>
    public ScriptedChannel Expect(string commandHex, string responseHex)
    {
        byte[] cmd = Convert.FromHexString(commandHex.Replace(" ", ""));
        _script.Enqueue((c => c.AsSpan().SequenceEqual(cmd), commandHex, Convert.FromHexString(responseHex.Replace(" ", ""))));
        return this;
    }

    public ScriptedChannel Expect(Func<byte[], bool> match, string what, byte[] response)
    {
        _script.Enqueue((match, what, response));
        return this;
    }

    public byte[] Transmit(ReadOnlySpan<byte> apdu)
    {
        byte[] cmd = apdu.ToArray();
        Sent.Add(cmd);
        if (_script.Count == 0) throw new XunitException($"unexpected command {Convert.ToHexString(cmd)}");
        var step = _script.Dequeue();
        if (!step.Match(cmd))
            throw new XunitException($"expected {step.Expected}, sent {Convert.ToHexString(cmd)}");
        return (byte[])step.Response.Clone();
    }

    public void AssertDone()
    {
        if (_script.Count > 0) throw new XunitException($"{_script.Count} scripted command(s) not sent, next: {_script.Peek().Expected}");
    }

    public IDisposable BeginTransaction()
    {
        TransactionDepth++;
        TransactionsBegun++;
        return new End(this);
    }

    public void Reconnect(bool reset)
    {
    }

    public void Dispose()
    {
    }

    private sealed class End(ScriptedChannel owner) : IDisposable
    {
        public void Dispose() => owner.TransactionDepth--;
    }
}
