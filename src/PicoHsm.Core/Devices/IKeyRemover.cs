using PicoHsm.Keys;

namespace PicoHsm.Devices;

/// <summary>
/// Devices that remove a key with everything that describes it (Remove-PicoKey): on a generic PKCS#11 token the
/// private or secret key with its public key and certificate (same CKA_ID); on a SmartCard-HSM / Pico HSM the key
/// file CC kid, its PRKD C4 kid and its certificate / request CE kid. Never the DKEK (nor its record), never the
/// card's own device key.
/// </summary>
public interface IKeyRemover
{
    /// <summary>Removes <paramref name="key"/> (found again on the device by its key reference or id); returns what was removed, in words.</summary>
    string RemoveKey(PicoKey key);
}
