using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Common;
using PicoHsm.Keys;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// Remove-PicoKey on a generic PKCS#11 token: destroys the private or secret key with the key's CKA_ID, and the
/// public key and certificate with that id. The DKEK (found with the DKEK store's FindDkek) and its record data
/// object are never touched: a key whose id is the DKEK's is refused, naming the DKEK.
/// </summary>
internal sealed class Pkcs11KeyRemover(DeviceContext context, Pkcs11Connection connection, Pkcs11DkekStore dkek)
{
    public string Remove(PicoKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        byte[] id;
        try { id = Convert.FromHexString(key.Id); }
        catch (FormatException)
        {
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "BadId", $"'{key.Id}' is not a hexadecimal key id. Pass a key from Get-PicoKey.", key);
        }
        lock (context.Gate)
        {
            ISession s = connection.Session;
            try
            {
                var d = dkek.FindDkek();
                if (d is not null && d.Id.AsSpan().SequenceEqual(id))
                    throw new PicoHsmException(PicoErrorKind.InvalidOperation, "DkekNotRemovable",
                        $"Id {IdHex(id)} on '{context.TokenLabel}' is the DKEK's ('{d.Label}'). Remove-PicoKey never removes the DKEK or its record; nothing was removed.", key);
                var keys = Find(s, (CKA.CKA_CLASS, CKO.CKO_PRIVATE_KEY), (CKA.CKA_ID, id));
                keys.AddRange(Find(s, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), (CKA.CKA_ID, id)));
                if (d is not null) keys.RemoveAll(h => h.ObjectId == d.Key.ObjectId || h.ObjectId == d.Proof.ObjectId);
                if (keys.Count == 0)
                    throw new PicoHsmException(PicoErrorKind.NotFound, "KeyNotFound",
                        $"No key with id {IdHex(id)} on '{context.TokenLabel}'. List the keys again (Get-PicoKey).", key);
                if (keys.Count > 1)
                    throw new PicoHsmException(PicoErrorKind.InvalidOperation, "DuplicateId",
                        $"{keys.Count} keys on '{context.TokenLabel}' share id {IdHex(id)}; nothing was removed. Remove the extra ones with the token's own tool (pkcs11-tool --delete-object).", key);
                var publics = Find(s, (CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY), (CKA.CKA_ID, id));
                var certs = Find(s, (CKA.CKA_CLASS, CKO.CKO_CERTIFICATE), (CKA.CKA_ID, id));
                // Descriptions first, the key last: an interruption leaves the key, never a certificate of a missing key.
                foreach (var h in certs.Concat(publics)) s.DestroyObject(h);
                s.DestroyObject(keys[0]);
                return $"id {IdHex(id)}{(key.Label is { Length: > 0 } l ? $" ('{l}')" : "")} on '{context.TokenLabel}': the key" +
                    (publics.Count > 0 ? ", its public key" : "") + (certs.Count > 0 ? ", its certificate" : "");
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, $"remove the key with id {IdHex(id)}", context);
            }
        }
    }
}
