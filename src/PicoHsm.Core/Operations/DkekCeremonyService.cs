using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Dkek;

namespace PicoHsm.Operations;

/// <summary>What New-PicoDkek was asked to do.</summary>
/// <param name="Threshold">n of n-of-m; 0 means "not given" (required for PicoHsm shares; n = m for sc-hsm-tool).</param>
/// <param name="ScHsmToolFormat">sc-hsm-tool .pbe share files (XOR, n-of-n) instead of .dkekshare (Shamir, n-of-m).</param>
/// <param name="Directory">Where the share files go (a full path).</param>
/// <param name="Import">Put the DKEK on the device too (false: -NoImport, files only).</param>
/// <param name="Force">Overwrite share files of the same name.</param>
/// <param name="Id">CKA_ID of the DKEK object on a generic token, hex; null: one no object uses is chosen
/// (see docs/dkek-on-pkcs11-tokens.md). A given id that a key already has is refused before any password.</param>
public sealed record DkekCeremonyRequest(
    int ShareCount,
    int Threshold,
    bool ScHsmToolFormat,
    string Directory,
    string Label = "dkek",
    string? Id = null,
    bool Import = true,
    bool Force = false);

/// <summary>
/// The DKEK ceremony: create a DKEK, split it into password-protected share files (one per
/// custodian), write them, and put the DKEK on the device. Shares are written before the device
/// is changed, so a DKEK is never on a device without its backup. Everything that can be checked
/// (threshold, the device's DKEK state, the id, the share files, the folder) is checked before the
/// first password is asked for; when the import fails after the shares were written, the share
/// files this run wrote are removed, so no share exists of a DKEK that is on no device.
/// </summary>
public static class DkekCeremonyService
{
    /// <summary>The share file paths the request would write.</summary>
    public static IReadOnlyList<string> SharePaths(DkekCeremonyRequest r) => r.ScHsmToolFormat
        ? DkekCeremony.ShareFilePaths(r.Directory, r.Label, r.ShareCount).Select(p => Path.ChangeExtension(p, ".pbe")).ToList()
        : DkekCeremony.ShareFilePaths(r.Directory, r.Label, r.ShareCount);

    /// <param name="device">The device to import into (required with <see cref="DkekCeremonyRequest.Import"/>); without import, only its random generator is used.</param>
    /// <returns>The new DKEK; null when the host declined.</returns>
    public static PicoDkek? Create(IDeviceBackend? device, DkekCeremonyRequest request, IOperationHost host)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(host);
        int threshold = CheckThreshold(request);
        var backend = request.Import ? device ?? throw new ArgumentNullException(nameof(device)) : null;
        var paths = SharePaths(request);
        string token = device?.Context.TokenLabel ?? "";
        if (backend is not null)
        {
            var state = backend.GetDkek();
            if (state.FirstOrDefault(d => d.SharesTotal is { } t && d.SharesOutstanding is { } o && o < t && !d.Present) is { } partial)
                throw new PicoHsmException(PicoErrorKind.ResourceExists, "SharesPending",
                    $"'{token}' already holds {partial.SharesTotal - partial.SharesOutstanding} of {partial.SharesTotal} shares of another DKEK in key domain {partial.KeyDomain}. Import the rest of those shares, or re-initialise the device first.", backend.Context);
            if (state.FirstOrDefault(d => d.Present && d.KeyCheckValue is not null) is { } existing)
                throw new PicoHsmException(PicoErrorKind.ResourceExists, "DkekPresent",
                    $"The token '{token}' already has a DKEK (KCV {existing.KeyCheckValue}). A new one would orphan every backup made under it. Use -NoImport to only write shares, or a fresh token.", backend.Context);
            CheckIdFree(backend, request.Id);
        }

        if (!request.Force && paths.FirstOrDefault(File.Exists) is { } clash)
            throw new PicoHsmException(PicoErrorKind.ResourceExists, "ShareFileExists",
                $"'{clash}' already exists (it may be another DKEK's only share). Move it away, choose another -OutputDirectory, or use -Force.", clash);
        string target = backend is null ? request.Directory : $"{request.Directory} and token '{token}'";
        if (!host.ShouldProcess(target, $"Create a {threshold}-of-{request.ShareCount} DKEK, write {request.ShareCount} share files{(backend is null ? "" : " and import the DKEK")}"))
            return null;
        DkekImportService.WithTarget(() => { CheckWritable(request.Directory); return 0; }, request.Directory);

