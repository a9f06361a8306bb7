using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Keys;
using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>
/// A key restored from an sc-hsm-tool wrapped-key file onto the card: planned (<see cref="ScHsmCardRestorePlanner"/>),
/// every check before the first change, then all or nothing: UNWRAP KEY, the certificate / request to CE kid, and
/// the PRKD to C4 kid last (the PRKD with the backup's id and label marks the restore complete). When anything
/// after UNWRAP fails and the card still answers, what was written is removed again; when the card is gone, the
/// key stays as an orphan that the listing marks and a rerun completes.
/// </summary>
internal sealed class ScHsmCardRestore(ScHsmCard card, ScHsmCardPin pin, ScHsmCardTransactions calls, DeviceContext context, ScHsmCardDkek dkek, ScHsmCardCatalogue catalogue)
{
    private readonly ScHsmCard _card = card;
    private readonly ScHsmCardPin _pin = pin;
    private readonly ScHsmCardTransactions _calls = calls;
    private readonly DeviceContext _context = context;
    private readonly ScHsmCardCatalogue _catalogue = catalogue;
    private readonly ScHsmCardRestorePlanner _planner = new(card, context, dkek, catalogue);

    /// <summary>The pre-flight alone (changes nothing; VERIFY with the PIN copy when the card asks for it).</summary>
    public RestorePlan Plan(PicoKeyBackup backup, RestoreRequest request)
    {
        ArgumentNullException.ThrowIfNull(backup);
        ArgumentNullException.ThrowIfNull(request);
        var p = ScHsmParsedBackup.Parse(backup);
        return _calls.Run($"plan the restore of '{backup.Path}'", () =>
        {
            _pin.EnsureVerified();
            _planned = null;
            var (plan, target) = _planner.Plan(backup, p, request);
            if (plan.Action == RestoreAction.Create && !plan.IsRefused && target is not null && _planner.LastFileIds is { } fids)
                _planned = new Planned(backup.Path, backup.ScHsmFile!, Copy(request), p, plan, target, fids, _card.Changes);
            return plan;
        });
    }

    /// <summary>Plans again under the session's lock (or takes the plan <see cref="Plan"/> just made, see <see cref="Reusable"/>) and acts on it.</summary>
    public PicoKey Restore(PicoKeyBackup backup, RestoreRequest request)
    {
        ArgumentNullException.ThrowIfNull(backup);
        ArgumentNullException.ThrowIfNull(request);
        var planned = _planned is { } m && m.IsFor(backup, request) ? m : null;
        _planned = null;
        var p = planned?.Parsed ?? ScHsmParsedBackup.Parse(backup);
        return _calls.Run($"restore '{backup.Path}'", () =>
        {
            if (planned is not null && Reusable(planned) && Write(backup, p, request, planned.Target, reused: true) is { } done)
                return done;
            _pin.EnsureVerified();
            var (plan, target) = _planner.Plan(backup, p, request);
            if (plan.IsRefused) throw plan.Refusals[0];
            if (plan.Action == RestoreAction.AlreadyPresent) return plan.Existing!;
            return Write(backup, p, request, target!, reused: false)!;
        });
    }

    // The plan the last PlanRestore made, kept for the Restore of the same backup and request that usually follows it
    // (Import-PicoWrappedKey and Restore-PicoHsm plan each file for -WhatIf / -Confirm, then restore it). Kept only for
    // a plan to create the key at a free key reference (the bulk case); a plan that replaces or finds a key is made
    // again under the writing transaction, whatever it costs.
    private sealed record Planned(string Path, byte[] File, RestoreRequest Request, ScHsmParsedBackup Parsed, RestorePlan Plan,
        ScHsmRestoreTarget Target, HashSet<ushort> FileIds, long Changes)
    {
        public bool IsFor(PicoKeyBackup b, RestoreRequest r) =>
            b.Path == Path && b.ScHsmFile is { } f && f.AsSpan().SequenceEqual(File) &&
            r.Force == Request.Force && r.KeyReference == Request.KeyReference && r.NewLabel == Request.NewLabel &&
            (r.NewId is null ? Request.NewId is null : Request.NewId is not null && r.NewId.AsSpan().SequenceEqual(Request.NewId));
    }

    private static RestoreRequest Copy(RestoreRequest r) => r with { NewId = r.NewId?.ToArray() };

    private Planned? _planned;

