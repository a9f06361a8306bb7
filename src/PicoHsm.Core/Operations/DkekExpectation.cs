using PicoHsm.Backup;
using PicoHsm.Common;

namespace PicoHsm.Operations;

/// <summary>
/// The KCV a DKEK import must produce (issue 14, shares of two ceremonies): given as -ExpectedKcv, or
/// taken from a backup (-BackupPath: a .wky/.pkb file, a manifest.json, or a folder Backup-PicoHsm wrote).
/// The combined DKEK is computed in the host and compared before anything reaches the device.
/// </summary>
internal static class DkekExpectation
{
    /// <summary>The expected KCV (lower-case hex) or null when neither was given; both given must agree.</summary>
    public static string? Resolve(string? expectedKcv, string? backupPath)
    {
        string? given = expectedKcv is null ? null : Normalize(expectedKcv);
        string? fromBackup = backupPath is null ? null : FromBackup(backupPath);
        if (given is not null && fromBackup is not null && given != fromBackup)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "ExpectedKcvConflict",
                $"-ExpectedKcv {given} and the backup '{backupPath}' (DKEK {fromBackup}) name different DKEKs. Give the one the shares are of. Nothing was imported.", backupPath);
        return given ?? fromBackup;
    }

    /// <summary>Throws KcvMismatch when the combined DKEK's KCV is not the expected one; nothing has been sent then.</summary>
    public static void Check(string? expected, string combinedKcv, string? expectedFrom, string token)
    {
        if (expected is null || expected == combinedKcv) return;
        throw new PicoHsmException(PicoErrorKind.InvalidData, "KcvMismatch",
            $"These shares combine to DKEK {combinedKcv}, not the expected {expected}{(expectedFrom is null ? "" : $" (of '{expectedFrom}')")}: " +
            $"they are not all shares of one ceremony, or not of that DKEK. Nothing was sent to '{token}'. Give the shares of DKEK {expected}.", expectedFrom);
    }

    /// <summary>No expectation: the KCV about to be created is shown before the confirmation (non-interactive: this warning is all).</summary>
    public static void WarnUnchecked(IOperationHost host, string kcv, string token) =>
        host.Warning($"The shares combine to DKEK {kcv}, which is about to be created on '{token}'. It was not checked against a backup " +
            "(give -ExpectedKcv <kcv> or -BackupPath <backup file or folder>): compare it with the KCV the ceremony recorded before you confirm.");

    private static string Normalize(string hex)
    {
        string h = hex.Replace(":", "").Replace(" ", "").Replace("-", "").ToLowerInvariant();
        if (h.Length != KeyCheckValue.Length * 2 || !h.All(Uri.IsHexDigit))
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "BadExpectedKcv",
                $"-ExpectedKcv is {KeyCheckValue.Length * 2} hex digits (the KCV Get-PicoDkek or Get-PicoKeyBackup shows, e.g. d5c1a339cd295797).", hex);
        return h;
    }

    private static string FromBackup(string path)
    {
        if (Directory.Exists(path))
        {
            var kcvs = BackupFolder.ReadFolder(path).Select(b => Normalize(b.Kcv)).Distinct().ToList();
            return kcvs.Count switch
            {
                1 => kcvs[0],
                0 => throw new PicoHsmException(PicoErrorKind.InvalidArgument, "BackupWithoutKeys",
                    $"The backup folder '{path}' holds no key backup to take a KCV from. Give -ExpectedKcv instead.", path),
                _ => throw new PicoHsmException(PicoErrorKind.InvalidData, "BackupKcvsDiffer",
                    $"The backups in '{path}' are wrapped under different DKEKs ({string.Join(", ", kcvs)}). Give one backup file or -ExpectedKcv.", path),
            };
        }
        if (!File.Exists(path))
            throw new PicoHsmException(PicoErrorKind.NotFound, "BackupNotFound", $"'{path}' is neither a backup file nor a backup folder. Check -BackupPath.", path);
        if (string.Equals(Path.GetFileName(path), BackupManifest.FileName, StringComparison.OrdinalIgnoreCase))
        {
            try { return BackupManifest.Read(File.ReadAllBytes(path), path).DkekKcvHex; }
            catch (BackupFileException ex)
            {
                throw new PicoHsmException(PicoErrorKind.InvalidData, "Backup" + ex.Reason, ex.Message, path, ex);
            }
        }
        return Normalize(DkekImportService.WithTarget(() => BackupFiles.Read(path), path).Kcv);
    }
}
