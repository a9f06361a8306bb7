using System.Net.Sockets;

namespace PicoHsm.CardSimulator;

/// <summary>
/// Plays a card for vsmartcard's vpcd reader driver inside pcscd: a TCP client of vpcd (default
/// 127.0.0.1:35963 = reader "Virtual PCD 00 00"). Framing: 2-byte big-endian length + bytes; a 1-byte
/// message is a control code (0 power off, 1 power on, 2 reset, 4 get ATR), anything longer a command APDU.
/// Retries until pcscd listens and reconnects when the socket closes.
/// </summary>
public sealed class VpcdClient
{
    readonly ScHsmSimulator card;
    readonly string host;
    readonly int port;
    readonly Action<string> status;

    public VpcdClient(ScHsmSimulator card, string host = "127.0.0.1", int port = 35963, Action<string>? status = null)
    {
        this.card = card; this.host = host; this.port = port;
        this.status = status ?? (s => { Console.Out.WriteLine(s); Console.Out.Flush(); });
    }

    /// <summary>Runs until cancelled. Prints "connected host:port" each time the vpcd socket connects.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        bool waitingReported = false;
        while (!ct.IsCancellationRequested)
        {
            using var client = new TcpClient { NoDelay = true };
            try
            {
                await client.ConnectAsync(host, port, ct);
            }
            catch (SocketException)
            {
                if (!waitingReported) { status($"waiting for vpcd on {host}:{port}"); waitingReported = true; }
                try { await Task.Delay(500, ct); } catch (OperationCanceledException) { return; }
                continue;
            }
            catch (OperationCanceledException) { return; }
            waitingReported = false;
            status($"connected {host}:{port}");
            try
            {
                await ServeAsync(client.Client, client.GetStream(), ct);
                status("vpcd closed the connection; reconnecting");
            }
            catch (OperationCanceledException) { return; }
            catch (Exception ex) when (ex is IOException or SocketException)
            {
                status("vpcd connection lost (" + ex.Message + "); reconnecting");
            }
            catch (CardRemovedException)
            {
                status("card removed (injected fault); reinserting");
                client.Close();
                try { await Task.Delay(500, ct); } catch (OperationCanceledException) { return; }
                card.Reinsert();
            }
            card.Reset(); // the card leaves the reader: power is gone
            try { await Task.Delay(200, ct); } catch (OperationCanceledException) { return; }
        }
    }

    async Task ServeAsync(Socket socket, NetworkStream s, CancellationToken ct)
    {
        var hdr = new byte[2];
        while (true)
        {
            QuickAck(socket);
            if (!await ReadExactly(s, hdr, ct)) return;
            QuickAck(socket);
            int len = (hdr[0] << 8) | hdr[1];
            var msg = new byte[len];
            if (len > 0 && !await ReadExactly(s, msg, ct)) return;
            byte[]? answer = null;
            if (len == 1)
            {
                switch (msg[0])
                {
                    case 0: card.Reset(); break;          // power off
                    case 1: card.Reset(); break;          // power on
                    case 2: card.Reset(); break;          // reset
                    case 4: answer = card.Atr; break;     // get ATR
                }
            }
            else if (len > 1)
            {
                answer = card.Process(msg);
            }
            if (answer != null)
            {
                var frame = new byte[2 + answer.Length];
                frame[0] = (byte)(answer.Length >> 8);
                frame[1] = (byte)answer.Length;
                Buffer.BlockCopy(answer, 0, frame, 2, answer.Length);
                await s.WriteAsync(frame, ct);
                await s.FlushAsync(ct);
            }
        }
    }

    // vpcd sends each command as two writes (its 2-byte length, then the APDU) with Nagle on: the
    // APDU waits for the ACK of the length, which Linux delays up to 40 ms while this side has
    // nothing to send. Every APDU cost ~45 ms here, against a real card's few. TCP_QUICKACK (Linux;
    // the kernel clears it again, so before every read) acknowledges at once.
    const int IpProtoTcp = 6, TcpQuickAck = 12;
    static readonly byte[] One = BitConverter.GetBytes(1);

    static void QuickAck(Socket socket)
    {
#if NET
        if (!OperatingSystem.IsLinux()) return;
        try { socket.SetRawSocketOption(IpProtoTcp, TcpQuickAck, One); }
        catch (SocketException) { } // an older kernel: only slower
#endif
        // (the net472 test build compiles the simulator in but never plays it through vpcd)
    }

    static async Task<bool> ReadExactly(NetworkStream s, byte[] buf, CancellationToken ct)
    {
        int off = 0;
        while (off < buf.Length)
        {
            int n = await s.ReadAsync(buf.AsMemory(off), ct);
            if (n == 0) return false;
            off += n;
        }
        return true;
    }
}
