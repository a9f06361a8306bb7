using System.Collections.ObjectModel;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using PicoHsm.Module.Commands;
using PicoHsm.Devices;
using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Module.Tests;

/// <summary>Cmdlets hosted in-process: what needs runspaces and pipelines from C#.</summary>
public sealed class RunspaceTests : IClassFixture<SoftHsmFixture>
{
    private readonly SoftHsmFixture _hsm;

    public RunspaceTests(SoftHsmFixture hsm) => _hsm = hsm;

    private static Runspace NewRunspace()
    {
        var iss = InitialSessionState.CreateDefault2();
        iss.ImportPSModule(typeof(ConnectPicoHsmCommand).Assembly.Location);
        var rs = RunspaceFactory.CreateRunspace(iss);
        rs.Open();
        return rs;
    }

    private static Collection<PSObject> Run(Runspace rs, string script, out PowerShell ps)
    {
        ps = PowerShell.Create();
        ps.Runspace = rs;
        ps.AddScript(script);
        return ps.Invoke();
    }

    private string ConnectScript(string token) =>
        $"Connect-PicoHsm -ModulePath '{SoftHsmFixture.Module}' -TokenLabel {token} -Pin (ConvertTo-SecureString '{SoftHsmFixture.Pin}' -AsPlainText -Force)";

    [Fact]
    public void EachRunspaceHasItsOwnDefaultSession()
    {
        using var a = NewRunspace();
        using var b = NewRunspace();
        var sa = Run(a, ConnectScript("xunit-a"), out var psA);
        Assert.False(psA.HadErrors);
        Assert.Equal("xunit-a", sa[0].Properties["TokenLabel"].Value);

        // Runspace B sees no session and gets the NoSession error, not A's login.
        Assert.Empty(Run(b, "Get-PicoHsmSession", out _));
        var err = Run(b, "try { Get-PicoKey -ErrorAction Stop } catch { $_.FullyQualifiedErrorId }", out _);
        Assert.StartsWith("GetPicoKeyNoSession,", err[0].ToString());

        var sb = Run(b, ConnectScript("xunit-b"), out _);
        Assert.Equal("xunit-b", Run(b, "(Get-PicoHsmSession -Default).TokenLabel", out _)[0].ToString());
        Assert.Equal("xunit-a", Run(a, "(Get-PicoHsmSession -Default).TokenLabel", out _)[0].ToString());
        Run(a, "Disconnect-PicoHsm -All", out _);
        Run(b, "Disconnect-PicoHsm -All", out _);
    }

