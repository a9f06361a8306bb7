using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Dkek;

namespace PicoHsm.Operations;

/// <summary>What Import-PicoDkek was asked to do.</summary>
/// <param name="Paths">The share files, resolved: all .dkekshare (any n of m) or all sc-hsm-tool .pbe.</param>
/// <param name="Id">CKA_ID of the DKEK object on a generic token, hex; null: one no object uses is chosen.
/// A given id that a key already has is refused before any password.</param>
/// <param name="Label">Label of the DKEK object on a generic token; the share files' label when null.</param>
/// <param name="KeyDomain">SmartCard-HSM / Pico HSM: the key domain sc-hsm-tool shares go to.</param>
/// <param name="ThresholdPassword">An sc-hsm-tool threshold-password share file: its password, rebuilt by the
/// caller from the custodians' password shares (which the cmdlet takes as SecureStrings); zeroed by the caller.</param>
/// <param name="ExpectedKcv">The KCV the combined DKEK must have (hex); else nothing reaches the device.</param>
/// <param name="BackupPath">A backup (.wky/.pkb, manifest.json or a backup folder) whose DKEK KCV the combined DKEK must have.</param>
public sealed record DkekImportRequest(
    IReadOnlyList<string> Paths,
    string? Id = null,
    string? Label = null,
    int KeyDomain = 0,
    SecretBytes? ThresholdPassword = null,
    string? ExpectedKcv = null,
    string? BackupPath = null);

