using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>A key restored from an sc-hsm-tool wrapped-key file onto the card, every check before the first change.</summary>
internal sealed class ScHsmCardRestore(ScHsmCard card, ScHsmCardPin pin, ScHsmCardTransactions calls, DeviceContext context, ScHsmCardDkek dkek, ScHsmCardCatalogue catalogue)
{
    private readonly ScHsmCard _card = card;
    private readonly ScHsmCardPin _pin = pin;
    private readonly ScHsmCardTransactions _calls = calls;
    private readonly DeviceContext _context = context;
    private readonly ScHsmCardDkek _dkek = dkek;
    private readonly ScHsmCardCatalogue _catalogue = catalogue;

    /// <summary>
    /// Restores an sc-hsm-tool file: DKEK, key type, key reference and id are checked before anything on the
    /// card changes; then UNWRAP KEY, the PRKD to C4 kid and the certificate / request to CE kid.
    /// </summary>
    public PicoKey Restore(PicoKeyBackup backup, RestoreRequest request)
    {
        ArgumentNullException.ThrowIfNull(backup);
        ArgumentNullException.ThrowIfNull(request);
        var p = ScHsmParsedBackup.Parse(backup);
        if (request.KeyReference is int wanted && wanted is < 1 or > 254)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "BadKeyReference",
                $"Key reference {wanted} is out of range: use 1 to 254 (0 is the device's own key).", request.KeyReference);
        return _calls.Run($"restore '{backup.Path}'", () =>
        {
            _pin.EnsureVerified();
            var domains = _dkek.ReadDomains();
            if (!domains.Any(d => d.IsComplete && d.KcvHex == p.Blob.KcvHex))
                throw new PicoHsmException(PicoErrorKind.InvalidOperation, "DkekMismatch",
                    $"'{backup.Path}' was wrapped under the DKEK with KCV {p.Blob.KcvHex}, but the card '{_context.TokenLabel}' holds {ScHsmCardDkek.DomainKcvs(domains)}. " +
                    "Import the backup's DKEK into the card first (Import-PicoDkek with its shares). Nothing was changed.", backup);
            if (!p.IsUnwrappableKeyType)
                throw new PicoHsmException(PicoErrorKind.NotSupported, "KeyTypeNotSupported",
                    $"'{backup.Path}' holds a key of type {(byte)p.Blob.KeyType:X2}, which the card cannot unwrap.", backup);

            var fids = new HashSet<ushort>(_card.EnumerateObjects());
            byte target;
            if (request.KeyReference is int r)
            {
                target = (byte)r;
                if (_catalogue.IsOccupied(target, fids) && !request.Force)
                    throw new PicoHsmException(PicoErrorKind.ResourceExists, "KeyReferenceInUse",
                        $"Key reference {r} on '{_context.TokenLabel}' is in use (the card would overwrite it silently). Choose a free -KeyReference, or use -Force to replace that key.", backup);
            }
            else
            {
                target = _catalogue.FirstFreeReference(fids, fromTop: false) ?? throw new PicoHsmException(PicoErrorKind.ResourceUnavailable, "NoFreeKeyReference",
                    $"Every key reference (1-254) on '{_context.TokenLabel}' is in use. Delete a key, or restore with -KeyReference and -Force.", backup);
            }

            byte[]? id = request.NewId ?? p.Description?.Id;
            if (id is { Length: > 0 })
            {
                var clash = _catalogue.FindById(id, exceptKid: target);
                if (clash is not null)
                    throw new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
                        $"Id {Convert.ToHexString(id).ToLowerInvariant()} is already used by key reference {clash.Kid} ('{clash.Description?.Label}') on '{_context.TokenLabel}'. " +
                        "Restore with -Id <another id>. Nothing was changed.", backup);
            }

            // Changes start here.
            try
            {
                _card.UnwrapKey(target, p.File.KeyBlob);
            }
            catch (ScHsmCardException ex) when (ex.Error == ScHsmError.DkekMismatch)
            {
                throw new PicoHsmException(PicoErrorKind.InvalidData, "BlobRejected",
                    $"The card refused the key blob of '{backup.Path}' (SW {ex.StatusWord:X4}): its CMAC does not verify under the card's DKEK {p.Blob.KcvHex}, so the file was altered or damaged.", backup, ex);
            }
            WriteCompanionFiles(target, p, request);
            var restored = _catalogue.ReadCardKeys().First(k => k.Kid == target);
            return _catalogue.ToPicoKey(restored, _card.EnumerateKeyDomains());
        });
    }

    private void WriteCompanionFiles(byte kid, ScHsmParsedBackup p, RestoreRequest request)
    {
        ushort c4 = (ushort)(ScHsmCard.PrkdPrefix << 8 | kid);
        ushort ce = (ushort)(ScHsmCard.CertificatePrefix << 8 | kid);
        if (p.File.Certificate is { } cert)
            _card.WriteFile(ce, cert);
        else if (p.Blob.Kind == KeyKind.Aes && _card.FileExists(ce))
            _card.DeleteFile(ce); // a stale certificate of a key this one replaced

        byte[]? prkd = null;
        var d = p.Description;
        if (request.NewId is not null || request.NewLabel is not null || d is null)
        {
            string label = request.NewLabel ?? d?.Label ?? "";
            byte[] id = request.NewId ?? d?.Id ?? [kid];
            int size = d?.KeySizeBits ?? p.PublicKey?.SizeBits ?? 0;
            if (size == 0)
            {
                // Pico writes a request (RSA/EC) and a minimal PRKD with the size at unwrap: read the size from them.
                var own = _card.ReadCertificate(kid);
                size = ScHsmCardFiles.ReadPublicKey(own)?.SizeBits ?? 0;
                if (size == 0 && _card.ReadPrivateKeyDescription(kid) is { Length: > 0 } ownPrkd)
                {
                    try { size = ScHsmKeyDescription.Parse(ownPrkd).KeySizeBits ?? 0; } catch (ScHsmFormatException) { }
                }
            }
            if (d is null && request.NewId is null && request.NewLabel is null)
                prkd = null; // nothing to say beyond what the card wrote itself
            else
                prkd = p.Blob.Kind switch
                {
                    KeyKind.Rsa => ScHsmKeyDescription.BuildRsa(label, id, kid, size, d?.Usage, d?.Flags, d?.AuthId).Encoded,
                    KeyKind.Ec => ScHsmKeyDescription.BuildEc(label, id, kid, size, d?.Usage, d?.Flags, d?.AuthId).Encoded,
                    _ => ScHsmKeyDescription.BuildAes(label, id, size, d?.KeyReference is null ? null : kid, d?.Usage).Encoded,
                };
        }
        else if (p.File.PrivateKeyDescription is { } original)
        {
            prkd = ScHsmCardFiles.WithKeyReference(original, kid);
        }
        if (prkd is not null) _card.WriteFile(c4, prkd);
    }
}
