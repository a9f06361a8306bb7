using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Devices.ScHsm.Shares;
using PicoHsm.Dkek;
using PicoHsm.Keys;

namespace PicoHsm.Backup;

/// <summary>
/// Checks an sc-hsm-tool wrapped-key file against a DKEK on an air-gapped host, without any card:
/// the blob's KCV names this DKEK, its CMAC verifies, the key decrypts and parses, and the private
/// key is the one whose public key the file carries (CV request or certificate). Nothing is written.
/// Also rebuilds a DKEK from sc-hsm-tool share files (XOR) or from this module's n-of-m share files.
/// </summary>
public static class ScHsmOfflineCheck
{
    /// <summary>
    /// Valid: the file parses. DkekMatch: the blob's KCV is the DKEK's. Restorable: the CMAC verifies, the
    /// key decrypts, and (RSA/EC with a public key in the file) the private key matches it.
    /// </summary>
    public static PicoBackupTestResult Check(byte[] wkyFile, SecretBytes dkek, string? path = null)
    {
        ArgumentNullException.ThrowIfNull(wkyFile);
        ArgumentNullException.ThrowIfNull(dkek);
        path ??= "";
        ScHsmWrappedKeyFile file;
        ScHsmKeyBlob blob;
        ScHsmKeyDescription? description;
        try
        {
            file = ScHsmWrappedKeyFile.Read(wkyFile);
            blob = file.ParseKeyBlob();
            description = file.ParseDescription();
        }
        catch (Exception ex) when (ex is ScHsmFormatException or FormatException or ArgumentException)
        {
            return new PicoBackupTestResult { Path = path, Valid = false, Problems = new[] { $"Not a readable sc-hsm-tool wrapped-key file: {ex.Message}" } };
        }
        string? id = description?.Id is { } i ? Convert.ToHexString(i).ToLowerInvariant() : null;
        string kcv = blob.KcvHex;
        if (dkek.Length != 32)
            return new PicoBackupTestResult { Path = path, Id = id, Label = description?.Label, Kcv = kcv, Valid = true, Problems = new[] { "A DKEK is 32 bytes." } };

        string dkekKcv = KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span));
        if (!blob.IsFor(dkek.Span))
            return new PicoBackupTestResult
            {
                Path = path, Id = id, Label = description?.Label, Kcv = kcv, Valid = true, DkekMatch = false, Restorable = false,
                Problems = new[] { $"The key was wrapped under the DKEK with KCV {kcv}, not under the DKEK given (KCV {dkekKcv})." },
            };

        var problems = new List<string>();
        string detail;
        bool restorable;
        if (!blob.VerifyMac(dkek.Span))
        {
            problems.Add("The key blob's CMAC does not verify under the DKEK: the file was altered or damaged.");
            restorable = false;
            detail = "KCV matches; CMAC fails.";
        }
        else
        {
            try
            {
                using var material = blob.Decrypt(dkek.Span);
                var pub = ScHsmCardFiles.ReadPublicKey(file.Certificate, description?.KeySizeBits);
                if (material is ScHsmAesKeyMaterial aes)
                {
                    restorable = true;
                    detail = $"KCV and CMAC verify; AES-{aes.Key.Length * 8} key decrypted.";
                }
                else if (pub is null)
                {
                    restorable = true;
                    detail = "KCV and CMAC verify; the key decrypts and parses. The file carries no public key to compare it with.";
                }
                else if (ScHsmPublicKeyCheck.MatchesPublicKey(material, pub.SubjectPublicKeyInfo))
                {
                    restorable = true;
                    detail = $"KCV and CMAC verify; the private key matches the file's public key ({pub.Fingerprint}).";
                }
                else
                {
                    restorable = false;
                    problems.Add("The decrypted private key does not match the public key in the file (certificate / CV request).");
                    detail = "KCV and CMAC verify; public key mismatch.";
                }
                // The PRKD and certificate are not under the CMAC: they must agree with the blob.
                foreach (var p in ScHsmConsistency.Problems(blob, description, pub))
                {
                    problems.Add(p);
                    restorable = false;
                }
            }
            catch (Exception ex) when (ex is ScHsmFormatException or CryptographicException or FormatException or ArgumentException)
            {
                restorable = false;
                problems.Add($"The key decrypts but does not parse: {ex.Message}");
                detail = "KCV and CMAC verify; key content malformed.";
            }
        }
        return new PicoBackupTestResult
        {
            Path = path, Id = id, Label = description?.Label, Kcv = kcv, Valid = true, DkekMatch = true, Compatible = null,
            Restorable = restorable, Problems = problems.ToArray(), Detail = detail,
        };
    }

    /// <summary>Reads and checks the file at <paramref name="path"/>.</summary>
    public static PicoBackupTestResult Check(string path, SecretBytes dkek)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new PicoBackupTestResult { Path = path, Valid = false, Problems = new[] { $"Cannot read '{path}': {ex.Message}" } };
        }
        return Check(bytes, dkek, path);
    }

    /// <summary>
    /// The DKEK from sc-hsm-tool share files (.pbe): each decrypted with its password, then XORed. A wrong
    /// password throws <see cref="PicoHsmException"/> naming the file's position. The caller disposes the result.
    /// </summary>
    public static SecretBytes RebuildFromScHsmShares(IReadOnlyList<byte[]> shareFiles, IReadOnlyList<byte[]> passwords,
        int iterations = ScHsmShareFile.DefaultIterations, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(shareFiles);
        ArgumentNullException.ThrowIfNull(passwords);
        if (shareFiles.Count == 0 || shareFiles.Count != passwords.Count)
            throw new ArgumentException("Give one password per share file (at least one file).");
        var shares = DecryptScHsmShares(shareFiles, passwords, iterations, cancellation);
        try
        {
            return ScHsmDkekShares.Combine(shares);
        }
        finally
        {
            foreach (var s in shares) s.Dispose();
        }
    }

    /// <summary>The decrypted 32-byte shares of sc-hsm-tool share files, for <see cref="ScHsmCardBackend.ImportShares"/>.</summary>
    public static List<SecretBytes> DecryptScHsmShares(IReadOnlyList<byte[]> shareFiles, IReadOnlyList<byte[]> passwords,
        int iterations = ScHsmShareFile.DefaultIterations, CancellationToken cancellation = default)
    {
        if (shareFiles.Count != passwords.Count) throw new ArgumentException("Give one password per share file.");
        var list = new List<SecretBytes>();
        try
        {
            for (int n = 0; n < shareFiles.Count; n++)
            {
                ScHsmShareFile f;
                try
                {
                    f = ScHsmShareFile.Read(shareFiles[n]);
                }
                catch (Exception ex) when (ex is ScHsmFormatException or FormatException or ArgumentException)
                {
                    throw new PicoHsmException(PicoErrorKind.InvalidData, "NotAShareFile", $"Share file {n + 1} is not an sc-hsm-tool DKEK share file: {ex.Message}", n, ex);
                }
                try
                {
                    list.Add(f.Decrypt(passwords[n], iterations, cancellation));
                }
                catch (ScHsmWrongPasswordException ex)
                {
                    throw new PicoHsmException(PicoErrorKind.AuthenticationFailed, "WrongSharePassword",
                        $"Share file {n + 1} did not decrypt: its password is wrong (or the file is damaged). Ask its custodian again.", n, ex);
                }
            }
            return list;
        }
        catch
        {
            foreach (var s in list) s.Dispose();
            throw;
        }
    }

    /// <summary>The DKEK from this module's n-of-m share files (.dkekshare), as Import-PicoDkek rebuilds it.</summary>
    public static SecretBytes RebuildFromDkekShares(IReadOnlyList<DkekShareFile> files, IReadOnlyList<char[]> passwords,
        CancellationToken cancellation = default) =>
        DkekCeremony.Rebuild(files, passwords, cancellation: cancellation);
}