/// <summary>
/// Rebuilds a DKEK from share files and puts it on a device: tells .dkekshare from sc-hsm-tool
/// .pbe files by their content, opens them (passwords from the host, or sc-hsm-tool password
/// shares combined), and imports the DKEK (a SmartCard-HSM takes sc-hsm-tool shares one by one).
/// What the clear headers tell (one DKEK, enough shares, a DKEK the token already holds) and a
/// taken -Id are found before any password; each share is opened as its password is typed, and
/// a wrong one is asked again for that share only.
/// </summary>
public static class DkekImportService
{
    /// <summary>The DKEK state after the import; empty when the host declined the change.</summary>
    public static IReadOnlyList<PicoDkek> Import(IDeviceBackend device, DkekImportRequest request, IOperationHost host)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(host);
        if (request.Paths.Count == 0)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "NoShareFiles", "No share files were given. Pass them with -Path.");
        var kinds = request.Paths.Select(p => ScHsmDkekShares.LooksLikeShareFile(ReadHead(p))).Distinct().ToList();
        if (kinds.Count > 1)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "MixedShareFormats",
                "Some files are sc-hsm-tool shares (.pbe) and some are PicoHsm shares (.dkekshare): one DKEK's shares are all of one kind. Import them separately.");
        return kinds[0] ? ImportScHsmToolShares(device, request, host) : ImportDkekShares(device, request, host);
    }

    /// <summary>The file's bytes for sniffing its format; an unreadable file is reported when it is read for real.</summary>
    private static byte[] ReadHead(string path)
    {
        try { return File.ReadAllBytes(path); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return Array.Empty<byte>(); }
    }

    private static IReadOnlyList<PicoDkek> ImportDkekShares(IDeviceBackend device, DkekImportRequest request, IOperationHost host)
    {
        var paths = request.Paths;
        var files = paths.Select(Read).ToList();
        foreach (var p in paths) if (DkekShareFile.PermissionWarning(p) is { } w) host.Warning(w);
        DkekCeremony.CheckSet(files, paths);
        string kcv = files[0].KcvHex;
        string token = device.Context.TokenLabel ?? "";
        string? expected = DkekExpectation.Resolve(request.ExpectedKcv, request.BackupPath);
        DkekExpectation.Check(expected, kcv, request.BackupPath, token); // the clear header: before any password

        var current = device.GetDkek().FirstOrDefault(d => d.Present && d.KeyCheckValue is not null);
        if (current?.KeyCheckValue is { } have && have != kcv)
            throw new PicoHsmException(PicoErrorKind.ResourceExists, "OtherDkekPresent",
                $"The token '{token}' already holds DKEK {have}; these shares are of DKEK {kcv}. Backups cannot move between DKEKs; use a fresh token or the shares of {have}.", device.Context);
        if (current is { KcvVerified: true } && current.KeyCheckValue == kcv)
        {
            // The KCV is in every share file's clear header: nobody needs to type a password for this.
            host.Warning($"The token '{token}' already holds DKEK {kcv} (the DKEK these shares are of); nothing was changed and no password was needed.");
            return new[] { Result(current, files[0], paths, "Already present") };
        }
        if (current is null)
            DkekCeremonyService.CheckIdFree(device, request.Id);

        // No warning without an expectation here: every file's header records the KCV (CheckSet refused a
        // mix of ceremonies), the confirmation names it, and the combined DKEK is checked against it below.
        if (!host.ShouldProcess($"token '{token}'", $"Import DKEK {kcv} rebuilt from {files.Count} of {files[0].ShareCount} shares"))
            return Array.Empty<PicoDkek>();

        var names = paths.Select((p, i) => $"share {files[i].Index} of {files[i].ShareCount} ({Path.GetFileName(p)})").ToList();
        var decrypted = SharePasswordPrompt.OpenEach(host, names,
            (i, pw) => WithTarget(() => DecryptedDkekShare.Decrypt(files[i], pw, host.Cancellation), paths[i]),
            ex => ex is DkekShareFileException { Reason: DkekShareFileReason.WrongPasswordOrTampered }
                || ex is PicoHsmException { Reason: "ShareFileWrongPasswordOrTampered" },
            i => host.Progress(new OperationProgress($"Decrypting {names[i]}", 100 * i / files.Count)));
        SecretBytes dkek;
        try { dkek = DkekShareSet.Combine(decrypted); }
        finally { foreach (var d in decrypted) d.Dispose(); }
        host.Progress(new OperationProgress("Decrypting share files", 100, Completed: true));
        try
        {
            string combined = KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span));
            DkekExpectation.Check(expected ?? kcv, combined, expected is null ? paths[0] : request.BackupPath, token);
        }
        catch
        {
            dkek.Dispose();
            throw;
        }

        bool imported;
        using (dkek) imported = device.ImportDkek(dkek, request.Label ?? files[0].Label, DkekCeremonyService.IdBytes(request.Id));
        if (!imported)
            host.Warning($"The token '{token}' already holds DKEK {kcv}; nothing was changed.");
        var state = device.GetDkek();
        return new[] { Result(state.FirstOrDefault(d => d.KeyCheckValue == kcv) ?? state[0], files[0], paths, imported ? "Imported" : "Already present") };

        static PicoDkek Result(PicoDkek on, DkekShareFile file, IReadOnlyList<string> paths, string status) => new()
        {
            Present = on.Present, KeyCheckValue = on.KeyCheckValue, KcvVerified = on.KcvVerified, Label = on.Label, Id = on.Id,
            Threshold = file.Threshold, ShareCount = file.ShareCount, ShareFiles = paths.ToArray(), DeviceFamily = on.DeviceFamily,
            TokenLabel = on.TokenLabel, TokenSerial = on.TokenSerial, Status = status,
        };

        static DkekShareFile Read(string p)
        {
            try { return DkekCeremony.ReadShareFile(p); }
            catch (Exception ex) when (ErrorTranslation.Translate(ex) is { } e && e.Target is null)
            {
                throw new PicoHsmException(e.Kind, e.Reason, e.Message, p, ex);
            }
        }
    }

    /// <summary>
    /// sc-hsm-tool share files: n-of-n, the DKEK is their XOR. A SmartCard-HSM takes them one by
    /// one (IMPORT DKEK SHARE) as announced at initialisation; a generic token gets the XOR.
    /// </summary>
    private static IReadOnlyList<PicoDkek> ImportScHsmToolShares(IDeviceBackend device, DkekImportRequest request, IOperationHost host)
    {
        var paths = request.Paths;
        var files = paths.Select(p => WithTarget(() => ScHsmShareFile.Read(p), p)).ToList();
        foreach (var p in paths) if (ScHsmShareFile.PermissionWarning(p) is { } w) host.Warning(w);
        var shares = new List<SecretBytes>();
        string token = device.Context.TokenLabel ?? "";
        string? expected = DkekExpectation.Resolve(request.ExpectedKcv, request.BackupPath);
        // A SmartCard-HSM takes the shares into a key domain announced for a number of them: whether these files are the
        // whole set decides whether the host can know the DKEK (and its KCV) before anything is sent.
        var card = device as IScHsmDevice;
        var domain = card is null ? null : ScHsmToolDomain.Read(device, request.KeyDomain, files.Count);
        if (domain is not null && ScHsmToolDomain.BeforePasswords(domain, expected, token, host) is { } unchanged)
            return unchanged;
        try
        {
            if (request.ThresholdPassword is not null)
                shares.Add(OpenWithPasswordShares(files, request, host.Cancellation));
            else
            {
                if (!device.GetDkek().Any(d => d.Present))
                    DkekCeremonyService.CheckIdFree(device, request.Id);
                var names = paths.Select(p => $"sc-hsm-tool share '{Path.GetFileName(p)}'").ToList();
                shares.AddRange(SharePasswordPrompt.OpenEach(host, names, (i, pw) => OpenScHsmToolShare(files[i], pw, paths[i], host.Cancellation),
                    ex => ex is PicoHsmException { Reason: "ShareFileWrongPassword" },
                    i => host.Progress(new OperationProgress($"Opening {names[i]}", 100 * i / files.Count))));
                host.Progress(new OperationProgress("Opening sc-hsm-tool share files", 100, Completed: true));
            }
            using var dkek = ScHsmDkekShares.Combine(shares);
            string kcv = KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span));
            string action;
            if (domain is { Complete: true } && domain.Dkek.KcvVerified && domain.Dkek.KeyCheckValue == kcv)
            {
                host.Warning(ScHsmToolDomain.AlreadyHolds(token, kcv, domain, afterPasswords: true));
                return device.GetDkek();
            }
            if (domain is { Partial: true })
            {
                // Not the whole set: the host cannot know the DKEK; with -ExpectedKcv the last share's call checks the card's KCV.
                if (expected is null) host.Warning(ScHsmToolDomain.PartialWarning(domain, token));
                action = $"Import {files.Count} sc-hsm-tool share(s) into key domain {request.KeyDomain} ({domain.Outstanding} of {domain.Total} shares outstanding)";
            }
            else
            {
                // computed in the host from the decrypted shares, before IMPORT DKEK SHARE / the DKEK object
                DkekExpectation.Check(expected, kcv, request.BackupPath, token);
                if (expected is null) DkekExpectation.WarnUnchecked(host, kcv, token);
                action = $"Import {files.Count} sc-hsm-tool share(s) of DKEK {kcv}";
            }
            if (!host.ShouldProcess($"token '{token}'", action))
                return Array.Empty<PicoDkek>();
            if (card is not null)
            {
                var after = card.ImportShares(shares, request.KeyDomain);
                if (domain is { Completes: true } && expected is not null)
                    ScHsmToolDomain.CheckCompleted(after, expected, request.BackupPath, domain, token);
            }
            else if (!device.ImportDkek(dkek, request.Label ?? "dkek", DkekCeremonyService.IdBytes(request.Id)))
                host.Warning($"The token '{token}' already holds DKEK {kcv}; nothing was changed.");
            return device.GetDkek();
        }
        finally
        {
            foreach (var s in shares) s.Dispose();
        }
    }

    private static SecretBytes OpenScHsmToolShare(ScHsmShareFile file, char[] password, string path, CancellationToken cancellation)
    {
        byte[] pw = System.Text.Encoding.UTF8.GetBytes(password);
        try { return file.Decrypt(pw, cancellation: cancellation); }
        catch (ScHsmWrongPasswordException ex)
        {
            throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "ShareFileWrongPassword",
                $"The password for '{path}' is wrong (or the file is damaged). Nothing was imported; check the password with its custodian.", path, ex);
        }
        finally { Array.Clear(pw); }
    }

    /// <summary>One threshold-password share file, opened with the password its custodians' shares rebuilt.</summary>
    private static SecretBytes OpenWithPasswordShares(IReadOnlyList<ScHsmShareFile> files, DkekImportRequest request, CancellationToken cancellation)
    {
        if (files.Count != 1)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "PasswordSharesForOneFile",
                "-PasswordSharePrime and -PasswordShare open one threshold-password share file; import several files with one call each, or with -SharePassword.");
        byte[] password = request.ThresholdPassword!.Span.ToArray();
        try { return WithTarget(() => files[0].Decrypt(password, cancellation: cancellation), request.Paths[0]); }
        finally { Array.Clear(password); }
    }

    /// <summary>
    /// Runs <paramref name="work"/>; a failure comes out as a <see cref="PicoHsmException"/> (translated), and
    /// one that names no target is made to name <paramref name="target"/> (the file).
    /// </summary>
    internal static T WithTarget<T>(Func<T> work, object target)
    {
        try { return work(); }
        catch (Exception ex) when (ex is not OperationCanceledException && ex is not PicoHsmException { Target: not null }
            && ErrorTranslation.Translate(ex) is { } e)
        {
            throw new PicoHsmException(e.Kind, e.Reason, e.Message, e.Target ?? target, ex);
        }
    }
}
