using System.Text;

namespace PicoHsm.CardSimulator;

public static class Program
{
    const string Usage = @"CardSimulator: a SmartCard-HSM / Pico HSM v6.0 card for tests.

  --vpcd [host:port]       play the card for vpcd in pcscd (default 127.0.0.1:35963); prints
                           ""connected host:port"" when the socket is up; runs until killed
  --blank                  start as a blank device (default)
  --initialized            start initialised (as after sc-hsm-tool --initialize)
  --pin PIN                user PIN for --initialized (default 648219)
  --so-pin HEX16           SO-PIN for --initialized (default 3537363231383830)
  --retries N              user PIN retry counter for --initialized (default 3)
  --dkek-shares N|none     DKEK shares for --initialized (default 2)
  --dkek-share HEX64       a share already imported at start (repeatable, with --initialized)
  --state FILE             keep the card in FILE (loaded if it exists, saved after every change)
  --verbose                log every APDU to stderr
  --fault afterINS[xK]:N[:error[:SW]|:remove]   inject one fault into the N-th command after the K-th (default 1st)
                           successful INS (e.g. after74:2:remove; after72x3:1:remove: the card leaves after the 3rd WRAP)
  --replay TRACE...        replay recorded traces against a fresh card; exit 1 on a mismatch
  --selftest [VECTORS]     check the blob codec and the card against the interop vectors";

    public static async Task<int> Main(string[] args)
    {
        var o = new ScHsmOptions();
        string? vpcd = null;
        bool verbose = false;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException("missing value after " + a);
            bool HasValue() => i + 1 < args.Length && !args[i + 1].StartsWith("--");
            try
            {
                switch (a)
                {
                    case "--vpcd": vpcd = HasValue() ? Next() : "127.0.0.1:35963"; break;
                    case "--blank": o.Initialized = false; break;
                    case "--initialized": o.Initialized = true; break;
                    case "--pin": o.UserPin = Next(); break;
                    case "--so-pin": o.SoPin = Hex.Parse(Next()); if (o.SoPin.Length != 8) throw new ArgumentException("SO-PIN: 16 hex digits"); break;
                    case "--retries": o.PinRetries = int.Parse(Next()); break;
                    case "--dkek-shares": { var v = Next(); o.DkekShares = v == "none" ? null : int.Parse(v); break; }
                    case "--dkek-share": o.ImportedShares.Add(Hex.Parse(Next())); break;
                    case "--state": o.StateFile = Path.GetFullPath(Next()); break;
                    case "--verbose": verbose = true; break;
                    case "--fault": o.Fault = SimulatedFault.Parse(Next()); break;
                    case "--replay":
                    {
                        var traces = args.Skip(i + 1).ToList();
                        if (traces.Count == 0) { Console.Error.WriteLine("--replay needs trace files"); return 2; }
                        return TraceReplay.Run(traces, Console.Out, verbose) == 0 ? 0 : 1;
                    }
                    case "--selftest":
                        return SelfTest.Run(HasValue() ? Next() : DefaultVectors(), Console.Out) ? 0 : 1;
                    case "-h": case "--help": Console.WriteLine(Usage); return 0;
                    default: Console.Error.WriteLine("unknown argument " + a + "\n" + Usage); return 2;
                }
            }
            catch (Exception ex) when (ex is ArgumentException or FormatException)
            {
                Console.Error.WriteLine(ex.Message);
                return 2;
            }
        }
        if (verbose) o.Log = s => Console.Error.WriteLine(s);
        if (vpcd == null) { Console.Error.WriteLine(Usage); return 2; }

        string host = "127.0.0.1";
        int port = 35963;
        if (vpcd.Contains(':'))
        {
            host = vpcd[..vpcd.LastIndexOf(':')];
            port = int.Parse(vpcd[(vpcd.LastIndexOf(':') + 1)..]);
        }
        else if (vpcd.Length > 0) host = vpcd;

        ScHsmSimulator sim;
        try { sim = new ScHsmSimulator(o); }
        catch (Exception ex) when (ex is ArgumentException or IOException or System.Text.Json.JsonException or InvalidDataException or FormatException)
        {
            Console.Error.WriteLine("card simulator: " + ex.Message);
            return 2;
        }
        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
        AppDomain.CurrentDomain.ProcessExit += (_, _) => cts.Cancel();
        Console.Out.WriteLine($"card simulator: SmartCard-HSM 6.0 ({(sim.IsInitialized ? "initialized" : "blank")}), vpcd {host}:{port}");
        await new VpcdClient(sim, host, port).RunAsync(cts.Token);
        return 0;
    }

    static string DefaultVectors()
    {
        // The repository's tests/vectors: the first folder above the binary that holds
        // tests/vectors/MANIFEST.md is the repository root. PICOHSM_VECTORS names another copy.
        var env = Environment.GetEnvironmentVariable("PICOHSM_VECTORS");
        if (!string.IsNullOrEmpty(env)) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var cand = Path.Combine(dir.FullName, "tests", "vectors");
            if (File.Exists(Path.Combine(cand, "MANIFEST.md"))) return cand;
        }
        throw new ArgumentException( // reported as a usage error
            $"no tests/vectors/MANIFEST.md above {AppContext.BaseDirectory}; give the vectors folder: --selftest VECTORS");
    }
}
