using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Devices;

/// <summary>What a restore should do beyond "put it back as it was".</summary>
public sealed record RestoreRequest(byte[]? NewId = null, string? NewLabel = null, bool Force = false, int? KeyReference = null);

/// <summary>Which kind of device a session talks to, for display and for scripts that branch on it.</summary>
public enum DeviceFamily
{
    /// <summary>A generic PKCS#11 token (SoftHSM2, a network HSM): C_WrapKey under an AES-256 DKEK object.</summary>
    Pkcs11Token,

    /// <summary>A SmartCard-HSM, Nitrokey HSM 2 or Pico HSM: the card's own DKEK commands over PC/SC.</summary>
    ScHsmCard,
}

/// <summary>
/// The one seam between the sessions (and everything above them) and a device family. A session
/// gets exactly one of these at connect and owns it: it is made once, keeps its caches (mechanisms,
/// the key catalogue's DKEK) for the session's life, and is disposed with the session (logout,
/// close). Nothing above this interface names a concrete backend; what only some devices can do
/// is asked for with a capability interface (<see cref="IScHsmDevice"/>, <see cref="IKeyGenerator"/>).
/// </summary>
public interface IDeviceBackend : IDisposable
{
    DeviceFamily Family { get; }

    /// <summary>Who this backend works for: the session id, the token, the lock, the login state.</summary>
    DeviceContext Context { get; }

    /// <summary>False once disposed, or once the device was found gone.</summary>
    bool IsOpen { get; }

    /// <summary>Whether a PKCS#11 module is part of the connection (false for a card reached through PC/SC only).</summary>
    bool HasPkcs11 { get; }

    /// <summary>The extension of the backup files this backend writes (".pkb", ".wky").</summary>
    string BackupExtension { get; }

    /// <summary>The DKEK state: one entry on a generic token, one per key domain on a SmartCard-HSM.</summary>
    IReadOnlyList<PicoDkek> GetDkek();

    /// <summary>Puts a whole DKEK on the device. False: the same DKEK was already there (nothing changed).</summary>
    bool ImportDkek(SecretBytes dkek, string label, byte[] id);

    /// <summary>The key catalogue: the keys that can be backed up (not the DKEK, not the device's own key).</summary>
    List<PicoKey> ListKeys();

    /// <summary>Wraps the key under the DKEK and writes the backup file (atomically, owner-only).</summary>
    PicoKeyBackup Export(PicoKey key, string path, bool overwrite);

    /// <summary>Wraps the key under the DKEK into the bytes of its backup file, as <see cref="Export"/> writes it; writes nothing.</summary>
    WrappedKeyBytes WrapForExport(PicoKey key);

    /// <summary>
    /// The pre-flight of a restore, changing nothing: DKEK present and matching, key type and size
    /// supported, target free (or replaced with <see cref="RestoreRequest.Force"/>, never the DKEK),
    /// or the same key already there. -WhatIf and Test-PicoKeyBackup -Session run exactly this.
    /// </summary>
    RestorePlan PlanRestore(PicoKeyBackup backup, RestoreRequest request);

    /// <summary>
    /// Plans again (<see cref="PlanRestore"/>) and acts on that plan: throws its first refusal, returns the
    /// existing key when it is already present, otherwise restores. Never overwrites without
    /// <see cref="RestoreRequest.Force"/>, and never the DKEK.
    /// </summary>
    PicoKey Restore(PicoKeyBackup backup, RestoreRequest request);

    /// <summary>DKEK match and compatibility, and with <paramref name="restoreTest"/> a proof that the key works.</summary>
    PicoBackupTestResult Test(PicoKeyBackup backup, bool restoreTest);

    /// <summary>Random bytes from the device's generator, or null when this connection has none to offer.</summary>
    byte[]? GenerateRandom(int count);
}

/// <summary>Devices that generate keys through this module (generic PKCS#11 tokens).</summary>
public interface IKeyGenerator
{
    PicoKey GenerateKey(KeyKind kind, int size, string? curve, byte[] id, string label, bool extractable);

    /// <summary>
    /// Why <see cref="GenerateKey"/> would refuse, changing nothing (for -WhatIf and before ShouldProcess):
    /// the id is held by any object (the DKEK's id is named as the DKEK's), the key type is not offered.
    /// Empty: it would go ahead. <see cref="GenerateKey"/> checks again and throws the first.
    /// </summary>
    IReadOnlyList<PicoHsmException> CheckGenerate(KeyKind kind, int size, string? curve, byte[] id);
}

/// <summary>
/// What only a SmartCard-HSM / Pico HSM can do: take DKEK shares into a key domain (the card
/// combines them itself), and INITIALIZE (wipe) the device.
/// </summary>
public interface IScHsmDevice
{
    /// <summary>The PC/SC reader the card sits in.</summary>
    string ReaderName { get; }

    /// <summary>Imports sc-hsm-tool XOR shares (32 bytes each) into <paramref name="keyDomain"/>.</summary>
    PicoDkek ImportShares(IReadOnlyList<SecretBytes> shares, int keyDomain = 0);

    /// <summary>Wipes and initialises the device (SO-PIN 8 bytes, user PIN, DKEK share count, key domains).</summary>
    void Initialize(ReadOnlySpan<byte> soPin8, ReadOnlySpan<byte> userPin, int dkekShares, int? keyDomains, byte retries = 3);
}
