using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Keys;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>
/// Remove-PicoKey on the card: DELETE FILE of the key file CC kid, its PRKD C4 kid and its certificate / request
/// CE kid (each when present), the key file last so an interrupted removal leaves an orphan that a rerun removes.
/// Works for orphans too (a key an interrupted restore left without its description). The device key (CC00) is
/// never removed; the card's DKEK is no file, so nothing here can reach it.
/// </summary>
internal sealed class ScHsmCardRemover(ScHsmCard card, ScHsmCardPin pin, ScHsmCardTransactions calls, DeviceContext context, ScHsmCardCatalogue catalogue)
{
    public string Remove(PicoKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.KeyReference == ScHsmCard.DeviceKeyReference)
            throw new PicoHsmException(PicoErrorKind.InvalidOperation, "DeviceKeyNotRemovable",
                $"Key reference 0 on '{context.TokenLabel}' is the device's own key; it is never removed.", key);
        return calls.Run($"remove the key {key.Id}", () =>
        {
            pin.EnsureVerified();
            byte kid = catalogue.ResolveKeyReference(key);
            var found = catalogue.ReadCardKeys(withCertificates: false).FirstOrDefault(k => k.Kid == kid);
            string label = found?.Description?.Label is { Length: > 0 } l ? $" ('{l}')" : "";
            long before = card.Changes;
            ScHsmCardRestore.RemoveFiles(card, kid);
            catalogue.Removed(kid, before);
            return $"key reference {kid} (id {key.Id}){label} on '{context.TokenLabel}': the key, its PRKD and its certificate";
        });
    }
}
