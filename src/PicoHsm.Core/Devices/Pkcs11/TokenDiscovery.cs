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
            return lib.GetSlotList(SlotsType.WithTokenPresent).Select(s => PicoHsmToken.From(modulePath, s)).ToList();
        }
        catch (Pkcs11Exception ex)
        {
            throw Pkcs11Errors.Translate(ex, "list the module's tokens", modulePath);
        }
    }

    /// <summary>
    /// Picks one initialised token. No selector and exactly one: that one. Uninitialised slots
    /// (SoftHSM2 always lists a spare one) are never chosen.
    /// </summary>
    public static (ISlot Slot, PicoHsmToken Token) Select(string modulePath, string? label, string? serial, ulong? slotId)
    {
        var lib = Pkcs11Modules.Load(modulePath);
        List<(ISlot, PicoHsmToken)> all;
        try
        {
            all = lib.GetSlotList(SlotsType.WithTokenPresent).Select(s => (s, PicoHsmToken.From(modulePath, s))).ToList();
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

        string inventory = initialised.Count == 0 ? "none" :
            string.Join("; ", initialised.Select(t => $"'{t.Item2.Label}' serial {t.Item2.SerialNumber} slot {t.Item2.SlotId}"));
        if (list.Count == 0)
        {
            if (how.Length == 0)
            {
                string uninit = all.Count > initialised.Count ? $" ({all.Count - initialised.Count} uninitialised slot(s) ignored)" : "";
                throw new PicoHsmException(PicoErrorKind.NotFound, "NoToken",
                    $"The module '{modulePath}' has no initialised token{uninit}. Plug in the device or initialise a token, then try again.", modulePath);
            }
            throw new PicoHsmException(PicoErrorKind.NotFound, "TokenNotFound",
                $"No initialised token {how.Trim()}. Initialised tokens: {inventory}. Check the value or list them with Get-PicoHsmToken.", modulePath);
        }
        throw new PicoHsmException(PicoErrorKind.InvalidArgument, "AmbiguousToken",
            $"Several tokens match{(how.Length > 0 ? " " + how.Trim() : "")}: {inventory}. Choose one with -TokenLabel, -SerialNumber or -SlotId.", modulePath);
    }
}