    /// <summary>
    /// Whether <paramref name="m"/>, made by <see cref="Plan"/> in an earlier card transaction, still holds in this one:
    /// this card client sent nothing that changes the card since (<see cref="ScHsmCard.Changes"/>), ENUMERATE OBJECTS
    /// lists exactly the files the plan saw, and the target key reference still has no CC, C4 or CE file (the SELECT of
    /// CE kid, which ENUMERATE does not list on Pico, is sent again). Two APDUs instead of the plan's own (PIN state,
    /// key domain, ENUMERATE, SELECT).
    ///
    /// Why that is as safe as planning again: everything else the plan decided comes from the file list (the same, so
    /// no key was added, removed or moved; the id check's PRKDs would come from the catalogue cache, which trusts a PRKD
    /// while its key is listed the same, exactly as here) and from the key domains (not asked again: a DKEK that another
    /// program replaced or deleted since cannot unwrap this blob: the card checks the blob's KCV and its CMAC under its
    /// own DKEK and refuses the UNWRAP without writing anything; that refusal is then explained by planning again, see
    /// <see cref="Write"/>). The PIN state is not asked either: UNWRAP KEY checks it before anything else (the
    /// firmware's first test after P2) and answers 6982 without writing, and that answer (a card reset, or another
    /// program's SELECT of the applet, ended the PIN session) makes the restore verify and plan again. A card that does
    /// not answer ENUMERATE (no applet selected after a reset), or any other difference: the full plan runs again.
    /// </summary>
    private bool Reusable(Planned m)
    {
        if (m.Changes != _card.Changes) return false;
        HashSet<ushort> fids;
        try
        {
            fids = _catalogue.ReadFileIds();
        }
        catch (ScHsmCardException)
        {
            return false; // the full plan selects the applet when it must, and says what the card refuses
        }
        return fids.SetEquals(m.FileIds) && !_catalogue.IsOccupied(m.Target.Kid, fids);
    }

    /// <summary>
    /// Unwraps at the target and writes the companion files. On a reused plan (<paramref name="reused"/>), null when the
    /// card refused the UNWRAP because the PIN session has ended since the plan: nothing was written, and the caller
    /// verifies and plans again.
    /// </summary>
    private PicoKey? Write(PicoKeyBackup backup, ScHsmParsedBackup p, RestoreRequest request, ScHsmRestoreTarget target, bool reused)
    {
        byte kid = target.Kid;
        long before = _card.Changes;
        // Changes start here.
        try
        {
            _card.UnwrapKey(kid, p.File.KeyBlob);
            if (reused) _context.SetLoggedIn(true); // the card took a command that needs the verified PIN
        }
        catch (ScHsmCardException ex) when (reused && ex.Error == ScHsmError.PinNotVerified)
        {
            return null;
        }
        catch (ScHsmCardException ex) when (ex.Error == ScHsmError.DkekMismatch)
        {
            // On a plan taken from PlanRestore the key domains were not asked again: a DKEK changed since is what
            // planning now says (nothing was written).
            if (reused)
            {
                _pin.EnsureVerified();
                if (_planner.Plan(backup, p, request).Plan is { IsRefused: true } again) throw again.Refusals[0];
            }
            throw new PicoHsmException(PicoErrorKind.InvalidData, "BlobRejected",
                $"The card refused the key blob of '{backup.Path}' (SW {ex.StatusWord:X4}): its CMAC does not verify under the card's DKEK {p.Blob.KcvHex}, so the file was altered or damaged.", backup, ex);
        }
        try
        {
            var (prkd, cert, certKnown) = WriteCompanionFiles(kid, p, request, target.Replaced, backup);
            // Described from what was written (no re-read of the catalogue): only a request the firmware made at
            // UNWRAP, when the backup brings no certificate, is read back.
            if (!certKnown) cert = _card.ReadCertificate(kid) is { Length: > 0 } c ? c : null;
            _catalogue.Wrote(kid, before, prkd, cert);
            return _catalogue.ToPicoKey(ScHsmCardCatalogue.Make(kid, prkd, cert), target.Domains);
        }
        catch (Exception ex) when (ex is ScHsmCardException or PcscException or PicoHsmException or InvalidOperationException)
        {
            throw Undo(kid, backup, ex, target.Replaced is not null);
        }
    }

    /// <summary>After a failure past UNWRAP: removes the key and its files when the card answers; the error says which happened.</summary>
    private PicoHsmException Undo(byte kid, PicoKeyBackup backup, Exception failure, bool replaced)
    {
        var (kind, reason, why) = failure switch
        {
            PicoHsmException pe => (pe.Kind, pe.Reason, pe.Message),
            ScHsmCardException ce => (ScHsmCardException.KindAndReason(ce.Error).Kind, ScHsmCardException.KindAndReason(ce.Error).Reason, ce.Message),
            PcscException pc => (PicoErrorKind.ResourceUnavailable, "CardUnavailable", $"the card did not answer: {pc.Message}"),
            _ => (PicoErrorKind.InvalidOperation, "RestoreIncomplete", failure.Message),
        };
        string lost = replaced ? " The key it replaced had already been overwritten by the unwrap." : "";
        try
        {
            RemoveFiles(_card, kid);
            return new PicoHsmException(kind, reason,
                $"The restore of '{backup.Path}' failed after the key was unwrapped at key reference {kid} ({why}). " +
                $"What it wrote was removed again: key reference {kid} on '{_context.TokenLabel}' is free.{lost} Rerun the restore.", backup, failure);
        }
        catch (Exception undo) when (undo is ScHsmCardException or PcscException)
        {
            return new PicoHsmException(kind, reason,
                $"The restore of '{backup.Path}' failed after the key was unwrapped at key reference {kid} ({why}), and it could not be undone ({undo.Message}). " +
                $"Key reference {kid} on '{_context.TokenLabel}' may hold the key without its description: Get-PicoKey lists it as an orphan.{lost} " +
                "Rerun the restore once the card answers to complete it, or remove it with Remove-PicoKey.", backup, failure);
        }
    }

