using System.Buffers.Binary;
using System.Net.Sockets;

namespace PicoHsm.Core.Tests.Support;

/// <summary>
/// A minimal card on vsmartcard's vpcd reader (inside pcscd): connects to 127.0.0.1:port as the card side,
/// answers control messages (0 off, 1 on, 2 reset, 4 ATR) and hands APDUs to <see cref="Respond"/>.
/// Framing: 2-byte big-endian length, then the bytes.
/// </summary>
public sealed class VpcdTestCard : IDisposable
{
    private readonly TcpClient _client = new();
    private readonly CancellationTokenSource _cts = new();
    private Task? _loop;

    public VpcdTestCard(byte[] atr, Func<byte[], byte[]> respond)
    {
        Atr = atr;
        Respond = respond;
    }

    public byte[] Atr { get; }

    public Func<byte[], byte[]> Respond { get; }

    public int Resets;
    public int PowerOns;
    public List<byte[]> Received { get; } = new();

    /// <summary>Connects to vpcd; false when nothing listens on the port.</summary>
    public bool TryConnect(int port, out string? error)
    {
        try
        {
            _client.Connect("127.0.0.1", port);
            _client.NoDelay = true;
            _loop = Task.Run(() => Serve(_client.GetStream(), _cts.Token));
            error = null;
            return true;
        }
        catch (SocketException ex)
        {
            error = ex.Message;
            return false;
        }
    }

    private void Serve(NetworkStream s, CancellationToken ct)
    {
        byte[] hdr = new byte[2];
        try
        {
            while (!ct.IsCancellationRequested)
            {
                s.ReadExactly(hdr);
                int len = BinaryPrimitives.ReadUInt16BigEndian(hdr);
                byte[] msg = new byte[len];
                s.ReadExactly(msg);
                if (len == 1)
                {
                    switch (msg[0])
                    {
                        case 0: break; // power off
                        case 1: Interlocked.Increment(ref PowerOns); break;
                        case 2: Interlocked.Increment(ref Resets); break;
                        case 4: Send(s, Atr); break;
                    }
                    continue;
                }
                lock (Received) Received.Add(msg);
                Send(s, Respond(msg));
            }
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
        }
        catch (IOException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private static void Send(NetworkStream s, byte[] data)
    {
        byte[] frame = new byte[2 + data.Length];
        BinaryPrimitives.WriteUInt16BigEndian(frame, (ushort)data.Length);
        data.CopyTo(frame, 2);
        s.Write(frame);
    }

    public void Dispose()
    {
        _cts.Cancel();
        _client.Dispose();
        try
        {
            _loop?.Wait(TimeSpan.FromSeconds(2));
        }
        catch (AggregateException)
        {
        }
    }
}
