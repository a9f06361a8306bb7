using System.Diagnostics;
using System.Runtime.InteropServices;

namespace PicoHsm.Module.Tests;

/// <summary>
/// Throwaway SoftHSM2 tokens for in-process runspace tests. SoftHSM2 reads SOFTHSM2_CONF at its
/// first C_Initialize in the process, and .NET's Environment.SetEnvironmentVariable does not reach
/// native getenv on Unix, so the variable is set with libc's setenv before anything loads it.
/// </summary>
public sealed class SoftHsmFixture : IDisposable
{
    public const string Module = "/usr/lib/softhsm/libsofthsm2.so";
    public const string Pin = "648219";
    public string Root { get; } = Path.Combine(Path.GetTempPath(), "picohsm-xunit-" + Guid.NewGuid().ToString("n")[..8]);

    [DllImport("libc", SetLastError = true)]
    private static extern int setenv(string name, string value, int overwrite);

    public SoftHsmFixture()
    {
        Directory.CreateDirectory(Path.Combine(Root, "tokens"));
        string conf = Path.Combine(Root, "softhsm2.conf");
        File.WriteAllText(conf, $"directories.tokendir = {Path.Combine(Root, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\n");
        Environment.SetEnvironmentVariable("SOFTHSM2_CONF", conf);
        if (OperatingSystem.IsLinux()) setenv("SOFTHSM2_CONF", conf, 1);
        foreach (string label in new[] { "xunit-a", "xunit-b" })
        {
            var psi = new ProcessStartInfo("softhsm2-util", $"--init-token --free --label {label} --pin {Pin} --so-pin 3537363231383830")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            psi.Environment["SOFTHSM2_CONF"] = conf;
            using var p = Process.Start(psi)!;
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException("softhsm2-util failed: " + p.StandardError.ReadToEnd());
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}
