using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;

namespace PicoHsm.Operations;

/// <summary>Tests one backup file: as read from disk now, and on a device when one is given.</summary>
public static class BackupCheck
{
    /// <summary>
    /// Re-reads the file from disk (structure and digests), then on a device checks the DKEK
    /// and compatibility, and the restore plan (its refusals are problems, and make it not
    /// Compatible), and with <paramref name="restoreTest"/> proves the key works.
    /// </summary>
    public static PicoBackupTestResult Test(IDeviceBackend? device, string path, PicoKeyBackup? given, bool restoreTest)
    {
        PicoKeyBackup b;
        try
        {
            b = BackupFiles.Read(path);
        }
        catch (PicoHsmException ex)
        {
            return new PicoBackupTestResult { Path = path, Id = given?.Id, Label = given?.Label, Valid = false, Problems = new[] { ex.Message } };
        }
        var problems = new List<string>();
        if (given is not null && given.Sha256 != b.Sha256)
            problems.Add($"The file changed since it was read: SHA-256 was {given.Sha256}, is now {b.Sha256}.");
        var warnings = b.AuthenticationWarning is { } w ? new[] { w } : Array.Empty<string>();
        if (device is null)
            return new PicoBackupTestResult
            {
                Path = path, Id = b.Id, Label = b.Label, Kcv = b.Kcv, Valid = true, Problems = problems.ToArray(), Warnings = warnings,
                // The tag needs the DKEK: without a session or the shares, an edit that re-digests the file cannot be seen.
                Detail = b.Authenticated == true ? "The file's digest matches. Its authentication tag is checked with -Session (on the token) or -SharePath (offline)." : null,
            };
        var r = device.Test(b, restoreTest);
        // The restore's own pre-flight: what Restore-PicoHsm / Import-PicoWrappedKey would refuse is a
        // problem here (a device's Test may already say it, in the same words: not repeated).
        var plan = device.PlanRestore(b, new RestoreRequest());
        var all = problems.Concat(r.Problems).ToList();
        foreach (var refusal in plan.Refusals)
            if (!all.Contains(refusal.Message)) all.Add(refusal.Message);
        return new PicoBackupTestResult
        {
            Path = path, Id = r.Id, Label = r.Label, Kcv = r.Kcv, Valid = r.Valid, DkekMatch = r.DkekMatch,
            Compatible = plan.IsRefused ? false : r.Compatible,
            Restorable = r.Restorable, Problems = all.ToArray(), Detail = r.Detail,
            Warnings = r.Warnings.Length > 0 ? r.Warnings : warnings,
        };
    }
}
