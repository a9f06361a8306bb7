using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;

namespace PicoHsm.Backup;

/// <summary>
/// What can be checked in an sc-hsm-tool wrapped-key file without the DKEK. The blob's CMAC (checked by
/// the card at UNWRAP KEY, and offline with the DKEK) covers the wrapped key and its header (key type,
/// algorithms, access conditions, key OID) only; the PKCS#15 description (PRKD: label, id, usage, size)
/// and the certificate or CV request stored beside it are not covered, so anyone can change them. They
/// must at least agree with the blob: the same key type, and the size the public key has. (That the
/// public key is the blob's key needs the DKEK: <see cref="ScHsmOfflineCheck"/> and the card's restore test.)
/// </summary>
public static class ScHsmConsistency
{
    public static IReadOnlyList<string> Problems(ScHsmKeyBlob blob, ScHsmKeyDescription? description, ScHsmPublicKey? publicKey)
    {
        var problems = new List<string>();
        if (description is not null && description.Kind is KeyKind.Rsa or KeyKind.Ec or KeyKind.Aes && description.Kind != blob.Kind)
            problems.Add($"The file's description (PRKD) says {description.Kind}, but the key blob holds {blob.Kind}.");
        if (publicKey is not null && publicKey.Kind is KeyKind.Rsa or KeyKind.Ec && publicKey.Kind != blob.Kind)
            problems.Add($"The file's {(publicKey.IsX509Certificate ? "certificate" : "CV request")} holds a {publicKey.Kind} public key, but the key blob holds {blob.Kind}.");
        if (description?.KeySizeBits is int d && d > 0 && publicKey is not null && publicKey.SizeBits > 0 && publicKey.Kind == description.Kind && d != publicKey.SizeBits)
            problems.Add($"The file's description (PRKD) says {d} bits, but its public key has {publicKey.SizeBits}.");
        return problems;
    }
}
