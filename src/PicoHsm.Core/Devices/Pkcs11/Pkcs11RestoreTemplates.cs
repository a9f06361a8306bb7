using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// The PKCS#11 templates a restore creates objects from (the unwrapped key, its public key, its
/// certificate), and the usage attributes a backup records, shared by export and restore.
/// </summary>
internal static class Pkcs11RestoreTemplates
{
    /// <summary>The boolean attributes a backup records, by their name in the backup file.</summary>
    public static readonly (CKA Cka, string Name)[] UsageAttributes =
    {
        (CKA.CKA_SIGN, KeyAttributeNames.Sign), (CKA.CKA_VERIFY, KeyAttributeNames.Verify), (CKA.CKA_DECRYPT, KeyAttributeNames.Decrypt),
        (CKA.CKA_ENCRYPT, KeyAttributeNames.Encrypt), (CKA.CKA_WRAP, KeyAttributeNames.Wrap), (CKA.CKA_UNWRAP, KeyAttributeNames.Unwrap),
        (CKA.CKA_DERIVE, KeyAttributeNames.Derive), (CKA.CKA_SENSITIVE, KeyAttributeNames.Sensitive), (CKA.CKA_EXTRACTABLE, KeyAttributeNames.Extractable),
        (CKA.CKA_PRIVATE, KeyAttributeNames.Private), (CKA.CKA_SIGN_RECOVER, KeyAttributeNames.SignRecover),
        (CKA.CKA_ALWAYS_AUTHENTICATE, KeyAttributeNames.AlwaysAuthenticate),
    };

    /// <summary>The usage attributes' types, in <see cref="UsageAttributes"/> order, for one C_GetAttributeValue per key.</summary>
    public static readonly List<CKA> UsageTypes = UsageAttributes.Select(u => u.Cka).ToList();

    private static readonly Dictionary<string, CKA> UsageByName = UsageAttributes.ToDictionary(u => u.Name, u => u.Cka, StringComparer.Ordinal);

    public static CKO ObjectClass(WrappedKeyFile b) => b.KeyClass == KeyClass.Secret ? CKO.CKO_SECRET_KEY : CKO.CKO_PRIVATE_KEY;

    public static List<IObjectAttribute> Unwrap(WrappedKeyFile b, byte[] id, string? label, bool onToken, bool forTest)
    {
        var ckk = b.KeyKind switch
        {
            KeyKind.Rsa => CKK.CKK_RSA, KeyKind.Ec => CKK.CKK_EC, KeyKind.Aes => CKK.CKK_AES, KeyKind.GenericSecret => CKK.CKK_GENERIC_SECRET,
            _ => throw new PicoHsmException(PicoErrorKind.NotSupported, "KeyTypeNotSupported", $"Key type {b.KeyKind} cannot be restored.", b),
        };
        var t = new List<IObjectAttribute>
        {
            Attr(CKA.CKA_CLASS, ObjectClass(b)), Attr(CKA.CKA_KEY_TYPE, ckk), Attr(CKA.CKA_TOKEN, onToken), Attr(CKA.CKA_ID, id),
            Attr(CKA.CKA_SENSITIVE, true),
        };
        if (label is not null) t.Add(Attr(CKA.CKA_LABEL, label));
        bool isSecret = b.KeyClass == KeyClass.Secret;
        foreach (var (name, value) in b.Attributes)
        {
            if (!UsageByName.TryGetValue(name, out CKA cka)) continue;
            if (cka is CKA.CKA_VERIFY or CKA.CKA_ENCRYPT or CKA.CKA_WRAP && !isSecret) continue; // public-key usages
            if (cka is CKA.CKA_MODIFIABLE) continue; // set last would lock our own id change with -Force
            // The backup's digest is no signature: whoever can edit the file could clear
            // CKA_SENSITIVE. A restored key is always sensitive, whatever the file says.
            if (cka is CKA.CKA_SENSITIVE) continue;
            if (forTest && cka is CKA.CKA_SIGN or CKA.CKA_ENCRYPT or CKA.CKA_DECRYPT or CKA.CKA_VERIFY or CKA.CKA_ALWAYS_AUTHENTICATE) continue;
            t.Add(Attr(cka, value));
        }
        if (forTest)
        {
            // A throwaway session copy may do what the proof needs, whatever the original allowed.
            t.Add(Attr(CKA.CKA_SIGN, true));
            if (isSecret) { t.Add(Attr(CKA.CKA_ENCRYPT, true)); t.Add(Attr(CKA.CKA_DECRYPT, true)); }
        }
        return t;
    }

