using System.Security.Cryptography;

namespace PicoHsm.Common;

/// <summary>
/// The key check value (KCV) of a DKEK: the first 8 bytes of SHA-256 of the 32-byte DKEK.
/// This is the SmartCard-HSM / Pico HSM definition, so a Pico HSM and a generic PKCS#11 token
/// report the same KCV for the same DKEK, and every backup names the DKEK it needs.
/// </summary>
public static class KeyCheckValue
{
    public const int Length = 8;

    public static byte[] Compute(ReadOnlySpan<byte> dkek)
    {
        if (dkek.Length != 32)
            throw new ArgumentException("A DKEK is 32 bytes.", nameof(dkek));
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(dkek, digest);
        byte[] kcv = digest[..Length].ToArray();
        CryptographicOperations.ZeroMemory(digest);
        return kcv;
    }

    /// <summary>Lower-case hex, no separators: the form shown to users and written to files.</summary>
    public static string ToHex(ReadOnlySpan<byte> kcv) => Convert.ToHexString(kcv).ToLowerInvariant();

    public static byte[] FromHex(string hex)
    {
        byte[] kcv = Convert.FromHexString(hex.Replace(":", "").Replace(" ", ""));
        if (kcv.Length != Length)
            throw new FormatException($"A key check value is {Length} bytes ({Length * 2} hex digits).");
        return kcv;
    }

    /// <summary>Pico HSM answers a KCV of all zeros until the user PIN is verified: that is not a KCV.</summary>
    public static bool IsUnknown(ReadOnlySpan<byte> kcv) => kcv.IndexOfAnyExcept((byte)0) < 0;
}
