using System.Management.Automation;
using PicoHsm.Backup;
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

        foreach (var key in keys)
        {
            ThrowIfStopping();
            string target = Path is not null ? SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path) : System.IO.Path.Combine(dir!, BackupFiles.DefaultFileName(key, session.Device.BackupExtension));
            if (!ShouldProcess(target, $"Export key {key.Id} '{key.Label}' wrapped under the DKEK")) continue;
            TryRun(() => WriteObject(session.Device.Export(key, target, Force)), key);
        }
    }

    private List<PicoKey> SelectKeys(PicoHsmSession session)
    {
        var all = session.Device.ListKeys();
        var ids = Id?.Select(GetPicoKeyCommand.NormalizeId).ToHashSet();
        var pattern = Label is null ? null : WildcardPattern.Get(Label, WildcardOptions.IgnoreCase);
        if (ids is null && pattern is null) return new List<PicoKey>();
        return all.Where(k => (ids is null || ids.Contains(k.Id)) && (pattern is null || pattern.IsMatch(k.Label ?? ""))).ToList();
    }
}
