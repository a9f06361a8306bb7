using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Dkek;
using PicoHsm.Keys;

namespace PicoHsm.Backup;

/// <summary>
/// Backup files between the cmdlets and the backends: write, read, restore and test one file.
/// The cmdlets never see which backend or file format is behind a backup.
/// </summary>
public static class BackupFiles
{
    /// <summary>The refusal to replace an existing backup file without -Force.</summary>
    public static PicoHsmException FileExists(string path) => new(PicoErrorKind.ResourceExists, "FileExists",
        $"'{path}' already exists. Choose another path, or use -Force to replace it.", path);

    /// <summary>
    /// One exported key's file, written durably (<see cref="AtomicFile"/>) by both backends. An existing
    /// file is refused before <paramref name="wrap"/> asks the device for anything, and again when one
    /// appeared at the path while the key was being wrapped (the write's no-replace rename lost the race).
    /// </summary>
    public static PicoKeyBackup Write(string path, bool overwrite, Func<WrappedKeyBytes> wrap)
    {
        if (!overwrite && File.Exists(path))
            throw FileExists(path);
        var wrapped = wrap();
        try
        {
            AtomicFile.WriteAllBytes(path, wrapped.Bytes, overwrite);
        }
        catch (IOException) when (!overwrite && File.Exists(path))
        {
            throw FileExists(path);
        }
        return wrapped.DescribeAt(path);
    }

    /// <summary>
    /// "label-id.pkb"; on a SmartCard-HSM also the key reference ("label-id-k3.wky"), since two
    /// keys there may share label and id (sc-hsm-tool restores a description as it is).
    /// </summary>
    public static string DefaultFileName(PicoKey key, string extension) =>
        $"{DkekCeremony.SafeFileName(string.IsNullOrEmpty(key.Label) ? "key" : key.Label!)}-{(key.Id.Length == 0 ? "noid" : key.Id)}" +
        $"{(key.KeyReference is int r ? $"-k{r}" : "")}{extension}";

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
        // sc-hsm-tool files are DER (a SEQUENCE, 0x30); ours are JSON text.
        if (bytes.Length > 0 && bytes[0] == 0x30)
            return DescribeScHsm(path, bytes);
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

    /// <summary>An sc-hsm-tool --wrap-key file: the blob names its DKEK and key type; the PKCS#15 description its id and label.</summary>
    internal static PicoKeyBackup DescribeScHsm(string path, byte[] bytes)
    {
        ScHsmWrappedKeyFile file;
        ScHsmKeyBlob blob;
        ScHsmKeyDescription? description;
        try
        {
            file = ScHsmWrappedKeyFile.Read(bytes);
            blob = file.ParseKeyBlob();
            description = file.ParseDescription();
        }
        catch (Exception ex) when (ex is ScHsmFormatException or FormatException or System.Formats.Asn1.AsnContentException)
        {
            throw new PicoHsmException(PicoErrorKind.InvalidData, "BackupCorrupt",
                $"'{path}' is not a readable sc-hsm-tool wrapped-key file: {ex.Message}", path, ex);
        }
        // The public key: from the CV request / certificate element (the card keeps no other copy).
        var publicKey = ScHsmCardFiles.ReadPublicKey(file.Certificate, description?.KeySizeBits);
        // The PRKD and certificate beside the blob are not under its CMAC: one that contradicts the blob is
        // refused here, before a check or a restore reaches the card.
        var inconsistent = ScHsmConsistency.Problems(blob, description, publicKey);
        if (inconsistent.Count > 0)
            throw new PicoHsmException(PicoErrorKind.InvalidData, "BackupInconsistent",
                $"'{path}' does not agree with itself: {string.Join(" ", inconsistent)} Its description or certificate was changed or belongs to another key; use another copy of the backup.", path);
        int size = description?.KeySizeBits ?? publicKey?.SizeBits ?? 0;
        if (size == 0 && blob.Kind == KeyKind.Aes && blob.Ciphertext.Length == 32) size = 128; // 8 + 2 + 16 bytes in two blocks
        return new PicoKeyBackup
        {
            Path = path,
            Format = "ScHsmTool",
            Id = description?.Id is { } id ? Convert.ToHexString(id).ToLowerInvariant() : null,
            Label = description?.Label,
            KeyClass = blob.Kind == KeyKind.Aes ? "SecretKey" : "PrivateKey",
            KeyType = blob.Kind,
            Size = size,
            Curve = publicKey?.Curve,
            Kcv = blob.KcvHex,
            Sha256 = Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant(),
            Mechanism = "SmartCard-HSM WRAP KEY",
            HasCertificate = file.CertificateIsX509,
            HasPublicKey = publicKey is not null,
            PublicKeyFingerprint = publicKey?.Fingerprint,
            KeyReference = description?.KeyReference,
            ScHsmFile = bytes,
        };
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
        Authenticated = f.IsAuthenticated,
        Content = f,
    };
}
