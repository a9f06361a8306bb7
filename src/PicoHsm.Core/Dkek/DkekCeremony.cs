using PicoHsm.Common;

namespace PicoHsm.Dkek;

/// <summary>The file side of the DKEK ceremony: naming, writing and reading share files, rebuilding the DKEK.</summary>
public static class DkekCeremony
{
    /// <summary>"dkek-share-2-of-5.dkekshare": a custodian sees which share they hold and of how many.</summary>
    public static IReadOnlyList<string> ShareFilePaths(string directory, string label, int shareCount) =>
        Enumerable.Range(1, shareCount)
            .Select(i => Path.Combine(directory, $"{SafeFileName(label)}-share-{i}-of-{shareCount}{DkekShareFile.Extension}"))
            .ToList();

    public static string SafeFileName(string label)
    {
        var invalid = Path.GetInvalidFileNameChars();
        var chars = label.Select(c => invalid.Contains(c) || char.IsWhiteSpace(c) ? '_' : c).ToArray();
        return chars.Length == 0 ? "dkek" : new string(chars);
    }

    /// <summary>
    /// Checks first that no file would be overwritten (unless allowed), then writes each atomically,
    /// owner-only; <paramref name="written"/> gets each path once its file is in place (so a caller
    /// can remove them when a later step fails).
    /// </summary>
    public static void WriteShareFiles(IReadOnlyList<DkekShareFile> files, IReadOnlyList<string> paths, bool overwrite, ICollection<string>? written = null)
    {
        if (!overwrite)
        {
            var existing = paths.Where(File.Exists).ToList();
            if (existing.Count > 0)
                throw new PicoHsmException(PicoErrorKind.ResourceExists, "ShareFileExists",
                    $"Share files already exist: {string.Join(", ", existing)}. Move them away (they may be another DKEK's only shares), choose another -OutputDirectory, or use -Force.", existing[0]);
        }
        for (int i = 0; i < files.Count; i++)
        {
            AtomicFile.WriteAllBytes(paths[i], files[i].ToBytes(), overwrite);
            written?.Add(paths[i]);
        }
    }

    public static DkekShareFile ReadShareFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PicoHsmException(PicoErrorKind.NotFound, "ShareFileUnreadable", $"Cannot read the share file '{path}': {ex.Message}", path, ex);
        }
        return DkekShareFile.Read(bytes, path);
    }

    /// <summary>
    /// What can be told from the clear headers alone, before any password is asked for: one
    /// DKEK, distinct shares, enough of them.
    /// </summary>
    public static void CheckSet(IReadOnlyList<DkekShareFile> files, IReadOnlyList<string> names)
    {
        if (files.Count == 0)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "NoShareFiles", "No share files were given.", null);
        var first = files[0];
        for (int i = 1; i < files.Count; i++)
        {
            if (files[i].KcvHex != first.KcvHex || files[i].SplitId != first.SplitId)
                throw new PicoHsmException(PicoErrorKind.InvalidArgument, "SharesOfDifferentDkeks",
                    $"'{names[i]}' (DKEK {files[i].KcvHex}) and '{names[0]}' (DKEK {first.KcvHex}) do not belong to the same split of one DKEK. Bring shares of one DKEK, from one split.", names[i]);
            for (int j = 0; j < i; j++)
                if (files[i].Index == files[j].Index)
                    throw new PicoHsmException(PicoErrorKind.InvalidArgument, "DuplicateShare",
                        $"'{names[i]}' and '{names[j]}' are both share {files[i].Index}. Each custodian's share counts once; bring {first.Threshold} different shares.", names[i]);
        }
        if (files.Count < first.Threshold)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "NotEnoughShares",
                $"This DKEK ({first.KcvHex}) needs {first.Threshold} of its {first.ShareCount} shares; {files.Count} were given. Ask {first.Threshold - files.Count} more custodian(s) for their share files.", null);
    }

    /// <summary>
    /// Decrypts each file with its password (a wrong one names the file) and rebuilds the DKEK,
    /// checked against the KCV every file records. The caller disposes the result.
    /// </summary>
    public static SecretBytes Rebuild(IReadOnlyList<DkekShareFile> files, IReadOnlyList<char[]> passwords, Action<int>? progress = null,
        CancellationToken cancellation = default)
    {
        var decrypted = new List<DecryptedDkekShare>();
        try
        {
            for (int i = 0; i < files.Count; i++)
            {
                progress?.Invoke(i);
                cancellation.ThrowIfCancellationRequested();
                decrypted.Add(DecryptedDkekShare.Decrypt(files[i], passwords[i], cancellation));
            }
            return DkekShareSet.Combine(decrypted);
        }
        finally
        {
            foreach (var d in decrypted) d.Dispose();
        }
    }
}
