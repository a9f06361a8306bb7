using System.Management.Automation;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

/// <summary>
/// Writes keys wrapped under the DKEK to backup files. Pipeline input from Get-PicoKey; a key
/// that cannot be exported is a non-terminating error naming the key, and the others go on.
/// </summary>
[Cmdlet(VerbsData.Export, "PicoWrappedKey", SupportsShouldProcess = true, DefaultParameterSetName = "Directory")]
[OutputType(typeof(PicoKeyBackup))]
public sealed class ExportPicoWrappedKeyCommand : PicoSessionCmdletBase
{
    [Parameter(ValueFromPipeline = true)]
    [ValidateNotNull]
    public PicoKey[]? Key { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(KeyIdCompleter))]
    public string[]? Id { get; set; }

    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KeyLabelCompleter))]
    public string? Label { get; set; }

    /// <summary>The backup file (one key).</summary>
    [Parameter(Mandatory = true, ParameterSetName = "Path")]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    /// <summary>A folder: each key goes to "&lt;label&gt;-&lt;id&gt;.pkb" there.</summary>
    [Parameter(Mandatory = true, ParameterSetName = "Directory")]
    [ValidateNotNullOrEmpty]
    public string? Directory { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    private readonly List<PicoKey> _keys = new();

    protected override void ProcessRecordWithSession(PicoHsmSession session)
    {
        if (Key is not null) _keys.AddRange(Key);
    }

    protected override void EndProcessingWithSession(PicoHsmSession session)
    {
        var keys = _keys.Count > 0 ? _keys : SelectKeys(session);
        if (keys.Count == 0)
        {
            WriteError(NewError("NoKey", ErrorCategory.ObjectNotFound, "No key matches. List the keys with Get-PicoKey, and pass them by pipeline, -Id or -Label.", null));
            return;
        }
        if (Path is not null && keys.Count > 1)
            ThrowTerminatingError(NewError("PathWithSeveralKeys", ErrorCategory.InvalidArgument,
                $"-Path names one file but {keys.Count} keys were given. Use -Directory for several keys.", Path));
        string? dir = Directory is null ? null : SessionState.Path.GetUnresolvedProviderPathFromPSPath(Directory);
        if (dir is not null) System.IO.Directory.CreateDirectory(dir);
        string? single = Path is null ? null : SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path);
        string extension = session.Device.BackupExtension;
        bool confirming = ConfirmsEachItem();

        // Durability of what is reported: each file is fsynced before its rename, but the rename (its
        // name in the folder) is durable only after the folder's fsync. The folder is fsynced once per
        // batch instead of once per file, and a file's object reaches the pipeline only after the fsync
        // that follows its rename: whatever the admin (or the next command, say one that deletes the
        // key from the token) sees is on disk, name and content, whenever the machine crashes. A crash
        // can only lose files not yet reported. (Emitting every object at the end would be as safe
        // but would hold the whole pipeline back; fsyncing per file costs one folder fsync per key.)
        // A batch ends after BatchSize files or BatchTime, before an error record (so errors and
        // objects keep their order), before a -Confirm prompt (so each confirmed key's object is
        // shown before the next question, as before), and at the end. While the objects are written,
        // the next command's own files are not deferred (WithoutDeferral). On Ctrl+C the unreported
        // files of the batch stay on disk unreported, made durable as the scope closes.
        var pending = new List<PicoKeyBackup>();
        var batchAge = new System.Diagnostics.Stopwatch();
        using var deferred = AtomicFile.DeferDirectorySync();
        void Flush()
        {
            if (deferred.Pending) deferred.Sync();
            // WriteObject runs the next command of the pipeline: its own files are not this scope's to defer.
            if (pending.Count > 0) deferred.WithoutDeferral(() => { foreach (var b in pending) WriteObject(b); });
            pending.Clear();
            batchAge.Reset();
        }

        foreach (var key in keys)
        {
            ThrowIfStopping();
            string target = single ?? System.IO.Path.Combine(dir!, BackupFiles.DefaultFileName(key, extension));
            if (confirming) Flush();
            if (!ShouldProcess(target, $"Export key {key.Id} '{key.Label}' wrapped under the DKEK")) continue;
            TryRun(() =>
            {
                PicoKeyBackup written;
                try { written = session.Device.Export(key, target, Force); }
                catch { Flush(); throw; } // the objects before it, then its error
                pending.Add(written);
                if (pending.Count == 1) batchAge.Start();
            }, key);
            if (pending.Count >= BatchSize || batchAge.Elapsed >= BatchTime) Flush();
        }
        Flush();
    }

    /// <summary>At most this many files, or this long since the first of them, between folder fsyncs.</summary>
    private const int BatchSize = 256;
    private static readonly TimeSpan BatchTime = TimeSpan.FromMilliseconds(250);

    private List<PicoKey> SelectKeys(PicoHsmSession session)
    {
        var all = session.Device.ListKeys();
        var ids = Id?.Select(GetPicoKeyCommand.NormalizeId).ToHashSet();
        var pattern = Label is null ? null : WildcardPattern.Get(Label, WildcardOptions.IgnoreCase);
        if (ids is null && pattern is null) return new List<PicoKey>();
        return all.Where(k => (ids is null || ids.Contains(k.Id)) && (pattern is null || pattern.IsMatch(k.Label ?? ""))).ToList();
    }
}
