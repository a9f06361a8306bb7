namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>The key type byte at offset 8 of a SmartCard-HSM key blob.</summary>
public enum ScHsmKeyType : byte
{
    /// <summary>RSA as d, n, e: what the Pico HSM firmware writes.</summary>
    Rsa = 0x05,
    /// <summary>RSA in CRT form dp, dq, p, qinv, q, n, e: CardContact's form; the Pico reads it.</summary>
    RsaCrt = 0x06,
    Ec = 0x0C,
    Aes = 0x0F,
}
