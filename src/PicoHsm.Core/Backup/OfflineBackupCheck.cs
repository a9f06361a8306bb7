using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Dkek;
using PicoHsm.Keys;

namespace PicoHsm.Backup;

/// <summary>
/// Checks backups on an air-gapped host with the DKEK rebuilt in memory from its shares: the
/// KCV, the wrap's integrity, that the key parses, and that it is the key whose public half the
/// file carries. No device, and no key material written anywhere.
/// </summary>
public static class OfflineBackupCheck
{
    /// <summary>
    /// The DKEK from share files: sc-hsm-tool's (.pbe, XOR of all) or this module's (.dkekshare,
    /// any n of m). Passwords in file order. The caller disposes the result.
    /// </summary>
    public static SecretBytes RebuildDkek(IReadOnlyList<string> shareFiles, IReadOnlyList<char[]> passwords,
        CancellationToken cancellation = default, Action<string>? warning = null)
    {
        // A share others can read is attacked offline at leisure: say so (the caller's host warns).
        if (warning is not null)
            foreach (var f in shareFiles) if (DkekShareFile.PermissionWarning(f) is { } w) warning(w);
        var bytes = shareFiles.Select(File.ReadAllBytes).ToList();
        if (bytes.All(b => ScHsmDkekShares.LooksLikeShareFile(b)))
        {
            var pw = passwords.Select(p => System.Text.Encoding.UTF8.GetBytes(p)).ToList();
            try { return ScHsmOfflineCheck.RebuildFromScHsmShares(bytes, pw, cancellation: cancellation); }
            finally { foreach (var p in pw) CryptographicOperations.ZeroMemory(p); }
        }
        var files = shareFiles.Select(DkekCeremony.ReadShareFile).ToList();
        DkekCeremony.CheckSet(files, shareFiles);
        return DkekCeremony.Rebuild(files, passwords, cancellation: cancellation);
    }

    public static PicoBackupTestResult Check(string path, SecretBytes dkek)
    {
        PicoKeyBackup b;
        try
        {
            b = BackupFiles.Read(path);
        }
        catch (PicoHsmException ex)
        {
            return new PicoBackupTestResult { Path = path, Valid = false, Problems = new[] { ex.Message } };
        }
        if (b.ScHsmFile is { } wky) return ScHsmOfflineCheck.Check(wky, dkek, path);
        return CheckWrappedKeyFile(b, b.Content!, dkek);
    }

    /// <summary>Checks a backup already read, or built in memory and not yet written (a converted backup).</summary>
    public static PicoBackupTestResult Check(PicoKeyBackup backup, SecretBytes dkek) =>
        backup.ScHsmFile is { } wky ? ScHsmOfflineCheck.Check(wky, dkek, backup.Path) : CheckWrappedKeyFile(backup, backup.Content!, dkek);

    /// <summary>A .pkb: RFC 5649 unwrap in memory (its integrity value proves the DKEK and the bytes), then the key against its public half.</summary>
    private static PicoBackupTestResult CheckWrappedKeyFile(PicoKeyBackup b, WrappedKeyFile f, SecretBytes dkek)
    {
        var problems = new List<string>();
        string kcv = KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span));
        bool dkekMatch = kcv == b.Kcv;
        if (!dkekMatch)
            return Result(b, false, problems.Append($"The backup is wrapped under DKEK {b.Kcv}; the shares give DKEK {kcv}.").ToArray(), null);
        if (f.Authentication is { } auth && !auth.VerifyOffline(f, dkek.Span))
            return new PicoBackupTestResult
            {
                Path = b.Path, Id = b.Id, Label = b.Label, Kcv = b.Kcv, Valid = false, DkekMatch = true, Restorable = false,
                Problems = new[] { "The backup has been changed since it was made: its authentication tag (HMAC-SHA256 under a key wrapped by the shares' key) does not verify, so its label, id, key type or usage flags cannot be trusted. Do not restore it; use another copy." },
            };
        if (f.WrapMechanism is not ("CKM_AES_KEY_WRAP_PAD" or "CKM_AES_KEY_WRAP"))
            return Result(b, true, new[] { $"{f.WrapMechanism} cannot be checked offline." }, null);
        byte[] key;
        try
        {
            key = f.WrapMechanism == "CKM_AES_KEY_WRAP_PAD"
                ? AesKeyWrap.UnwrapPad(dkek.Span, f.WrappedKey)
                : AesKeyWrap.Unwrap(dkek.Span, f.WrappedKey);
        }
        catch (CryptographicException)
        {
            return Result(b, false, new[] { "The wrapped key does not unwrap under this DKEK: the file is damaged." }, null);
        }
        try
        {
            switch (f.KeyKind)
            {
                case KeyKind.Rsa:
                {
                    using var rsa = RSA.Create();
                    rsa.ImportPkcs8PrivateKey(key, out _);
                    return Compare(b, f, rsa.ExportSubjectPublicKeyInfo(), rsa.KeySize);
                }
                case KeyKind.Ec:
                {
                    using var ec = ECDsa.Create();
                    ec.ImportPkcs8PrivateKey(key, out _);
                    return Compare(b, f, ec.ExportSubjectPublicKeyInfo(), ec.KeySize);
                }
                default:
                    return key.Length * 8 == f.SizeBits
                        ? Result(b, true, Array.Empty<string>(), $"The key unwraps under DKEK {kcv} (integrity checked) and is {f.SizeBits} bits as recorded.")
                        : Result(b, false, new[] { $"The key is {key.Length * 8} bits, the file says {f.SizeBits}." }, null);
            }
        }
        catch (CryptographicException ex)
        {
            return Result(b, false, new[] { $"The unwrapped key does not parse as a {f.KeyKind} key: {ex.Message}" }, null);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    private static PicoBackupTestResult Compare(PicoKeyBackup b, WrappedKeyFile f, byte[] derivedSpki, int bits)
    {
        if (f.PublicKeyInfo is null)
            return Result(b, true, Array.Empty<string>(), "The key unwraps and parses; the file carries no public key to compare it with.");
        return derivedSpki.AsSpan().SequenceEqual(f.PublicKeyInfo)
            ? Result(b, true, Array.Empty<string>(), $"The key unwraps, parses ({f.KeyKind} {bits} bits) and matches the file's public key ({PublicKeyInfo.Fingerprint(derivedSpki)}).")
            : Result(b, false, new[] { "The unwrapped private key does not match the public key in the file." }, null);
    }

    private static PicoBackupTestResult Result(PicoKeyBackup b, bool ok, string[] problems, string? detail) => new()
    {
        Path = b.Path, Id = b.Id, Label = b.Label, Kcv = b.Kcv, Valid = true, DkekMatch = problems.All(p => !p.Contains("DKEK")),
        Restorable = ok && problems.Length == 0, Problems = problems,
        Detail = detail is not null && b.Authenticated == true ? detail + " Its authentication tag verifies." : detail,
        Warnings = b.AuthenticationWarning is { } w ? new[] { w } : Array.Empty<string>(),
    };
}
