using PicoHsm.Dkek;
using PicoHsm.Keys;

namespace PicoHsm.Backends;

/// <summary>What a restore should do beyond "put it back as it was".</summary>
public sealed record RestoreRequest(byte[]? NewId = null, string? NewLabel = null, bool Force = false, int? KeyReference = null);

/// <summary>
/// DKEK work on one device family. The cmdlets talk only to this: a generic PKCS#11 token
/// (<see cref="Pkcs11DkekBackend"/>, C_WrapKey under an AES DKEK object) and a SmartCard-HSM /
/// Pico HSM (the card's own commands over PC/SC) look the same from above.
/// </summary>
public interface IDkekBackend
{
    /// <summary>"Pkcs11" or "ScHsmCard".</summary>
    string Name { get; }

    /// <summary>The extension of the backup files this backend writes (".pkb", ".wky").</summary>
    string BackupExtension { get; }

    /// <summary>The DKEK state: one entry on a generic token, one per key domain on a SmartCard-HSM.</summary>
    IReadOnlyList<PicoDkek> GetDkek();

    /// <summary>Puts a whole DKEK on the device. False: the same DKEK was already there (nothing changed).</summary>
    bool ImportDkek(SecretBytes dkek, string label, byte[] id);

    /// <summary>The keys that can be backed up (not the DKEK, not the device's own key).</summary>
    List<PicoKey> ListKeys();

    /// <summary>Wraps the key under the DKEK and writes the backup file (atomically, owner-only).</summary>
    PicoKeyBackup Export(PicoKey key, string path, bool overwrite);

    /// <summary>Checks compatibility first, then restores. Never overwrites without <see cref="RestoreRequest.Force"/>.</summary>
    PicoKey Restore(PicoKeyBackup backup, RestoreRequest request);

    /// <summary>DKEK match and compatibility, and with <paramref name="restoreTest"/> a proof that the key works.</summary>
    PicoBackupTestResult Test(PicoKeyBackup backup, bool restoreTest);
}
