using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Session;

namespace PicoHsm.Core.Tests.Devices.Pkcs11;

/// <summary>
/// Throwaway SoftHSM2 tokens for the core's PKCS#11 tests, made the way the module tests make
/// theirs (a private SOFTHSM2_CONF, <c>softhsm2-util --init-token --free</c>). SoftHSM2 reads
/// SOFTHSM2_CONF at its first C_Initialize in the process and Pkcs11Modules keeps one library per
/// module path for the process's life, so this is one collection fixture shared by every class
/// that touches SoftHSM2 (<see cref="SoftHsmCollection"/>), created before anything loads it.
/// .NET's Environment.SetEnvironmentVariable does not reach native getenv on Unix, hence setenv.
///
/// OpenSC's pkcs11-spy, where installed, is a second module path in front of the same SoftHSM2: a
/// session through it logs every PKCS#11 call, so tests can count the calls an operation makes.
/// </summary>
public sealed class SoftHsmTokens : IDisposable
{
    public const string Module = "/usr/lib/softhsm/libsofthsm2.so";
    public const string Spy = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so";
    public const string Pin = "648219";

    /// <summary>Each test class gets its own tokens, so tests do not see one another's objects.</summary>
    public static readonly string[] Labels =
        { "core-session", "core-wrong-pin", "core-dkek", "core-keys", "core-other-dkek", "core-count", "core-backup", "core-backup-gone", "core-backup-disk", "core-login", "core-ceremony", "core-restore-gone", "core-secret-create", "core-load-src", "core-load-dst", "core-batch-src", "core-batch-a", "core-batch-b", "core-batch-c", "core-backup-pass", "core-torn", "core-listed-dkek" };

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "picohsm-core-xunit-" + Guid.NewGuid().ToString("n")[..8]);
    public string SpyLog => Path.Combine(Root, "spy.log");

    [DllImport("libc", SetLastError = true)]
    private static extern int setenv(string name, string value, int overwrite);

    public SoftHsmTokens()
    {
        Directory.CreateDirectory(Path.Combine(Root, "tokens"));
        string conf = Path.Combine(Root, "softhsm2.conf");
        File.WriteAllText(conf, $"directories.tokendir = {Path.Combine(Root, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\n");
        SetEnv("SOFTHSM2_CONF", conf);
        SetEnv("PKCS11SPY", Module);
        SetEnv("PKCS11SPY_OUTPUT", SpyLog);
        foreach (string label in Labels)
        {
            var psi = new ProcessStartInfo("softhsm2-util", $"--init-token --free --label {label} --pin {Pin} --so-pin 3537363231383830")
            {
                UseShellExecute = false, // the default of .NET Framework (and Mono) is true
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            psi.Environment["SOFTHSM2_CONF"] = conf;
            using var p = Process.Start(psi)!;
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException("softhsm2-util failed: " + p.StandardError.ReadToEnd());
        }
    }

    private static void SetEnv(string name, string value)
    {
        Environment.SetEnvironmentVariable(name, value);
        if (OperatingSystem.IsLinux()) setenv(name, value, 1);
    }

    public static PicoHsmSession Connect(string label, string pin = Pin, string module = Module) =>
        SessionConnector.Connect(new ConnectOptions
        {
            ModulePath = module,
            TokenLabel = label,
            PinSource = _ => Encoding.UTF8.GetBytes(pin),
        });

    /// <summary>
    /// OpenSC's pkcs11-tool on token <paramref name="label"/>, logged in with <paramref name="pin"/>: another
    /// program on the same token, outside this process. Returns its exit code and what it wrote to stderr.
    /// </summary>
    public static (int ExitCode, string Error) Pkcs11Tool(string label, string args, string pin = Pin)
    {
        var psi = new ProcessStartInfo("pkcs11-tool", $"--module {Module} --token-label {label} --login --pin {pin} {args}")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        string err = p.StandardError.ReadToEnd();
        output.Wait();
        p.WaitForExit();
        return (p.ExitCode, err);
    }

    /// <summary>The token's DKEK (the same 32 bytes for every test that asks for this label's DKEK).</summary>
    public static SecretBytes Dkek(byte seed)
    {
        var b = new byte[32];
        for (int i = 0; i < b.Length; i++) b[i] = (byte)(seed * 31 + i);
        return SecretBytes.CopyOf(b);
    }

    /// <summary>How many calls to <paramref name="function"/> the spy logged while <paramref name="action"/> ran.</summary>
    public int CountCalls(string function, Action action)
    {
        long start = File.Exists(SpyLog) ? new FileInfo(SpyLog).Length : 0;
        action();
        using var f = new FileStream(SpyLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        f.Seek(start, SeekOrigin.Begin);
        string text = new StreamReader(f).ReadToEnd();
        return Regex.Matches(text, @"^\d+: " + Regex.Escape(function) + @"\s*$", RegexOptions.Multiline).Count;
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class SoftHsmCollection : ICollectionFixture<SoftHsmTokens>
{
    public const string Name = "SoftHSM2 tokens";
}

/// <summary>
/// A [Fact] that needs SoftHSM2 (its module and softhsm2-util): skipped, with the reason, where
/// it is not installed. xunit 2 cannot skip from inside a running test, so this is decided at
/// discovery, before the collection fixture runs.
/// </summary>
public sealed class SoftHsmFactAttribute : FactAttribute
{
    public SoftHsmFactAttribute(bool needsSpy = false)
    {
        string? why = SoftHsmConditions.WhyNot(needsSpy);
        if (why is not null) Skip = why;
    }
}

/// <summary>A [Theory] that needs SoftHSM2, as <see cref="SoftHsmFactAttribute"/>.</summary>
public sealed class SoftHsmTheoryAttribute : TheoryAttribute
{
    public SoftHsmTheoryAttribute()
    {
        string? why = SoftHsmConditions.WhyNot(false);
        if (why is not null) Skip = why;
    }
}

internal static class SoftHsmConditions
{
    public static string? WhyNot(bool needsSpy)
    {
        if (!OperatingSystem.IsLinux()) return "SoftHSM2 tests run on Linux (the fixture sets SOFTHSM2_CONF with libc's setenv).";
        if (!File.Exists(SoftHsmTokens.Module)) return $"SoftHSM2 is not installed ({SoftHsmTokens.Module} missing): apt-get install softhsm2.";
        bool util = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, "softhsm2-util")));
        if (!util) return "softhsm2-util is not on PATH: apt-get install softhsm2.";
        if (needsSpy && !File.Exists(SoftHsmTokens.Spy)) return $"OpenSC's pkcs11-spy ({SoftHsmTokens.Spy}) is not installed, so PKCS#11 calls cannot be counted: apt-get install opensc.";
        return null;
    }
}
