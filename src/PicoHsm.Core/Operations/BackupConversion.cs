using System.Security.Cryptography;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Operations;

/// <summary>
/// Moves key backups from one DKEK to another on an air-gapped host, with no device: each key is
/// unwrapped under the old DKEK in this process's memory, wrapped again under the new DKEK, and the
/// new file is proved by the offline check (KCV, integrity, and the key against the file's public key)
/// before it is written. Every buffer that held the key is zeroed; only the converted backup is written.
/// Everything else in the file (id, label, attributes, public key, certificate, sc-hsm-tool header fields
/// and description) is carried over as it was. A .pkb of format version 2 has its authentication tag
/// checked under the old DKEK and gets a new one under the new DKEK; a version 1 file stays version 1.
/// </summary>
public static class BackupConversion
{
    /// <summary>
    /// Converts the backup at <paramref name="sourcePath"/> (a .pkb or an sc-hsm-tool .wky) and writes it to
    /// <paramref name="destinationPath"/> (atomically, owner-only). The result is the offline check of the written bytes.
    /// </summary>
    public static PicoBackupTestResult Convert(string sourcePath, SecretBytes oldDkek, SecretBytes newDkek, string destinationPath, bool overwrite)
    {
        ArgumentNullException.ThrowIfNull(oldDkek);
        ArgumentNullException.ThrowIfNull(newDkek);
        if (string.Equals(Path.GetFullPath(sourcePath), Path.GetFullPath(destinationPath), StringComparison.Ordinal))
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "WouldOverwriteSource",
                $"The converted backup would replace '{sourcePath}' itself. Write it to another directory; keep the old backup until the new one is proved on a device.", sourcePath);
        var backup = BackupFiles.Read(sourcePath);
        byte[] converted = ConvertBytes(backup, oldDkek, newDkek);
        var check = Verify(converted, backup, newDkek, destinationPath);
        if (!check.Passed)
            throw new PicoHsmException(PicoErrorKind.InvalidData, "ConversionCheckFailed",
                $"The converted backup of '{sourcePath}' did not pass the offline check ({string.Join("; ", check.Problems)}); nothing was written for it. Keep using the old backup and report this.", sourcePath);
        AtomicFile.WriteAllBytes(destinationPath, converted, overwrite);
        return check;
    }

    /// <summary>The converted file's bytes (nothing is written). The backup's KCV must be the old DKEK's.</summary>
    public static byte[] ConvertBytes(PicoKeyBackup backup, SecretBytes oldDkek, SecretBytes newDkek)
    {
        ArgumentNullException.ThrowIfNull(backup);
        if (oldDkek.Length != 32 || newDkek.Length != 32) throw new ArgumentException("A DKEK is 32 bytes.");
        string oldKcv = Kcv(oldDkek), newKcv = Kcv(newDkek);
        if (oldKcv == newKcv)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "SameDkek",
                $"The old and the new shares give the same DKEK ({oldKcv}): there is nothing to convert. Bring the shares of the new DKEK.", null);
        if (backup.Kcv != oldKcv)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, backup.Kcv == newKcv ? "AlreadyConverted" : "OtherDkek",
                backup.Kcv == newKcv
                    ? $"'{backup.Path}' is already wrapped under the new DKEK {newKcv}; leave it out."
                    : $"'{backup.Path}' is wrapped under DKEK {backup.Kcv}, but the old shares give DKEK {oldKcv}. Bring the shares of DKEK {backup.Kcv}, or leave this backup out.", backup.Path);
        return backup.ScHsmFile is { } wky ? ConvertScHsm(wky, oldDkek, newDkek) : ConvertPkb(backup.Content!, oldDkek, newDkek, newKcv);
    }

    /// <summary>An sc-hsm-tool file: the blob decrypted under the old DKEK and built again under the new one, header fields kept.</summary>
    private static byte[] ConvertScHsm(byte[] wky, SecretBytes oldDkek, SecretBytes newDkek)
    {
        var file = ScHsmWrappedKeyFile.Read(wky);
        var blob = file.ParseKeyBlob();
        ScHsmKeyBlob rebuilt;
        try
        {
            using var material = blob.Decrypt(oldDkek.Span);
            rebuilt = ScHsmKeyBlob.Build(newDkek.Span, material, blob.AllowedAlgorithms, randomPrefix: null,
                defaultAlgorithm: blob.DefaultAlgorithm, accessConditions: blob.AccessConditions, keyOid: blob.KeyOid);
        }
        catch (ScHsmWrongDkekException ex)
        {
            throw new PicoHsmException(PicoErrorKind.InvalidData, "BackupDamaged",
                $"The key blob does not verify under the old DKEK: {ex.Message} Nothing was converted for it.", null, ex);
        }
        return new ScHsmWrappedKeyFile(rebuilt.ToArray(), file.PrivateKeyDescription, file.Certificate).ToArray();
    }

    /// <summary>A .pkb: RFC 5649 (or RFC 3394) unwrap under the old DKEK, wrap under the new; every other field as it was.</summary>
    private static byte[] ConvertPkb(WrappedKeyFile f, SecretBytes oldDkek, SecretBytes newDkek, string newKcv)
    {
        bool pad = f.WrapMechanism == "CKM_AES_KEY_WRAP_PAD";
        if (!pad && f.WrapMechanism != "CKM_AES_KEY_WRAP")
            throw new PicoHsmException(PicoErrorKind.NotSupported, "MechanismNotConvertible",
                $"The key is wrapped with {f.WrapMechanism}, which cannot be unwrapped off a device. Restore it on a device holding the old DKEK and back it up again under the new one.", f.SourceName);
        // A version 2 file's tag is checked under the old DKEK first: a changed attribute must not come out
        // of the conversion with a fresh, valid tag.
        if (f.Authentication is { } auth && !auth.VerifyOffline(f, oldDkek.Span))
            throw new PicoHsmException(PicoErrorKind.InvalidData, "BackupTampered",
                "The backup has been changed since it was made: its authentication tag does not verify under the old DKEK, so its label, id, key type or usage flags cannot be trusted. Nothing was converted for it; use another copy.", f.SourceName);
        byte[]? key = null;
        try
        {
            try
            {
                key = pad ? AesKeyWrap.UnwrapPad(oldDkek.Span, f.WrappedKey) : AesKeyWrap.Unwrap(oldDkek.Span, f.WrappedKey);
            }
            catch (CryptographicException ex)
            {
                throw new PicoHsmException(PicoErrorKind.InvalidData, "BackupDamaged",
                    "The wrapped key does not unwrap under the old DKEK although the KCV names it: the file is damaged. Nothing was converted for it.", f.SourceName, ex);
            }
            byte[] wrapped = pad ? AesKeyWrap.WrapPad(newDkek.Span, key) : AesKeyWrap.Wrap(newDkek.Span, key);
            var converted = new WrappedKeyFile
            {
                Created = f.Created, ToolVersion = ProductInfo.ToolVersion, SourceToken = f.SourceToken,
                KeyClass = f.KeyClass, KeyKind = f.KeyKind, SizeBits = f.SizeBits, CurveName = f.CurveName, CurveParameters = f.CurveParameters,
                Id = f.Id, Label = f.Label, Attributes = f.Attributes,
                WrapMechanism = f.WrapMechanism, WrapMechanismParameters = f.WrapMechanismParameters,
                WrappingKeyKcv = System.Convert.FromHexString(newKcv), WrappedKey = wrapped,
                PublicKeyInfo = f.PublicKeyInfo, Certificate = f.Certificate, CertificateLabel = f.CertificateLabel,
            };
            // Version 2 in, version 2 out: a new tag under a new MAC key wrapped by the new DKEK. A version 1
            // file stays version 1 (unauthenticated, with its warning): giving it a tag here would vouch
            // for attributes nobody checked. Back such a key up again from the token instead.
            if (f.Authentication is { } a)
                converted = converted.WithAuthentication(BackupAuthentication.CreateOffline(converted, newDkek.Span, a.KeyWrapMechanism));
            return converted.ToBytes();
        }
        finally
        {
            if (key is not null) CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>
    /// The offline check of the converted bytes under the new DKEK, and that nothing but the wrap changed
    /// (same id, label and public key as the source).
    /// </summary>
    private static PicoBackupTestResult Verify(byte[] converted, PicoKeyBackup source, SecretBytes newDkek, string destinationPath)
    {
        var written = source.ScHsmFile is not null
            ? BackupFiles.DescribeScHsm(destinationPath, converted)
            : BackupFiles.Describe(destinationPath, WrappedKeyFile.Read(converted, destinationPath), converted);
        var result = OfflineBackupCheck.Check(written, newDkek);
        var problems = result.Problems.ToList();
        if (result.Id != source.Id || result.Label != source.Label)
            problems.Add("The converted backup does not carry the source's id and label.");
        if (problems.Count == result.Problems.Length) return result;
        return new PicoBackupTestResult
        {
            Path = result.Path, Id = result.Id, Label = result.Label, Kcv = result.Kcv, Valid = result.Valid, DkekMatch = result.DkekMatch,
            Compatible = result.Compatible, Restorable = false, Problems = problems.ToArray(), Detail = result.Detail,
        };
    }

    private static string Kcv(SecretBytes dkek) => KeyCheckValue.ToHex(KeyCheckValue.Compute(dkek.Span));
}
