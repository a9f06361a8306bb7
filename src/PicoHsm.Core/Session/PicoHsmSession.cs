using PicoHsm.Devices;

namespace PicoHsm.Session;

/// <summary>
/// One connection to one device: the device backend made at connect (PKCS#11 module, slot,
/// session and login; or a SmartCard-HSM's card channel), owned and disposed by this session.
/// Every cmdlet works through one of these (its -Session, or the runspace's default).
/// </summary>
public sealed class PicoHsmSession : IDisposable
{
    public PicoHsmSession(IDeviceBackend device)
    {
        Device = device ?? throw new ArgumentNullException(nameof(device));
        ConnectedAt = DateTimeOffset.Now;
    }

    /// <summary>The backend that does this session's device work (made once, at connect).</summary>
    public IDeviceBackend Device { get; }

    internal DeviceContext Context => Device.Context;

    public int Id => Context.SessionId;
    public string? ModulePath => Device.HasPkcs11 ? Token.ModulePath : null;
    public ulong SlotId => Token.SlotId;
    public string? TokenLabel => Token.Label;
    public string? SerialNumber => Token.SerialNumber;
    public string? Model => Token.Model;
    public string? Manufacturer => Token.Manufacturer;
    public string? FirmwareVersion => Token.FirmwareVersion;
    public string ReaderName => Token.SlotDescription;
    public bool IsLoggedIn => Context.IsLoggedIn;
    public bool IsOpen => Device.IsOpen;

    /// <summary>
    /// Whether this is the default session (the one cmdlets use without -Session) of the runspace
    /// that asks. The default is the module layer's to know (per runspace), so it answers through
    /// <see cref="DefaultProbe"/>; a plain property, so no types file is loaded at import.
    /// </summary>
    public bool IsDefault => DefaultProbe?.Invoke(this) ?? false;

    /// <summary>Set once by the module layer: whether a session is its runspace's default.</summary>
    internal static Func<PicoHsmSession, bool>? DefaultProbe { get; set; }

    /// <summary>
    /// Whether the connection still reaches its device, asked cheaply (a card: one SCardStatus; no command to the
    /// device, never a login). A device found gone (a card removed or restarted outside the module) closes the
    /// session: <see cref="IsOpen"/> and <see cref="IsLoggedIn"/> are false from then on.
    /// </summary>
    public bool CheckConnection() => Device is IConnectionCheck c ? c.CheckConnection() : Device.IsOpen;

    /// <summary>Whether PKCS#11 is part of this session (false for a card reached through PC/SC only).</summary>
    public bool HasPkcs11 => Device.HasPkcs11;

    public DateTimeOffset ConnectedAt { get; }

    /// <summary>Which device family does the DKEK work: a generic PKCS#11 token, or a SmartCard-HSM's own commands.</summary>
    public DeviceFamily DeviceFamily => Device.Family;

    public PicoHsmToken Token => Context.Token;

    public void Dispose() => Device.Dispose();

    public override string ToString() => $"Session {Id}: {TokenLabel} ({SerialNumber})";
}
