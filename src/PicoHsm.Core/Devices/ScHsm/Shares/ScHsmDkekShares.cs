using System.Security.Cryptography;
using PicoHsm.Common;

namespace PicoHsm.Devices.ScHsm.Shares;

/// <summary>
/// sc-hsm-tool's DKEK shares: n-of-n, the DKEK is the XOR of all shares (the card XORs each
/// imported share into a value that starts as zeros). Not a threshold scheme: every share is needed.
/// </summary>
public static class ScHsmDkekShares
{
    /// <summary>Splits a DKEK into <paramref name="count"/> shares whose XOR is the DKEK.</summary>
    public static List<SecretBytes> Split(ReadOnlySpan<byte> dkek, int count)
    {
        if (dkek.Length != 32) throw new ArgumentException("A DKEK is 32 bytes.", nameof(dkek));
        if (count is < 1 or > 255) throw new ArgumentOutOfRangeException(nameof(count), "1 to 255 shares.");
        var shares = new List<SecretBytes>();
        var last = SecretBytes.CopyOf(dkek);
        for (int i = 0; i < count - 1; i++)
        {
            var s = new SecretBytes(32);
            RandomNumberGenerator.Fill(s.Span);
            for (int j = 0; j < 32; j++) last.Span[j] ^= s.Span[j];
            shares.Add(s);
        }
        shares.Add(last);
        return shares;
    }

    /// <summary>The DKEK the card builds from these shares: their XOR.</summary>
    public static SecretBytes Combine(IReadOnlyList<SecretBytes> shares)
    {
        var dkek = new SecretBytes(32);
        foreach (var s in shares)
        {
            if (s.Length != 32) throw new ArgumentException("A DKEK share is 32 bytes.", nameof(shares));
            for (int j = 0; j < 32; j++) dkek.Span[j] ^= s.Span[j];
        }
        return dkek;
    }

    /// <summary>True when the bytes are an OpenSSL "Salted__" file, the shape of an sc-hsm-tool share.</summary>
    public static bool LooksLikeShareFile(ReadOnlySpan<byte> bytes) =>
        bytes.Length == 64 && bytes[..8].SequenceEqual("Salted__"u8);
}