    /// <summary>
    /// Deletes the certificate CE kid, the PRKD C4 kid and the key file CC kid (each when present), the key last:
    /// an interruption leaves at worst a key without its description (an orphan, listed and removable), never
    /// files that describe no key.
    /// </summary>
    public static void RemoveFiles(ScHsmCard card, byte kid)
    {
        foreach (byte prefix in new[] { ScHsmCard.CertificatePrefix, ScHsmCard.PrkdPrefix, ScHsmCard.KeyPrefix })
        {
            ushort fid = (ushort)(prefix << 8 | kid);
            try { card.DeleteFile(fid); }
            catch (ScHsmCardException ex) when (ex.StatusWord == 0x6A82) { /* not there */ }
        }
    }

    /// <summary>
    /// The certificate / request, then the PRKD. A file of the replaced key that the backup does not bring and
    /// the firmware did not rewrite at UNWRAP (it still reads as before) is deleted, so nothing describes the
    /// new key wrongly. A backup without a PRKD gets one (its file name as label) so the key is not an orphan.
    /// Returns the PRKD written and the CE file as it now is (when known without reading it).
    /// </summary>
    private (byte[] Prkd, byte[]? Certificate, bool CertificateKnown) WriteCompanionFiles(byte kid, ScHsmParsedBackup p, RestoreRequest request, ScHsmCardCatalogue.CardKey? replaced, PicoKeyBackup backup)
    {
        ushort c4 = (ushort)(ScHsmCard.PrkdPrefix << 8 | kid);
        ushort ce = (ushort)(ScHsmCard.CertificatePrefix << 8 | kid);
        byte[]? certNow = null;
        bool certKnown = false;
        if (p.File.Certificate is { } cert)
        {
            _card.WriteFileById(ce, cert);
            (certNow, certKnown) = (cert, true);
        }
        else if (replaced?.Certificate is { } oldCert)
        {
            certNow = _card.TryReadFile(ce);
            certKnown = true;
            if (certNow is not null && (certNow.AsSpan().SequenceEqual(oldCert) || p.Blob.Kind == KeyKind.Aes))
            {
                _card.DeleteFile(ce); // the replaced key's certificate (a secret key has none)
                certNow = null;
            }
        }
        else if (p.Blob.Kind == KeyKind.Aes)
        {
            if (_card.FileExists(ce)) _card.DeleteFile(ce); // a stale certificate: a secret key has none
            certKnown = true;
        }

        var d = p.Description;
        byte[] prkd;
        if (request.NewId is not null || request.NewLabel is not null || d is null)
        {
            string label = request.NewLabel ?? d?.Label ?? Path.GetFileNameWithoutExtension(backup.Path);
            byte[] id = request.NewId ?? d?.Id ?? [kid];
            int size = d?.KeySizeBits ?? p.PublicKey?.SizeBits ?? 0;
            if (size == 0)
            {
                // Pico writes a request (RSA/EC) and a minimal PRKD with the size at unwrap: read the size from them.
                var own = certKnown ? certNow : _card.ReadCertificate(kid);
                (certNow, certKnown) = (own is { Length: > 0 } ? own : null, true);
                size = ScHsmCardFiles.ReadPublicKey(own)?.SizeBits ?? 0;
                if (size == 0 && _card.ReadPrivateKeyDescription(kid) is { Length: > 0 } ownPrkd)
                {
                    try { size = ScHsmKeyDescription.Parse(ownPrkd).KeySizeBits ?? 0; } catch (ScHsmFormatException) { }
                }
            }
            prkd = p.Blob.Kind switch
            {
                KeyKind.Rsa => ScHsmKeyDescription.BuildRsa(label, id, kid, size, d?.Usage, d?.Flags, d?.AuthId).Encoded,
                KeyKind.Ec => ScHsmKeyDescription.BuildEc(label, id, kid, size, d?.Usage, d?.Flags, d?.AuthId).Encoded,
                _ => ScHsmKeyDescription.BuildAes(label, id, size, d?.KeyReference is null ? null : kid, d?.Usage).Encoded,
            };
        }
        else
        {
            prkd = ScHsmCardFiles.WithKeyReference(p.File.PrivateKeyDescription!, kid);
        }
        // Last: the PRKD with the backup's id and label is what makes the key complete (not an orphan).
        _card.WriteFileById(c4, prkd);
        return (prkd, certNow, certKnown);
    }
}
