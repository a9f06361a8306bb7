using System.Security.Cryptography;
using PicoHsm.Backup;
using PicoHsm.Dkek;
using PicoHsm.IO;
using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Backends;

/// <summary>
/// Backup files between the cmdlets and the backends: write, read, restore and test one file.
/// The cmdlets never see which backend or file format is behind a backup.
/// </summary>
public static class BackupFiles
{
    public static string DefaultFileName(PicoKey key) =>
        $"{DkekCeremony.SafeFileName(string.IsNullOrEmpty(key.Label) ? "key" : key.Label!)}-{(key.Id.Length == 0 ? "noid" : key.Id)}{WrappedKeyFile.Extension}";

    public static PicoKeyBackup Export(PicoHsmSession session, PicoKey key, string path, bool overwrite)
    {
        if (!overwrite && File.Exists(path))
            throw new PicoHsmException(PicoErrorKind.ResourceExists, "FileExists",
                $"'{path}' already exists. Choose another path, or use -Force to replace it.", path);
        var file = new Pkcs11DkekBackend(session).Export(key);
        byte[] bytes = file.ToBytes();
        AtomicFile.WriteAllBytes(path, bytes, overwrite);
        return Describe(path, file, bytes);
    }

    public static PicoKeyBackup Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PicoHsmException(PicoErrorKind.NotFound, "FileUnreadable", $"Cannot read '{path}': {ex.Message}", path, ex);
        }
        try
        {
            return Describe(path, WrappedKeyFile.Read(bytes, path), bytes);
        }
        catch (BackupFileException ex)
        {
            throw new PicoHsmException(ex.Reason == BackupFileReason.NotABackup ? PicoErrorKind.InvalidArgument : PicoErrorKind.InvalidData,
                "Backup" + ex.Reason, ex.Message, path, ex);
        }
    }

    internal static PicoKeyBackup Describe(string path, WrappedKeyFile f, byte[] bytes) => new()
    {
        Path = path,
        Format = "PicoHsm",
        Id = f.IdHex,
        Label = f.Label,
        KeyClass = f.KeyClass == KeyClass.Secret ? "SecretKey" : "PrivateKey",
        KeyType = f.KeyKind,
        Size = f.SizeBits,
        Curve = f.CurveName,
        Kcv = KeyCheckValue.ToHex(f.WrappingKeyKcv),
        Sha256 = Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant(),
        Created = f.Created,
        Mechanism = f.WrapMechanism,
        SourceToken = f.SourceToken.Model,
        SourceSerial = f.SourceToken.Serial,
        HasPublicKey = f.PublicKeyInfo is not null,
        HasCertificate = f.Certificate is not null,
        PublicKeyFingerprint = f.PublicKeyInfo is null ? null : PublicKeyInfo.Fingerprint(f.PublicKeyInfo),
        Content = f,
    };

    public static PicoKey Restore(PicoHsmSession session, PicoKeyBackup backup, byte[]? newId, string? newLabel, bool force)
    {
        var content = backup.Content ?? throw new PicoHsmException(PicoErrorKind.NotSupported, "FormatNotSupported",
            $"'{backup.Path}' is a {backup.Format} file, which this session's backend cannot restore.", backup.Path);
        return new Pkcs11DkekBackend(session).Restore(content, newId, newLabel, force);
    }

    /// <summary>
    /// Re-reads the file from disk (structure and digests), then with a session checks the DKEK
    /// and compatibility, and with <paramref name="restoreTest"/> proves the key works.
    /// </summary>
    public static PicoBackupTestResult Test(PicoHsmSession? session, string path, PicoKeyBackup? given, bool restoreTest)
    {
        PicoKeyBackup b;
        try
        {
            b = Read(path);
        }
        catch (PicoHsmException ex)
        {
            return new PicoBackupTestResult { Path = path, Id = given?.Id, Label = given?.Label, Valid = false, Problems = new[] { ex.Message } };
        }
        var problems = new List<string>();
        if (given is not null && given.Sha256 != b.Sha256)
            problems.Add($"The file changed since it was read: SHA-256 was {given.Sha256}, is now {b.Sha256}.");
        bool? dkekMatch = null, compatible = null, restorable = null;
        string? detail = null;
        if (session is not null && b.Content is not null)
        {
            var backend = new Pkcs11DkekBackend(session);
            // The target id may be taken by the very key this backup came from: that is not a
            // compatibility problem for a test, so occupancy is not checked here.
            var found = backend.CheckCompatibility(b.Content, null, force: true, out bool match);
            dkekMatch = match;
            compatible = found.Count == 0;
            problems.AddRange(found);
            if (restoreTest)
            {
                if (match && compatible == true)
                {
                    var (ok, d) = backend.RestoreTest(b.Content);
                    restorable = ok;
                    detail = d;
                    if (!ok) problems.Add(d);
                }
                else
                {
                    restorable = false;
                    detail = "Not tried: the backup does not fit this token.";
                }
            }
        }
        return new PicoBackupTestResult
        {
            Path = path, Id = b.Id, Label = b.Label, Kcv = b.Kcv, Valid = true, DkekMatch = dkekMatch, Compatible = compatible,
            Restorable = restorable, Problems = problems.ToArray(), Detail = detail,
        };
    }
}
