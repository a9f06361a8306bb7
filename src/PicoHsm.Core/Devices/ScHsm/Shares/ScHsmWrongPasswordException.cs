using System.Security.Cryptography;

namespace PicoHsm.Devices.ScHsm.Shares;

/// <summary>
/// A DKEK share file did not decrypt to a 32-byte share with its PKCS#7 block: the password (or the
/// rebuilt threshold password) is wrong, or the file was altered. The password is never part of the message.
/// </summary>
public sealed class ScHsmWrongPasswordException : CryptographicException
{
    public ScHsmWrongPasswordException(string message) : base(message) { }
}