    public static List<IObjectAttribute> PublicKey(WrappedKeyFile b, byte[] id, string? label)
    {
        var t = new List<IObjectAttribute> { Attr(CKA.CKA_CLASS, CKO.CKO_PUBLIC_KEY), Attr(CKA.CKA_TOKEN, true), Attr(CKA.CKA_ID, id), Attr(CKA.CKA_PRIVATE, false) };
        if (label is not null) t.Add(Attr(CKA.CKA_LABEL, label));
        bool verify = !b.Attributes.TryGetValue(KeyAttributeNames.Sign, out bool s) || s;
        bool encrypt = !b.Attributes.TryGetValue(KeyAttributeNames.Decrypt, out bool d) || d;
        t.Add(Attr(CKA.CKA_VERIFY, verify));
        if (b.KeyKind == KeyKind.Rsa)
        {
            using var rsa = RSA.Create();
            rsa.ImportSubjectPublicKeyInfo(b.PublicKeyInfo, out _);
            var p = rsa.ExportParameters(false);
            t.Add(Attr(CKA.CKA_KEY_TYPE, CKK.CKK_RSA));
            t.Add(Attr(CKA.CKA_MODULUS, p.Modulus!));
            t.Add(Attr(CKA.CKA_PUBLIC_EXPONENT, p.Exponent!));
            t.Add(Attr(CKA.CKA_ENCRYPT, encrypt));
        }
        else
        {
            var (ecParams, point) = SplitEcSpki(b.PublicKeyInfo!);
            t.Add(Attr(CKA.CKA_KEY_TYPE, CKK.CKK_EC));
            t.Add(Attr(CKA.CKA_EC_PARAMS, b.CurveParameters ?? ecParams));
            t.Add(Attr(CKA.CKA_EC_POINT, PublicKeyInfo.WrapEcPoint(point)));
        }
        return t;
    }

    internal static (byte[] Params, byte[] Point) SplitEcSpki(byte[] spki)
    {
        var r = new AsnReader(spki, AsnEncodingRules.DER).ReadSequence();
        var alg = r.ReadSequence();
        alg.ReadObjectIdentifier();
        byte[] prm = alg.ReadEncodedValue().ToArray();
        byte[] point = r.ReadBitString(out _);
        return (prm, point);
    }

    public static List<IObjectAttribute> Certificate(WrappedKeyFile b, byte[] id)
    {
        using var x = new X509Certificate2(b.Certificate!);
        var t = new List<IObjectAttribute>
        {
            Attr(CKA.CKA_CLASS, CKO.CKO_CERTIFICATE), Attr(CKA.CKA_CERTIFICATE_TYPE, CKC.CKC_X_509), Attr(CKA.CKA_TOKEN, true),
            Attr(CKA.CKA_PRIVATE, false), Attr(CKA.CKA_ID, id), Attr(CKA.CKA_VALUE, b.Certificate!),
            Attr(CKA.CKA_SUBJECT, x.SubjectName.RawData), Attr(CKA.CKA_ISSUER, x.IssuerName.RawData),
            Attr(CKA.CKA_SERIAL_NUMBER, SerialDer(x.GetSerialNumber())),
        };
        if (b.CertificateLabel is not null) t.Add(Attr(CKA.CKA_LABEL, b.CertificateLabel));
        return t;
    }

    private static byte[] SerialDer(byte[] littleEndianSerial)
    {
        var w = new AsnWriter(AsnEncodingRules.DER);
        Array.Reverse(littleEndianSerial);
        w.WriteInteger(littleEndianSerial);
        return w.Encode();
    }
}
