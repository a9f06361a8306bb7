using System.Security.Cryptography;

namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>
/// A key blob does not belong to the DKEK given: its key check value differs, or its CMAC does not
/// verify (wrong DKEK or an altered blob). The card answers 6400 (Pico) / 6A80 (CardContact) in that case.
/// </summary>
public sealed class ScHsmWrongDkekException : CryptographicException
{
    public ScHsmWrongDkekException(string message) : base(message) { }
}
