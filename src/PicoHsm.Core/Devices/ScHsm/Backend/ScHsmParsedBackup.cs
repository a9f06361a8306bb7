using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Formats;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>An sc-hsm-tool wrapped-key file read for a restore or a restore test: blob, PRKD, public key.</summary>
internal sealed record ScHsmParsedBackup(ScHsmWrappedKeyFile File, ScHsmKeyBlob Blob, ScHsmKeyDescription? Description, ScHsmPublicKey? PublicKey)
{
    /// <summary>Whether the card can unwrap this key type at all.</summary>
    public bool IsUnwrappableKeyType => Blob.KeyType is ScHsmKeyType.Rsa or ScHsmKeyType.RsaCrt or ScHsmKeyType.Ec or ScHsmKeyType.Aes;

    /// <summary>
    /// Reads <paramref name="backup"/>; a .pkb backup (generic tokens) is FormatNotSupported, an unreadable
    /// file BackupCorrupt.
    /// </summary>
    public static ScHsmParsedBackup Parse(PicoKeyBackup backup)
    {
        var raw = backup.ScHsmFile ?? throw new PicoHsmException(PicoErrorKind.NotSupported, "FormatNotSupported",
            $"'{backup.Path}' is a PicoHsm (.pkb) backup for generic PKCS#11 tokens; a SmartCard-HSM / Pico HSM restores sc-hsm-tool wrapped-key files (.wky) only. Restore it to a generic token.", backup.Path);
        try
        {
            var file = ScHsmWrappedKeyFile.Read(raw);
            var blob = file.ParseKeyBlob();
            var desc = file.ParseDescription();
            return new ScHsmParsedBackup(file, blob, desc, ScHsmCardFiles.ReadPublicKey(file.Certificate, desc?.KeySizeBits));
        }
        catch (Exception ex) when (ex is ScHsmFormatException or FormatException or ArgumentException)
        {
            throw new PicoHsmException(PicoErrorKind.InvalidData, "BackupCorrupt",
                $"'{backup.Path}' is not a readable sc-hsm-tool wrapped-key file: {ex.Message}", backup.Path, ex);
        }
    }
}
