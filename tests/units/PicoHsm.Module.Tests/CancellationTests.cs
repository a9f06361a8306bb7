using System.Diagnostics;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using PicoHsm.Module.Commands;

namespace PicoHsm.Module.Tests;

/// <summary>
/// Ctrl+C (PowerShell.Stop, i.e. StopProcessing) reaches the share KDF: sc-hsm-tool's
/// 10,000,000-round MD5 chain takes seconds, and a stop must end the cmdlet within a second.
/// </summary>
public sealed class CancellationTests
{
    private static string Vector(string name)
    {
        // The repository root is the first folder above the test binaries holding tests/vectors/MANIFEST.md.
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "vectors");
            if (File.Exists(Path.Combine(candidate, "MANIFEST.md"))) return Path.Combine(candidate, name);
        }
        throw new DirectoryNotFoundException("tests/vectors/MANIFEST.md was not found above " + AppContext.BaseDirectory);
    }

    private static Runspace NewRunspace()
    {
        var iss = InitialSessionState.CreateDefault2();
        iss.ImportPSModule(typeof(ConnectPicoHsmCommand).Assembly.Location);
        var rs = RunspaceFactory.CreateRunspace(iss);
        rs.Open();
        return rs;
    }

    /// <summary>
    /// Starts the pipeline, stops it 300 ms after the cmdlet reported its first progress (it does so
    /// just before the KDF starts), and returns how long the stop took to end it. The streams are
    /// not enumerated while the pipeline runs: a PSDataCollection's enumerator blocks until it closes.
    /// </summary>
    private static TimeSpan StopAfter300Ms(PowerShell ps)
    {
        var started = new ManualResetEventSlim();
        ps.Streams.Progress.DataAdded += (_, _) => started.Set();
        var async = ps.BeginInvoke();
        bool reported = started.Wait(TimeSpan.FromSeconds(60));
        Assert.True(reported, "the cmdlet never reported progress");
        Thread.Sleep(300);
        Assert.False(async.IsCompleted, "the cmdlet finished before the stop, so the stop was not tested");
        var sw = Stopwatch.StartNew();
        ps.Stop();
        try { ps.EndInvoke(async); }
        catch (PipelineStoppedException) { }
        sw.Stop();
        Assert.True(ps.InvocationStateInfo.State == PSInvocationState.Stopped,
            $"state {ps.InvocationStateInfo.State}: {ps.InvocationStateInfo.Reason}; errors: {string.Join("; ", ps.Streams.Error)}");
        return sw.Elapsed;
    }

    [Fact]
    public void StoppingTestPicoKeyBackupMidKdf_ReturnsWithinASecond()
    {
        using var rs = NewRunspace();
        string dir = Path.Combine(Path.GetTempPath(), "picohsm-stop-" + Guid.NewGuid().ToString("n")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            string share = Path.Combine(dir, "dkek-share-1.pbe");
            File.Copy(Vector("dkek-share-1.pbe"), share);
            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            ps.AddCommand("Test-PicoKeyBackup")
                .AddParameter("Path", Vector("aes256.wky"))
                .AddParameter("SharePath", share)
                .AddParameter("SharePassword", new[] { Secure("share-one-pass") });
            var took = StopAfter300Ms(ps);
            Assert.True(took < TimeSpan.FromSeconds(1), $"Test-PicoKeyBackup ended {took.TotalMilliseconds:N0} ms after the stop");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void StoppingNewPicoDkekMidKdf_ReturnsWithinASecondAndWritesNoFile()
    {
        using var rs = NewRunspace();
        string dir = Path.Combine(Path.GetTempPath(), "picohsm-stop-" + Guid.NewGuid().ToString("n")[..8]);
        try
        {
            using var ps = PowerShell.Create();
            ps.Runspace = rs;
            ps.AddCommand("New-PicoDkek")
                .AddParameter("ShareCount", 2)
                .AddParameter("Format", DkekShareFormat.ScHsmTool)
                .AddParameter("OutputDirectory", dir)
                .AddParameter("NoImport")
                .AddParameter("Confirm", false)
                .AddParameter("SharePassword", new[] { Secure("first custodian's long passphrase 1"), Secure("second custodian's long passphrase 2") });
            var took = StopAfter300Ms(ps);
            Assert.True(took < TimeSpan.FromSeconds(1), $"New-PicoDkek ended {took.TotalMilliseconds:N0} ms after the stop");
            // No share file and no temporary file: the files are written only after every KDF ran.
            var left = Directory.Exists(dir) ? Directory.GetFileSystemEntries(dir) : Array.Empty<string>();
            Assert.True(left.Length == 0, "left behind: " + string.Join(", ", left));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    private static System.Security.SecureString Secure(string s)
    {
        var ss = new System.Security.SecureString();
        foreach (char c in s) ss.AppendChar(c);
        ss.MakeReadOnly();
        return ss;
    }
}
