using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Common;

namespace PicoHsm.Devices.Pkcs11;

public static class TokenDiscovery
{
    /// <summary>Every slot with a token present, initialised or not, without logging in.</summary>
    public static IReadOnlyList<PicoHsmToken> List(string modulePath)
    {
        var lib = Pkcs11Modules.Load(modulePath);
        try
        {
            return lib.GetSlotList(SlotsType.WithTokenPresent).Select(s => Describe(modulePath, s)).ToList();
        }
        catch (Pkcs11Exception ex)
        {
            throw Pkcs11Errors.Translate(ex, "list the module's tokens", modulePath);
        }
    }

    /// <summary>
    /// Every slot of the module, for messages: "slot 3 'ca' serial 0a1b; slot 4 (token not initialised);
    /// slot 5 (no token)". Empty text when the module lists no slot at all.
    /// </summary>
    public static string DescribeSlots(string modulePath)
    {
        var lib = Pkcs11Modules.Load(modulePath);
        try
        {
            return DescribeSlots(lib.GetSlotList(SlotsType.WithOrWithoutTokenPresent).Select(s => Describe(modulePath, s)));
        }
        catch (Pkcs11Exception ex)
        {
            throw Pkcs11Errors.Translate(ex, $"list the slots of '{modulePath}'", modulePath);
        }
    }

    internal static string DescribeSlots(IEnumerable<PicoHsmToken> slots)
    {
        var parts = slots.Select(t =>
            !t.TokenPresent ? $"slot {t.SlotId} (no token{Reader(t)})"
            : !t.Initialized ? $"slot {t.SlotId} (token not initialised{Reader(t)})"
            : $"slot {t.SlotId} '{t.Label}' serial {t.SerialNumber}").ToList();
        return parts.Count == 0 ? "" : string.Join("; ", parts);
    }

    private static string Reader(PicoHsmToken t) => string.IsNullOrEmpty(t.SlotDescription) ? "" : $", '{t.SlotDescription}'";

    /// <summary>
    /// Picks one initialised token. No selector and exactly one: that one. Uninitialised slots
    /// (SoftHSM2 always lists a spare one) are never chosen. Errors name the module
    /// (<paramref name="moduleReason"/>: why it was chosen) and every slot searched.
    /// </summary>
    public static (ISlot Slot, PicoHsmToken Token) Select(string modulePath, string? label, string? serial, ulong? slotId, string? moduleReason = null)
    {
        var lib = Pkcs11Modules.Load(modulePath);
        List<(ISlot, PicoHsmToken)> all;
        List<PicoHsmToken> everySlot;
        try
        {
            var slots = lib.GetSlotList(SlotsType.WithOrWithoutTokenPresent);
            everySlot = slots.Select(s => Describe(modulePath, s)).ToList();
            all = slots.Zip(everySlot).Where(p => p.Second.TokenPresent).Select(p => (p.First, p.Second)).ToList();
        }
        catch (Pkcs11Exception ex)
        {
            throw Pkcs11Errors.Translate(ex, "list the module's tokens", modulePath);
        }
        var initialised = all.Where(t => t.Item2.Initialized).ToList();
        IEnumerable<(ISlot, PicoHsmToken)> candidates = initialised;
        string how = "";
        if (slotId is { } sid) { candidates = candidates.Where(t => t.Item2.SlotId == sid); how = $"in slot {sid}"; }
        if (serial is not null) { candidates = candidates.Where(t => string.Equals(t.Item2.SerialNumber, serial.Trim(), StringComparison.OrdinalIgnoreCase)); how += $" with serial '{serial}'"; }
        if (label is not null) { candidates = candidates.Where(t => string.Equals(t.Item2.Label, label.Trim(), StringComparison.Ordinal)); how += $" labelled '{label}'"; }
        var list = candidates.ToList();
        if (list.Count == 1) return list[0];

        string module = $"the PKCS#11 module '{modulePath}'" + (moduleReason is null ? "" : $" ({moduleReason})");
        string searched = everySlot.Count == 0 ? "Slots searched: none (the module lists no slot)." : $"Slots searched: {DescribeSlots(everySlot)}.";
        string inventory = initialised.Count == 0 ? "none" :
            string.Join("; ", initialised.Select(t => $"'{t.Item2.Label}' serial {t.Item2.SerialNumber} slot {t.Item2.SlotId}"));
        if (list.Count == 0)
        {
            if (how.Length == 0)
            {
                string uninit = all.Count > initialised.Count ? $" ({all.Count - initialised.Count} uninitialised slot(s) ignored)" : "";
                throw new PicoHsmException(PicoErrorKind.NotFound, "NoToken",
                    $"{Capital(module)} has no initialised token{uninit}. {searched} Plug in the device or initialise a token, then try again.", modulePath);
            }
            throw new PicoHsmException(PicoErrorKind.NotFound, "TokenNotFound",
                $"No initialised token {how.Trim()} in {module}. Initialised tokens: {inventory}. {searched} Check the value or list them with Get-PicoHsmToken.", modulePath);
        }
        throw new PicoHsmException(PicoErrorKind.InvalidArgument, "AmbiguousToken",
            $"Several tokens of {module} match{(how.Length > 0 ? " " + how.Trim() : "")}: {inventory}. Choose one with -TokenLabel, -SerialNumber or -SlotId.", modulePath);
    }

    /// <summary>
    /// A slot and its token; a token the module does not recognise (CKR_TOKEN_NOT_RECOGNIZED: OpenSC's bind of a
    /// blank SmartCard-HSM / Pico HSM, which has no device certificate before INITIALIZE) is listed as present
    /// and not initialised, never chosen, instead of failing the whole listing.
    /// </summary>
    private static PicoHsmToken Describe(string modulePath, ISlot slot)
    {
        try
        {
            // A torn read of the token's files (another process logging in) is read again: see Pkcs11TornReads.
            return Pkcs11TornReads.Read(() => PicoHsmToken.From(modulePath, slot));
        }
        catch (Pkcs11Exception ex) when (ex.RV == CKR.CKR_TOKEN_NOT_RECOGNIZED)
        {
            return new PicoHsmToken
            {
                ModulePath = modulePath,
                SlotId = slot.SlotId,
                SlotDescription = slot.GetSlotInfo().SlotDescription.Trim(),
                TokenPresent = true,
            };
        }
    }

    private static string Capital(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
}
