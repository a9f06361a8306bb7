namespace PicoHsm.Devices;

/// <summary>
/// Devices whose connection can be found gone cheaply, without a command to the device and without a login
/// (a card's PC/SC handle: one SCardStatus). Get-PicoHsmSession asks, so a session whose card was removed or
/// restarted outside the module shows as closed.
/// </summary>
public interface IConnectionCheck
{
    /// <summary>
    /// Whether the connection is still usable. When the device is found gone, the connection is closed
    /// (<see cref="IDeviceBackend.IsOpen"/> false from then on, logged out) and using it is a SessionClosed
    /// error saying why. A connection busy with work on another thread is left to that work to find out.
    /// </summary>
    bool CheckConnection();
}
