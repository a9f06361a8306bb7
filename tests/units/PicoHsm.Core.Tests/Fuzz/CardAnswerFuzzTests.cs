using System.Security.Cryptography;
using System.Text;
using Xunit.Abstractions;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.ScHsm.Backend;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Backend;
using PicoHsm.PcSc;
using Sim = PicoHsm.CardSimulator;

namespace PicoHsm.Core.Tests.Fuzz;

/// <summary>
/// The card's answers are input too: a card, a reader driver or a relay can lie. A channel onto the
/// simulator that corrupts some answers (bit flips, truncation, other status words, extra bytes)
/// under the card backend's connect, catalogue and DKEK reads: each run ends in a result or a typed
/// error. And backup files that were tampered with never reach the card: the restore pre-flight and
/// the restore test refuse them before any command that changes the card.
/// </summary>
public sealed class CardAnswerFuzzTests(ITestOutputHelper output)
{
    private static int Count => int.TryParse(Environment.GetEnvironmentVariable("PICOHSM_FUZZ_COUNT"), out int n) && n > 0 ? n : 10_000;

    private sealed class LyingChannel(SimulatorChannel inner, Mutator m, int oneIn) : ICardChannel
    {
        public string ReaderName => inner.ReaderName;
        public byte[] Atr => inner.Atr;
        public int Lies { get; private set; }

        public byte[] Transmit(ReadOnlySpan<byte> apdu)
        {
            byte[] answer = inner.Transmit(apdu);
            if (m.Next(oneIn) != 0) return answer;
            Lies++;
            return m.Next(4) switch
            {
                0 => answer.Length > 2 ? answer[..m.Next(answer.Length)] : answer[..m.Next(2)],
                1 => [.. answer[..^2], (byte)m.Next(256), (byte)m.Next(256)],
                _ => m.Mutate(answer),
            };
        }

        public IDisposable BeginTransaction() => inner.BeginTransaction();
        public void Reconnect(bool reset) => inner.Reconnect(reset);
        public void Dispose() { }
    }

    [Fact]
    public void BackendReads_ThroughALyingChannel_EndInAResultOrATypedError()
    {
        using var h = CardHarness.WithVectorDkek();
        foreach (var wky in VectorFiles.Wrapped.Take(3)) h.Backend.Restore(VectorFiles.Backup(wky), new RestoreRequest());
        int seed = RandomNumberGenerator.GetInt32(int.MaxValue);
        var m = new Mutator(seed);
        // Runs until the card has told Count lies (each lie is one input to the answer parsers), at most
        // Count runs: a lie early in a run ends it before the later parsers are reached.
        int n = 0, ok = 0, refused = 0, lies = 0;
        using var pin = SecretBytes.CopyOf(Encoding.ASCII.GetBytes(CardHarness.Pin));
        for (int i = 0; lies < Count && i < Count; i++, n++)
        {
            var lying = new LyingChannel(h.Channel, m, oneIn: 2 + m.Next(20));
            int changesBefore = h.Channel.Changes();
            try
            {
                var token = ScHsmCardBackend.ReadToken(lying);
                using var backend = new ScHsmCardBackend(new DeviceContext(token), lying, pin);
                _ = backend.GetDkek();
                _ = backend.ListKeys();
                ok++;
            }
            catch (Exception e) when (ParserFuzzTests.IsTyped(e))
            {
                refused++;
            }
            catch (Exception e)
            {
                Assert.Fail($"run {i} (mutator seed {seed}) escaped as {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
            lies += lying.Lies;
            Assert.Equal(changesBefore, h.Channel.Changes()); // reading never changes the card, whatever it answered
            h.Simulator.Reset(); // a lie may leave the applet mid-command: start each run from a fresh reset
        }
        ParserFuzzTests.Report(output, $"card answers (connect, DKEK, catalogue): {n} runs with {lies} lying answers, {ok} completed, {refused} refused with a typed error, 0 escaped");
    }

    [Fact]
    public void TamperedWrappedKeyFiles_NeverReachTheCard()
    {
        using var h = CardHarness.WithVectorDkek();
        int seed = RandomNumberGenerator.GetInt32(int.MaxValue);
        var m = new Mutator(seed);
        var seeds = VectorFiles.Wrapped.Select(VectorFiles.Read).ToList();
        var dir = Directory.CreateTempSubdirectory("picohsm-fuzz-").FullName;
        int n = Count, refused = 0, unchanged = 0;
        try
        {
            for (int i = 0; i < n; i++)
            {
                byte[] input = m.Mutate(seeds[i % seeds.Count]);
                if (seeds.Any(s => s.AsSpan().SequenceEqual(input))) continue;
                string path = Path.Combine(dir, "x.wky");
                File.WriteAllBytes(path, input);
                int before = h.Channel.Changes();
                try
                {
                    var backup = BackupFiles.Read(path);
                    _ = h.Backend.Test(backup, restoreTest: false);
                    unchanged++;
                }
                catch (Exception e) when (ParserFuzzTests.IsTyped(e))
                {
                    refused++;
                }
                catch (Exception e)
                {
                    Assert.Fail($"input {i} (mutator seed {seed}) escaped as {e.GetType().Name}: {e.Message}\ninput: {Convert.ToHexString(input)}\n{e.StackTrace}");
                }
                Assert.Equal(before, h.Channel.Changes());
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        ParserFuzzTests.Report(output, $"tampered .wky files against the card: {n} inputs, {refused} refused, {unchanged} checked without a change, none reached the card");
    }
}
