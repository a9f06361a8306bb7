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
public sealed record DkekCeremonyRequest(
    int ShareCount,
    int Threshold,
    bool ScHsmToolFormat,
    string Directory,
    string Label = "dkek",
    string Id = "01",
    bool Import = true,
    bool Force = false);

/// <summary>
/// The DKEK ceremony: create a DKEK, split it into password-protected share files (one per
/// custodian), write them, and put the DKEK on the device. Shares are written before the device
/// is changed, so a DKEK is never on a device without its backup.
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
        }

        string target = backend is null ? request.Directory : $"{request.Directory} and token '{token}'";
        if (!host.ShouldProcess(target, $"Create a {threshold}-of-{request.ShareCount} DKEK, write {request.ShareCount} share files{(backend is null ? "" : " and import the DKEK")}"))
            return null;
        if (!request.Force && paths.FirstOrDefault(File.Exists) is { } clash)
            throw new PicoHsmException(PicoErrorKind.ResourceExists, "ShareFileExists",
                $"'{clash}' already exists (it may be another DKEK's only share). Move it away, choose another -OutputDirectory, or use -Force.", clash);
        Directory.CreateDirectory(request.Directory);

        var names = Enumerable.Range(1, request.ShareCount).Select(i => $"share {i} of {request.ShareCount} ({Path.GetFileName(paths[i - 1])})").ToList();
        using var passwords = new PasswordLease(host.GetPasswords(names, confirm: true));
        for (int i = 0; i < passwords.Values.Count; i++)
            if (!DkekPasswordPolicy.TryValidate(passwords.Values[i], out string? problem))
                throw new PicoHsmException(PicoErrorKind.InvalidArgument, "WeakPassword", $"The password for share {i + 1}: {problem}", i + 1);

        Func<int, byte[]>? tokenRandom = device is { IsOpen: true, HasPkcs11: true } d
            ? n => d.GenerateRandom(n) ?? throw new PicoHsmException(PicoErrorKind.DeviceError, "NoRandom",
                "The token offered no random numbers for the DKEK. Use -NoImport without a session, or another token.", d.Context)
            : null;
        using SecretBytes dkek = DkekGenerator.Create(tokenRandom);
        string kcv = KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span));
        host.Progress(new OperationProgress(request.ScHsmToolFormat
            ? $"Encrypting {request.ShareCount} sc-hsm-tool share files (10,000,000 MD5 rounds each)"
            : $"Encrypting {request.ShareCount} share files (PBKDF2, {DkekShareFile.DefaultIterations:N0} iterations each)"));

        bool imported = request.ScHsmToolFormat
            ? WriteScHsmToolShares(backend, request, paths, passwords.Values, dkek, kcv, host)
            : WriteDkekShares(backend, request, threshold, paths, passwords.Values, dkek, tokenRandom, host.Cancellation);
        host.Progress(new OperationProgress("Done", 100, Completed: true));
        foreach (var p in paths) host.Verbose($"Wrote {p}");
        if (imported) host.Verbose($"DKEK {kcv} imported into '{token}'.");

        return new PicoDkek
        {
            Present = imported, KeyCheckValue = kcv, KcvVerified = imported, Label = request.Label, Id = request.Id.ToLowerInvariant(),
            Threshold = threshold, ShareCount = request.ShareCount, ShareFiles = paths.ToArray(),
            DeviceFamily = backend?.Family, TokenLabel = backend?.Context.TokenLabel, TokenSerial = backend?.Context.SerialNumber,
            Status = backend is null ? "Shares written; not imported (-NoImport)" : "Imported",
        };
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

    private static bool WriteDkekShares(IDeviceBackend? backend, DkekCeremonyRequest r, int threshold, IReadOnlyList<string> paths,
        IReadOnlyList<char[]> passwords, SecretBytes dkek, Func<int, byte[]>? tokenRandom, CancellationToken cancellation)
    {
        var files = DkekShareSet.Split(dkek.Span, threshold, r.ShareCount, r.Label, passwords, DkekGenerator.MixedRandom(tokenRandom),
            cancellation: cancellation);
        cancellation.ThrowIfCancellationRequested();
        DkekCeremony.WriteShareFiles(files, paths, r.Force);
        return backend is not null && backend.ImportDkek(dkek, r.Label, Convert.FromHexString(r.Id));
    }

    private static bool WriteScHsmToolShares(IDeviceBackend? backend, DkekCeremonyRequest r, IReadOnlyList<string> paths,
        IReadOnlyList<char[]> passwords, SecretBytes dkek, string kcv, IOperationHost host)
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
                DkekImportService.WithTarget(() => { AtomicFile.WriteAllBytes(paths[i], bytes[i], r.Force); return 0; }, paths[i]);
            if (backend is IScHsmDevice card)
            {
                var result = card.ImportShares(shares);
                if (result.KeyCheckValue != kcv)
                    throw new PicoHsmException(PicoErrorKind.InvalidResult, "KcvMismatch",
                        $"The card reports DKEK {result.KeyCheckValue ?? "(unknown)"} after the import, not {kcv}: it held shares of another DKEK. Re-initialise it (Initialize-PicoHsm) before a new DKEK.", backend.Context);
                return true;
            }
            return backend is not null && backend.ImportDkek(dkek, r.Label, Convert.FromHexString(r.Id));
        }
        finally
        {
            foreach (var sh in shares) sh.Dispose();
        }
    }
}
