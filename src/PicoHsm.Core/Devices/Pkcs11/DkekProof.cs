using System.Security.Cryptography;
using System.Text;

using PicoHsm.Common;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// How a generic PKCS#11 token proves which DKEK it holds. The DKEK object there is sensitive
/// and never extractable, so the token cannot hash it to give the SmartCard-HSM KCV. Instead,
/// while the DKEK is in memory at import, the module computes RFC 5649 AES key wrap (the
/// CKM_AES_KEY_WRAP_PAD the token uses) of a fixed, public probe key under the DKEK and stores
/// that proof next to the KCV in a data object on the token. To check, the token wraps the same
/// probe key (a throwaway session object) under its DKEK object: equal bytes prove the same
/// DKEK (AES-KWP is deterministic), different bytes prove another. The probe key is public, so
/// the proof reveals nothing about the DKEK beyond what any wrapped key already does.
/// </summary>
public static class DkekProof
{
    /// <summary>SHA-256 of a fixed string: 32 bytes anyone can recompute.</summary>
    public static byte[] ProbeKey { get; } = SHA256.HashData(Encoding.ASCII.GetBytes("PicoHsm DKEK proof probe key v1"));

    public static byte[] Compute(ReadOnlySpan<byte> dkek) => AesKeyWrapPad(dkek, ProbeKey);

    /// <summary>RFC 5649 AES key wrap with padding, as CKM_AES_KEY_WRAP_PAD (see <see cref="AesKeyWrap"/>).</summary>
    public static byte[] AesKeyWrapPad(ReadOnlySpan<byte> kek, byte[] keyData) => AesKeyWrap.WrapPad(kek, keyData);
}
