using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Card;

// Keys: WRAP KEY, UNWRAP KEY, SIGN, delete.
public sealed partial class ScHsmCard
{
    /// <summary>
    /// WRAP KEY (80 72 kid 92, extended case 2, Le 00 00 00): the key blob encrypted under the DKEK of the
    /// key's domain. Needs a verified user PIN and a complete DKEK.
    /// </summary>
    public byte[] WrapKey(byte keyReference)
    {
        if (keyReference == DeviceKeyReference)
            throw new ArgumentOutOfRangeException(nameof(keyReference), "Key reference 0 is the device's own key; it is never wrapped.");
        ResponseApdu r = Send(new CommandApdu(0x80, 0x72, keyReference, 0x92, default, CommandApdu.MaxExtendedNe));
        Check(r, ScHsmCommands.WrapKey, $"key reference {keyReference}");
        if (r.Data.Length == 0)
            throw new ScHsmCardException(ScHsmCommands.WrapKey, r.SW, "the device answered no key blob");
        return r.Data;
    }

    /// <summary>
    /// UNWRAP KEY (80 74 kid 93) with the blob inline in one extended case-3 APDU (as OpenSC 0.23). The
    /// device stores the key as CC kid (Pico also writes a CV request CE kid and a minimal PRKD C4 kid).
    /// Needs a verified user PIN and the same DKEK as the blob's (its first 8 bytes are the DKEK's KCV).
    /// </summary>
    public void UnwrapKey(byte keyReference, ReadOnlySpan<byte> blob)
    {
        if (keyReference == DeviceKeyReference)
            throw new ArgumentOutOfRangeException(nameof(keyReference), "Key reference 0 is the device's own key; do not overwrite it.");
        if (blob.IsEmpty || blob.Length > CommandApdu.MaxExtendedNc)
            throw new ArgumentException("The key blob must have 1 to 65535 bytes.", nameof(blob));
        ResponseApdu r = Send(new CommandApdu(0x80, 0x74, keyReference, 0x93, blob, null, forceExtended: true));
        Check(r, ScHsmCommands.UnwrapKey, $"key reference {keyReference}");
    }

    /// <summary>Algorithm id of SIGN for ECDSA with SHA-256 over the raw message (the card hashes; trace 10).</summary>
    public const byte AlgorithmEcdsaSha256 = 0x73;
    /// <summary>Algorithm id of SIGN for RSA PKCS#1 v1.5 with SHA-256 over the raw message (the card hashes).</summary>
    public const byte AlgorithmRsaPkcs1Sha256 = 0x33;

    /// <summary>Command name used in <see cref="ScHsmCardException"/> for SIGN.</summary>
    public const string SignCommand = "SIGN";

    /// <summary>
    /// SIGN (80 68 kid alg, extended case 4, Le 02 00 as OpenSC sends it): signs <paramref name="data"/> with
    /// the key at <paramref name="keyReference"/>. With <see cref="AlgorithmEcdsaSha256"/> /
    /// <see cref="AlgorithmRsaPkcs1Sha256"/> the card hashes the message itself; ECDSA answers a DER
    /// ECDSA-Sig-Value, RSA the signature block. Needs a verified user PIN.
    /// </summary>
    public byte[] Sign(byte keyReference, byte algorithm, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty || data.Length > CommandApdu.MaxExtendedNc)
            throw new ArgumentException("The data to sign must have 1 to 65535 bytes.", nameof(data));
        ResponseApdu r = Send(new CommandApdu(0x80, 0x68, keyReference, algorithm, data, 512, forceExtended: true));
        Check(r, SignCommand, $"key reference {keyReference}, algorithm {algorithm:X2}");
        return r.Data;
    }

    /// <summary>
    /// Deletes the key at <paramref name="keyReference"/> (DELETE FILE 00 E4 02 00 02 CC kid). Its PRKD (C4 kid)
    /// and certificate (CE kid) are separate files: delete them with <see cref="DeleteFile"/>.
    /// </summary>
    public void DeleteKey(byte keyReference)
    {
        if (keyReference == DeviceKeyReference)
            throw new ArgumentOutOfRangeException(nameof(keyReference), "Key reference 0 is the device's own key; it is never deleted.");
        DeleteFile((ushort)(KeyPrefix << 8 | keyReference));
    }
}
