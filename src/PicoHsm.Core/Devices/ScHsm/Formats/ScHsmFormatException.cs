namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>
/// A file or blob does not have the SmartCard-HSM / sc-hsm-tool layout (truncated, wrong magic,
/// inconsistent lengths). Messages describe the structure only, never key material or passwords.
/// </summary>
public class ScHsmFormatException : FormatException
{
    public ScHsmFormatException(string message) : base(message) { }
    public ScHsmFormatException(string message, Exception inner) : base(message, inner) { }
}
