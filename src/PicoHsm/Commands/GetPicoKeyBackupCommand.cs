using System.Collections.ObjectModel;
using System.Management.Automation;
using PicoHsm.Backup;

namespace PicoHsm.Module.Commands;

/// <summary>Reads backup files (this module's and sc-hsm-tool's), or the folder Backup-PicoHsm wrote, into objects; no session needed.</summary>
[Cmdlet(VerbsCommon.Get, "PicoKeyBackup")]
[OutputType(typeof(PicoKeyBackup))]
public sealed class GetPicoKeyBackupCommand : PicoCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [SupportsWildcards]
    public string[] Path { get; set; } = Array.Empty<string>();

    protected override void ProcessRecordCore()
    {
        foreach (string p in Path)
        {
            Collection<string> resolved;
            try
            {
                resolved = GetResolvedProviderPathFromPSPath(p, out _);
            }
            catch (ItemNotFoundException ex)
            {
                // The target of an interrupted Backup-PicoHsm does not exist yet: say so, and how to finish it.
                string full = GetUnresolvedProviderPathFromPSPath(p);
                if (!WildcardPattern.ContainsWildcardCharacters(p) && BackupFolder.WhyIncomplete(full) is not null)
                {
                    TryRun(() => BackupFolder.ThrowIfIncomplete(full), full);
                    continue;
                }
                WriteError(new ErrorRecord(ex, CmdletId + "FileNotFound", ErrorCategory.ObjectNotFound, p));
                continue;
            }
            foreach (string file in resolved)
            {
                // A folder written by Backup-PicoHsm: its backups; an unfinished one says how to finish it.
                if (System.IO.Directory.Exists(file))
                    TryRun(() => { foreach (var b in BackupFolder.ReadFolder(file)) WriteObject(b); }, file);
                else
                    TryRun(() => WriteObject(BackupFiles.Read(file)), file);
            }
        }
    }
}