        var names = Enumerable.Range(1, request.ShareCount).Select(i => $"share {i} of {request.ShareCount} ({Path.GetFileName(paths[i - 1])})").ToList();
        using var passwords = SharePasswordPrompt.ForNewShares(host, names);

        Func<int, byte[]>? tokenRandom = device is { IsOpen: true, HasPkcs11: true } d
            ? n => d.GenerateRandom(n) ?? throw new PicoHsmException(PicoErrorKind.DeviceError, "NoRandom",
                "The token offered no random numbers for the DKEK. Use -NoImport without a session, or another token.", d.Context)
            : null;
        using SecretBytes dkek = DkekGenerator.Create(tokenRandom);
        string kcv = KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span));
        host.Progress(new OperationProgress(request.ScHsmToolFormat
            ? $"Encrypting {request.ShareCount} sc-hsm-tool share files (10,000,000 MD5 rounds each)"
            : $"Encrypting {request.ShareCount} share files (PBKDF2, {DkekShareFile.DefaultIterations:N0} iterations each)"));

        var written = new List<string>();
        bool imported;
        try
        {
            imported = request.ScHsmToolFormat
                ? WriteScHsmToolShares(backend, request, paths, passwords.Values, dkek, kcv, host, written)
                : WriteDkekShares(backend, request, threshold, paths, passwords.Values, dkek, tokenRandom, host.Cancellation, written);
        }
        catch (Exception ex)
        {
            RemoveWritten(written, host, ex);
            throw;
        }
        host.Progress(new OperationProgress("Done", 100, Completed: true));
        foreach (var p in paths) host.Verbose($"Wrote {p}");
        if (imported) host.Verbose($"DKEK {kcv} imported into '{token}'.");

        string? id = request.Id?.ToLowerInvariant();
        if (imported && backend is not IScHsmDevice && backend!.GetDkek().FirstOrDefault(x => x.KeyCheckValue == kcv) is { Id: { } onToken })
            id = onToken;
        return new PicoDkek
        {
            Present = imported, KeyCheckValue = kcv, KcvVerified = imported, Label = request.Label, Id = id,
            Threshold = threshold, ShareCount = request.ShareCount, ShareFiles = paths.ToArray(),
            DeviceFamily = backend?.Family, TokenLabel = backend?.Context.TokenLabel, TokenSerial = backend?.Context.SerialNumber,
            Status = backend is null ? "Shares written; not imported (-NoImport)" : "Imported",
        };
    }

    /// <summary>
    /// A generic token's DKEK never shares its CKA_ID with a key: an explicit id that a key of
    /// the catalogue has is refused here, before any password (the token checks every object class
    /// again at the import). A SmartCard-HSM keeps its DKEK outside the key objects: no id.
    /// </summary>
    internal static void CheckIdFree(IDeviceBackend backend, string? id)
    {
        if (id is null || backend is IScHsmDevice) return;
        string hex = id.ToLowerInvariant();
        if (backend.ListKeys().FirstOrDefault(k => string.Equals(k.Id, hex, StringComparison.OrdinalIgnoreCase)) is { } key)
            throw new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
                $"The key '{key.Label}' on '{backend.Context.TokenLabel}' already has id {hex}; the DKEK never shares an id with another object. Leave -Id out (a free id is chosen) or give a free one.", hex);
    }

    /// <summary>The folder exists (it is made) and takes a file: found before any password is typed, not after.</summary>
    private static void CheckWritable(string directory)
    {
        Directory.CreateDirectory(directory);
        string probe = Path.Combine(directory, $".picohsm-write-test-{Guid.NewGuid():n}");
        using (File.Create(probe, 1, FileOptions.DeleteOnClose)) { }
    }

    /// <summary>After a failure: the share files this run wrote describe a DKEK that is on no device, so they go.</summary>
    private static void RemoveWritten(List<string> written, IOperationHost host, Exception cause)
    {
        var left = new List<string>();
        foreach (string f in written)
        {
            try { File.Delete(f); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { left.Add(f); }
        }
        if (written.Count == 0) return;
        host.Warning(left.Count == 0
            ? $"The DKEK was not put on the device ({(cause is OperationCanceledException ? "stopped" : "failed")}); the {written.Count} share file(s) written for it were removed."
            : $"The DKEK was not put on the device; these share files of it could not be removed and open no DKEK on any device, delete them: {string.Join(", ", left)}");
    }

    private static int CheckThreshold(DkekCeremonyRequest r)
    {
        int threshold = r.Threshold;
        if (r.ScHsmToolFormat)
        {
            if (threshold != 0 && threshold != r.ShareCount)
                throw new PicoHsmException(PicoErrorKind.InvalidArgument, "ScHsmToolIsNofN",
                    $"sc-hsm-tool shares are all needed (the DKEK is their XOR): -Threshold must be left out or equal -ShareCount ({r.ShareCount}). For n-of-m use -Format PicoHsm.", threshold);
            threshold = r.ShareCount;
        }
        else if (threshold == 0)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "ThresholdRequired",
                "-Threshold is required: how many of the -ShareCount custodians are needed to rebuild the DKEK (e.g. -ShareCount 5 -Threshold 3).");
        if (threshold > r.ShareCount)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "ThresholdTooLarge",
                $"-Threshold {threshold} is larger than -ShareCount {r.ShareCount}: the DKEK could never be rebuilt. Use a threshold of at most the share count.", threshold);
        return threshold;
    }

    /// <summary>The id for <see cref="IDeviceBackend.ImportDkek"/>: empty lets a generic token choose a free one.</summary>
    internal static byte[] IdBytes(string? id) => id is null ? Array.Empty<byte>() : Convert.FromHexString(id);

    private static bool WriteDkekShares(IDeviceBackend? backend, DkekCeremonyRequest r, int threshold, IReadOnlyList<string> paths,
        IReadOnlyList<char[]> passwords, SecretBytes dkek, Func<int, byte[]>? tokenRandom, CancellationToken cancellation, List<string> written)
    {
        var files = DkekShareSet.Split(dkek.Span, threshold, r.ShareCount, r.Label, passwords, DkekGenerator.MixedRandom(tokenRandom),
            cancellation: cancellation);
        cancellation.ThrowIfCancellationRequested();
        DkekImportService.WithTarget(() => { DkekCeremony.WriteShareFiles(files, paths, r.Force, written); return 0; }, r.Directory);
        cancellation.ThrowIfCancellationRequested();
        return backend is not null && backend.ImportDkek(dkek, r.Label, IdBytes(r.Id));
    }

    private static bool WriteScHsmToolShares(IDeviceBackend? backend, DkekCeremonyRequest r, IReadOnlyList<string> paths,
        IReadOnlyList<char[]> passwords, SecretBytes dkek, string kcv, IOperationHost host, List<string> written)
    {
        var shares = ScHsmDkekShares.Split(dkek.Span, r.ShareCount);
        try
        {
            // Every file is encrypted before the first is written: a stop mid-KDF leaves no file behind.
            var bytes = new List<byte[]>();
            for (int i = 0; i < shares.Count; i++)
            {
                host.Progress(new OperationProgress($"Encrypting share {i + 1} of {shares.Count}", 100 * i / shares.Count));
                byte[] pw = System.Text.Encoding.UTF8.GetBytes(passwords[i]);
                try { bytes.Add(ScHsmShareFile.Create(shares[i].Span, pw, cancellation: host.Cancellation)); }
                finally { Array.Clear(pw); }
            }
            host.Cancellation.ThrowIfCancellationRequested();
            for (int i = 0; i < bytes.Count; i++)
            {
                DkekImportService.WithTarget(() => { AtomicFile.WriteAllBytes(paths[i], bytes[i], r.Force); return 0; }, paths[i]);
                written.Add(paths[i]);
            }
            host.Cancellation.ThrowIfCancellationRequested();
            if (backend is IScHsmDevice card)
            {
                var result = card.ImportShares(shares);
                if (result.KeyCheckValue != kcv)
                    throw new PicoHsmException(PicoErrorKind.InvalidResult, "KcvMismatch",
                        $"The card reports DKEK {result.KeyCheckValue ?? "(unknown)"} after the import, not {kcv}: it held shares of another DKEK. Re-initialise it (Initialize-PicoHsm) before a new DKEK.", backend.Context);
                return true;
            }
            return backend is not null && backend.ImportDkek(dkek, r.Label, IdBytes(r.Id));
        }
        finally
        {
            foreach (var sh in shares) sh.Dispose();
        }
    }
}
