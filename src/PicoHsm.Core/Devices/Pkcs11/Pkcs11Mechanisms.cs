using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Common;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// What the token's slot offers: its mechanism list and each mechanism's key-size range. Made once
/// per backend, so once per session, and kept for its life: a Backup-PicoHsm or Restore-PicoHsm of
/// many keys asks the token once, not once per key.
/// </summary>
internal sealed class Pkcs11Mechanisms
{
    private readonly ISlot _slot;
    private readonly DeviceContext _context;
    private HashSet<CKM>? _offered;
    private readonly Dictionary<CKM, IMechanismInfo?> _info = new();

    public Pkcs11Mechanisms(ISlot slot, DeviceContext context)
    {
        _slot = slot;
        _context = context;
    }

    /// <summary>How many times the token was asked for its mechanism list (at most once while it answers).</summary>
    internal int ListQueries { get; private set; }

    public static IMechanism Create(CKM m) => Pkcs11Connection.Factories.MechanismFactory.Create(m);

    /// <summary>Whether the token lists the mechanism. A token that will not list its mechanisms supports none of them.</summary>
    public bool Supports(CKM m)
    {
        if (_offered is null)
        {
            try
            {
                ListQueries++;
                _offered = new HashSet<CKM>(_slot.GetMechanismList());
            }
            catch (Pkcs11Exception)
            {
                return false; // not cached: a later call asks again
            }
        }
        return _offered.Contains(m);
    }

    /// <summary>The mechanism's key-size range, or null when the token gives none.</summary>
    public IMechanismInfo? Info(CKM m)
    {
        if (_info.TryGetValue(m, out var known)) return known;
        IMechanismInfo? info;
        try { info = _slot.GetMechanismInfo(m); }
        catch (Pkcs11Exception) { info = null; }
        _info[m] = info;
        return info;
    }

    public void Require(CKM m, string why)
    {
        if (!Supports(m))
            throw new PicoHsmException(PicoErrorKind.NotSupported, "MechanismNotSupported",
                $"The token '{_context.TokenLabel}' does not offer {m}, needed to {why}.", _context);
    }

    /// <summary>The best wrap mechanism the token lists: RFC 5649 (any key length) first.</summary>
    public CKM ChooseWrapMechanism(string keyClass)
    {
        if (Supports(CKM.CKM_AES_KEY_WRAP_PAD)) return CKM.CKM_AES_KEY_WRAP_PAD;
        // RFC 3394 needs a multiple of 8 bytes: always true of AES keys, not of PKCS#8 private keys.
        if (keyClass == "SecretKey" && Supports(CKM.CKM_AES_KEY_WRAP)) return CKM.CKM_AES_KEY_WRAP;
        throw new PicoHsmException(PicoErrorKind.NotSupported, "MechanismNotSupported",
            $"The token '{_context.TokenLabel}' offers no AES key wrap mechanism (CKM_AES_KEY_WRAP_PAD) to wrap this key under the DKEK.", _context);
    }
}
