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
        // name in the folder) is durable only after the folder's fsync. Files are written by a few writer
        // threads while the token wraps the next key (DurableFileWriter: the file system commits their
        // fsyncs together), and the folder is fsynced once per batch; a file's object reaches the pipeline
        // only after every write of its batch finished and the folder's fsync that followed: whatever the
        // admin (or the next command, say one that deletes the key from the token) sees is on disk, name
        // and content, whenever the machine crashes. A crash can only lose files not yet reported.
        // A batch ends after BatchSize files or BatchTime, before an error record (so errors and objects
        // keep their order: a file that could not be written is its key's error, in its place), before a
        // -Confirm prompt (so each confirmed key's object is shown before the next question), and at the
        // end. On Ctrl+C the batch's files still land whole, unreported.
        var pending = new List<PendingExport>();
        var batchAge = new System.Diagnostics.Stopwatch();
        // One key (-Path, or one piped key): its file is written here, which saves a thread's start and
        // handoff (~0.5 ms here) that only pays off from the second file on.
        using var writer = keys.Count > 1 ? new DurableFileWriter(stopAtFirstFailure: false) : null;
        void Flush()
        {
            writer?.Flush();
            foreach (var p in pending)
            {
                if (p.Error is { } error) TryRun(() => System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw(), p.Key);
                else WriteObject(p.Backup);
            }
            pending.Clear();
            batchAge.Reset();
        }

        foreach (var key in keys)
        {
            ThrowIfStopping();
            string target = single ?? System.IO.Path.Combine(dir!, BackupFiles.DefaultFileName(key, extension));
            if (confirming) Flush();
            if (!ShouldProcess(target, $"Export key {key.Id} '{key.Label}' wrapped under the DKEK")) continue;
            bool force = Force;
            TryRun(() =>
            {
                WrappedKeyBytes wrapped;
                try
                {
                    if (writer is null)
                    {
                        pending.Add(new PendingExport(key, session.Device.Export(key, target, force)));
                        return;
                    }
                    if (!force && File.Exists(target)) throw BackupFiles.FileExists(target);
                    wrapped = session.Device.WrapForExport(key);
                }
                catch { Flush(); throw; } // the objects before it, then its error
                var p = new PendingExport(key, wrapped.DescribeAt(target));
                pending.Add(p);
                // The file may have appeared since the check (another run): the move refuses to replace it.
                writer.Write(target, wrapped.Bytes, force,
                    failed: ex => p.Error = !force && ex is IOException && File.Exists(target) ? BackupFiles.FileExists(target) : ex);
                if (pending.Count == 1) batchAge.Start();
            }, key);
            if (pending.Count >= BatchSize || batchAge.Elapsed >= BatchTime) Flush();
        }
        Flush();
    }

    /// <summary>A key's file handed to the writers: its object, or the error of its write (set on a writer thread, read after Flush).</summary>
    private sealed class PendingExport(PicoKey key, PicoKeyBackup backup)
    {
        public PicoKey Key { get; } = key;
        public PicoKeyBackup Backup { get; } = backup;
        public Exception? Error { get; set; }
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
