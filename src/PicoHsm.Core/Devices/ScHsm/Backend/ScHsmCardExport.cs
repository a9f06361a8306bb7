using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>A key exported under the DKEK as the file sc-hsm-tool --wrap-key writes (WRAP KEY, PRKD, CE file).</summary>
internal sealed class ScHsmCardExport(ScHsmCard card, ScHsmCardPin pin, ScHsmCardTransactions calls, ScHsmCardCatalogue catalogue)
{
    /// <summary>Writes <see cref="Wrap"/>'s file to <paramref name="path"/> (atomically; refuses an existing file unless <paramref name="overwrite"/>).</summary>
    public PicoKeyBackup Export(PicoKey key, string path, bool overwrite)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentException.ThrowIfNullOrEmpty(path);
        return BackupFiles.Write(path, overwrite, () => WrapForExport(key));
    }

    /// <summary>The file <see cref="Export"/> writes, as bytes.</summary>
    public WrappedKeyBytes WrapForExport(PicoKey key)
    {
        byte[] bytes = Wrap(key).ToArray();
        return new WrappedKeyBytes(bytes, p => BackupFiles.DescribeScHsm(p, bytes));
    }

    /// <summary>The wrapped-key file for <paramref name="key"/>, in memory.</summary>
    public ScHsmWrappedKeyFile Wrap(PicoKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return calls.Run($"wrap key {key.Id} '{key.Label}'", () =>
        {
            pin.EnsureVerified();
            byte kid = catalogue.ResolveKeyReference(key);
            byte[] blob;
            try
            {
                blob = card.WrapKey(kid);
            }
            catch (ScHsmCardException ex) when (ex.Error == ScHsmError.NoDkek)
            {
                // Say which key domains are complete: the generic message cannot tell "no DKEK" from "not this key's domain".
                var domains = card.EnumerateKeyDomains();
                string why = domains.Any(d => d.IsComplete)
                    ? $"the key's key domain has no complete DKEK (complete: {string.Join(", ", domains.Where(d => d.IsComplete).Select(d => d.KeyDomain))})"
                    : "the card has no complete DKEK (import all DKEK shares, then verify the PIN)";
                throw new PicoHsmException(PicoErrorKind.InvalidOperation, "NoDkek",
                    $"Key {key.Id} '{key.Label}' (reference {kid}) cannot be wrapped: {why}.", key, ex);
            }
            catch (ScHsmCardException ex) when (ex.Error == ScHsmError.WrapNotAllowed)
            {
                throw new PicoHsmException(PicoErrorKind.PermissionDenied, "KeyNotExportable",
                    $"Key {key.Id} '{key.Label}' (reference {kid}) was generated with an algorithm list that does not allow wrapping (0x92), so the card will not export it under the DKEK. It cannot be backed up.", key, ex);
            }
            // What sc-hsm-tool --wrap-key adds: the PRKD (C4 kid) and the certificate / request (CE kid).
            byte[]? prkd = card.ReadPrivateKeyDescription(kid);
            byte[]? cert = card.ReadCertificate(kid);
            if (prkd is not { Length: > 0 } || !IsSingleElement(prkd)) prkd = null;
            if (cert is not { Length: > 0 } || !IsSingleElement(cert)) cert = null;
            return new ScHsmWrappedKeyFile(blob, prkd, cert);
        });
    }

    private static bool IsSingleElement(byte[] b)
    {
        try { return DerElement.Read(b, "an element").Encoded.Length == b.Length; }
        catch (ScHsmFormatException) { return false; }
    }
}