    [Fact]
    public void CtrlCStopsABackupBetweenKeys_LeavesTheFilesStaged_AndARerunFinishesIt()
    {
        using var rs = NewRunspace();
        string dir = Path.Combine(_hsm.Root, "stopped-backup");
        Run(rs, ConnectScript("xunit-b") + @"
            New-PicoDkek -ShareCount 2 -Threshold 2 -OutputDirectory '" + Path.Combine(_hsm.Root, "shares") + @"' -SharePassword (1..2 | % { ConvertTo-SecureString ""stop-test-password-$_"" -AsPlainText -Force }) -Confirm:$false | Out-Null
            1..40 | ForEach-Object { New-PicoKey -KeyType Aes -Size 256 -Id ('{0:x4}' -f $_) -Label ""k$_"" -Confirm:$false | Out-Null }", out var setup);
        Assert.False(setup.HadErrors, string.Join("; ", setup.Streams.Error));

        using var ps = PowerShell.Create();
        ps.Runspace = rs;
        ps.AddCommand("Backup-PicoHsm").AddParameter("Directory", dir);
        var started = new ManualResetEventSlim();
        ps.Streams.Progress.DataAdded += (_, e) =>
        {
            if (ps.Streams.Progress[e.Index].PercentComplete >= 10) started.Set();
        };
        var async = ps.BeginInvoke();
        Assert.True(started.Wait(TimeSpan.FromSeconds(60)), "the backup never reached 10 %");
        ps.Stop();
        Assert.Throws<PipelineStoppedException>(() => ps.EndInvoke(async));

        // Stopped between keys: some files were written whole into the staging folder beside the
        // target, not all 40; the target does not exist, so nothing claims a complete set (issue 8).
        string staging = Path.Combine(_hsm.Root, ".stopped-backup.picohsm-staging");
        Assert.False(Directory.Exists(dir));
        int files = Directory.GetFiles(staging, "*.pkb").Length;
        Assert.InRange(files, 1, 39);
        Assert.DoesNotContain(Directory.GetFiles(staging), f => !f.EndsWith(".pkb"));

        // The same command again, without -Force, finishes it.
        var rerun = Run(rs, "(Backup-PicoHsm -Directory '" + dir + "').KeyCount", out var again);
        Assert.False(again.HadErrors, string.Join("; ", again.Streams.Error));
        Assert.Equal("40", rerun.Single().ToString());
        Assert.True(File.Exists(Path.Combine(dir, "manifest.json")));
        Assert.False(Directory.Exists(staging));
        Run(rs, "Disconnect-PicoHsm -All", out _);
    }
    [Fact]
    public void PipedExport_EachObjectIsWrittenOnlyAfterItsFilesFolderWasSynced()
    {
        // Export-PicoWrappedKey defers the folder fsync to one per batch; an object reaching the next
        // command must describe a file whose rename is already durable (synced after it existed).
        if (OperatingSystem.IsWindows()) return; // no folder fsync on Windows (NTFS journals renames)
        using var rs = NewRunspace();
        string dir = Path.Combine(_hsm.Root, "piped-export");
        Run(rs, ConnectScript("xunit-a") + @"
            New-PicoDkek -ShareCount 2 -Threshold 2 -OutputDirectory '" + Path.Combine(_hsm.Root, "shares-a") + @"' -SharePassword (1..2 | % { ConvertTo-SecureString ""pipe-test-password-$_"" -AsPlainText -Force }) -Confirm:$false | Out-Null
            1..30 | ForEach-Object { New-PicoKey -KeyType Aes -Size 256 -Id ('{0:x4}' -f $_) -Label ""p$_"" -Confirm:$false | Out-Null }", out var setup);
        Assert.False(setup.HadErrors, string.Join("; ", setup.Streams.Error));

        var hook = typeof(PicoHsm.Common.AtomicFile).GetField("DirectorySynced", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;
        ExportProbe.Reset(dir);
        hook.SetValue(null, (Action<string>)ExportProbe.Synced);
        try
        {
            var paths = Run(rs, "Get-PicoKey | Export-PicoWrappedKey -Directory '" + dir + "' | ForEach-Object { [PicoHsm.Module.Tests.ExportProbe]::Emitted($_.Path); $_.Path }", out var export);
            Assert.False(export.HadErrors, string.Join("; ", export.Streams.Error));
            Assert.Equal(30, paths.Count);
            Assert.Equal(30, ExportProbe.EmittedCount);
            Assert.Empty(ExportProbe.Failures);
            Assert.InRange(ExportProbe.SyncCount, 1, 30);
        }
        finally
        {
            hook.SetValue(null, null);
            Run(rs, "Disconnect-PicoHsm -All", out _);
        }
    }
}

/// <summary>Records the folder fsyncs of a piped export and checks each emitted file against them (called from the pipeline).</summary>
public static class ExportProbe
{
    private static readonly object Gate = new();
    private static string _dir = "";
    private static readonly HashSet<string> Durable = new(StringComparer.Ordinal);
    public static List<string> Failures { get; } = new();
    public static int SyncCount { get; private set; }
    public static int EmittedCount { get; private set; }

    public static void Reset(string dir)
    {
        lock (Gate) { _dir = dir; Durable.Clear(); Failures.Clear(); SyncCount = 0; EmittedCount = 0; }
    }

    public static void Synced(string dir)
    {
        lock (Gate)
        {
            if (dir != _dir) return;
            SyncCount++;
            foreach (string f in Directory.GetFiles(dir)) Durable.Add(f);
        }
    }

    public static void Emitted(string path)
    {
        lock (Gate)
        {
            EmittedCount++;
            if (!Durable.Contains(path)) Failures.Add($"{path} was reported before its folder was synced");
        }
    }
}
