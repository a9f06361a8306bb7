using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Dkek;

namespace PicoHsm.Operations;

/// <summary>What Import-PicoDkek was asked to do.</summary>
/// <param name="Paths">The share files, resolved: all .dkekshare (any n of m) or all sc-hsm-tool .pbe.</param>
/// <param name="Id">CKA_ID of the DKEK object on a generic token, hex.</param>
/// <param name="Label">Label of the DKEK object on a generic token; the share files' label when null.</param>
/// <param name="KeyDomain">SmartCard-HSM / Pico HSM: the key domain sc-hsm-tool shares go to.</param>
/// <param name="ThresholdPassword">An sc-hsm-tool threshold-password share file: its password, rebuilt by the
/// caller from the custodians' password shares (which the cmdlet takes as SecureStrings); zeroed by the caller.</param>
public sealed record DkekImportRequest(
    IReadOnlyList<string> Paths,
    string Id = "01",
    string? Label = null,
    int KeyDomain = 0,
    SecretBytes? ThresholdPassword = null);

/// <summary>
/// Rebuilds a DKEK from share files and puts it on a device: tells .dkekshare from sc-hsm-tool
/// .pbe files by their content, opens them (passwords from the host, or sc-hsm-tool password
/// shares combined), and imports the DKEK (a SmartCard-HSM takes sc-hsm-tool shares one by one).
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
        DkekCeremony.CheckSet(files, paths);
        string kcv = files[0].KcvHex;
        string token = device.Context.TokenLabel ?? "";

        var current = device.GetDkek().FirstOrDefault(d => d.Present && d.KeyCheckValue is not null);
        if (current?.KeyCheckValue is { } have && have != kcv)
            throw new PicoHsmException(PicoErrorKind.ResourceExists, "OtherDkekPresent",
                $"The token '{token}' already holds DKEK {have}; these shares are of DKEK {kcv}. Backups cannot move between DKEKs; use a fresh token or the shares of {have}.", device.Context);

        if (!host.ShouldProcess($"token '{token}'", $"Import DKEK {kcv} rebuilt from {files.Count} of {files[0].ShareCount} shares"))
            return Array.Empty<PicoDkek>();

        var names = paths.Select((p, i) => $"share {files[i].Index} of {files[i].ShareCount} ({Path.GetFileName(p)})").ToList();
        using var passwords = new PasswordLease(host.GetPasswords(names, confirm: false));
        using SecretBytes dkek = DkekCeremony.Rebuild(files, passwords.Values,
            i => host.Progress(new OperationProgress($"Decrypting {names[i]}", 100 * i / files.Count)), host.Cancellation);
        host.Progress(new OperationProgress("Decrypting share files", 100, Completed: true));

        bool imported = device.ImportDkek(dkek, request.Label ?? files[0].Label, Convert.FromHexString(request.Id));
        if (!imported)
            host.Warning($"The token '{token}' already holds DKEK {kcv}; nothing was changed.");
        var state = device.GetDkek();
        var result = state.FirstOrDefault(d => d.KeyCheckValue == kcv) ?? state[0];
        return new[]
        {
            new PicoDkek
            {
                Present = result.Present, KeyCheckValue = result.KeyCheckValue, KcvVerified = result.KcvVerified, Label = result.Label, Id = result.Id,
                Threshold = files[0].Threshold, ShareCount = files[0].ShareCount, ShareFiles = paths.ToArray(), DeviceFamily = result.DeviceFamily,
                TokenLabel = result.TokenLabel, TokenSerial = result.TokenSerial, Status = imported ? "Imported" : "Already present",
            },
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
        var shares = new List<SecretBytes>();
        string token = device.Context.TokenLabel ?? "";
        try
        {
            if (request.ThresholdPassword is not null)
                shares.Add(OpenWithPasswordShares(files, request, host.Cancellation));
            else
            {
                var names = paths.Select(p => $"sc-hsm-tool share '{Path.GetFileName(p)}'").ToList();
                using var passwords = new PasswordLease(host.GetPasswords(names, confirm: false));
                for (int i = 0; i < files.Count; i++)
                {
                    host.Cancellation.ThrowIfCancellationRequested();
                    host.Progress(new OperationProgress($"Opening {names[i]}", 100 * i / files.Count));
                    byte[] pw = System.Text.Encoding.UTF8.GetBytes(passwords.Values[i]);
                    try
                    {
                        shares.Add(files[i].Decrypt(pw, cancellation: host.Cancellation));
                    }
                    catch (ScHsmWrongPasswordException ex)
                    {
                        throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "ShareFileWrongPassword",
                            $"The password for '{paths[i]}' is wrong (or the file is damaged). Nothing was imported; check the password with its custodian.", paths[i], ex);
                    }
                    finally { Array.Clear(pw); }
                }
                host.Progress(new OperationProgress("Opening sc-hsm-tool share files", 100, Completed: true));
            }
            using var dkek = ScHsmDkekShares.Combine(shares);
            string kcv = KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span));
            if (!host.ShouldProcess($"token '{token}'", $"Import {files.Count} sc-hsm-tool share(s) of DKEK {kcv}"))
                return Array.Empty<PicoDkek>();
            if (device is IScHsmDevice card)
                card.ImportShares(shares, request.KeyDomain);
            else if (!device.ImportDkek(dkek, request.Label ?? "dkek", Convert.FromHexString(request.Id)))
                host.Warning($"The token '{token}' already holds DKEK {kcv}; nothing was changed.");
            return device.GetDkek();
        }
        finally
        {
            foreach (var s in shares) s.Dispose();
        }
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

    /// <summary>Runs <paramref name="work"/>; a failure that names no target is made to name <paramref name="target"/> (the file).</summary>
    internal static T WithTarget<T>(Func<T> work, object target)
    {
        try { return work(); }
        catch (Exception ex) when (ex is not OperationCanceledException && ErrorTranslation.Translate(ex) is { Target: null } e)
        {
            throw new PicoHsmException(e.Kind, e.Reason, e.Message, target, ex);
        }
    }
}
