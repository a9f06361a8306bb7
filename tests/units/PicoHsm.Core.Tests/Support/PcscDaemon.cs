using System.Diagnostics;
using PicoHsm.PcSc;

namespace PicoHsm.Core.Tests.Support;

/// <summary>
/// pcscd for the live PC/SC tests, whichever of them runs first. When none is listening (and
/// /usr/sbin/pcscd exists), it starts one in the foreground as a child of the test process and stops
/// it when the collection ends, so the tests neither depend on their order nor leave a daemon behind.
/// A pcscd that was already running is used and left alone.
/// </summary>
public sealed class PcscDaemon : IDisposable
{
    private readonly Process? _started;

    public PcscDaemon()
    {
        if (IsListening() || !OperatingSystem.IsLinux() || !File.Exists("/usr/sbin/pcscd")) return;
        _started = Process.Start(new ProcessStartInfo("/usr/sbin/pcscd", "--foreground")
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
        });
        _started!.OutputDataReceived += (_, _) => { };
        _started.ErrorDataReceived += (_, _) => { };
        _started.BeginOutputReadLine();
        _started.BeginErrorReadLine();
        var sw = Stopwatch.StartNew();
        while (!IsListening() && !_started.HasExited && sw.Elapsed < TimeSpan.FromSeconds(15))
            Thread.Sleep(200);
    }

    private static bool IsListening()
    {
        try
        {
            using var ctx = PcscContext.Establish();
            return true;
        }
        catch (PcscException ex) when (ex.ErrorCode == PcscError.SCARD_E_NO_SERVICE)
        {
            return false;
        }
        catch (DllNotFoundException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        if (_started is null) return;
        try
        {
            if (!_started.HasExited)
            {
                _started.Kill();
                _started.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { }
        _started.Dispose();
    }
}

/// <summary>The live PC/SC tests: one at a time (vpcd's readers are machine-wide), sharing one pcscd. xUnit makes the
/// fixture for the collection whether or not a test class asks for it.</summary>
[CollectionDefinition("pcsc-live")]
public sealed class PcscLiveCollection : ICollectionFixture<PcscDaemon>
{
}
