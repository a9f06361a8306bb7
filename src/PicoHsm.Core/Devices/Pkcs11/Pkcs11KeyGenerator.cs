using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>Generates keys on a generic PKCS#11 token, ready to be backed up under the DKEK.</summary>
public static class Pkcs11KeyGenerator
{
    private static readonly List<CKA> ClassOnly = new() { CKA.CKA_CLASS };

    /// <summary>
    /// Why a generation would refuse, changing nothing: the key type the token does not generate, and an id
    /// any object already holds (a key, a public key, a certificate; the DKEK's id named as the DKEK's).
    /// </summary>
    internal static IReadOnlyList<PicoHsmException> Check(DeviceContext session, ISession s, Pkcs11Mechanisms mechanisms, KeyKind kind, byte[] id, DkekObjects? dkek)
    {
        var refusals = new List<PicoHsmException>();
        string idHex = IdHex(id);
        CKM? gen = kind switch
        {
            KeyKind.Rsa => CKM.CKM_RSA_PKCS_KEY_PAIR_GEN, KeyKind.Ec => CKM.CKM_EC_KEY_PAIR_GEN,
            KeyKind.Aes => CKM.CKM_AES_KEY_GEN, KeyKind.GenericSecret => CKM.CKM_GENERIC_SECRET_KEY_GEN, _ => null,
        };
        if (gen is null || !mechanisms.Supports(gen.Value))
            refusals.Add(new PicoHsmException(PicoErrorKind.NotSupported, "KeyTypeNotSupported",
                $"The token '{session.TokenLabel}' does not generate {kind} keys; choose another -KeyType.", kind));
        if (dkek is not null && dkek.Id.AsSpan().SequenceEqual(id))
        {
            refusals.Add(new PicoHsmException(PicoErrorKind.ResourceExists, "IdIsDkek",
                $"Id {idHex} on '{session.TokenLabel}' is the token's DKEK '{dkek.Label}' (KCV {KeyCheckValue.ToHex(dkek.Kcv)}, with its KCV record); a key never shares the DKEK's id. Choose another -Id.", idHex));
            return refusals;
        }
        var objects = Find(s, (CKA.CKA_ID, id));
        if (objects.Count > 0)
        {
            var names = objects.Select(h => (CKO)(Read(s, h, ClassOnly)[CKA.CKA_CLASS]?.GetValueAsUlong() ?? (ulong)CKO.CKO_VENDOR_DEFINED))
                .Distinct().Select(c => c switch
                {
                    CKO.CKO_PRIVATE_KEY => "a private key", CKO.CKO_SECRET_KEY => "a secret key", CKO.CKO_PUBLIC_KEY => "a public key",
                    CKO.CKO_CERTIFICATE => "a certificate", CKO.CKO_DATA => "a data object", _ => c.ToString(),
                });
            refusals.Add(new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
                $"Id {idHex} is already used on '{session.TokenLabel}' by {string.Join(" and ", names)}. Choose another -Id (Get-PicoKey lists the keys).", idHex));
        }
        return refusals;
    }

    public static PicoKey Generate(DeviceContext session, ISession s, KeyKind kind, int size, string? curve, byte[] id, string label, bool extractable)
    {
        lock (session.Gate)
        {
            // The caller (Pkcs11DkekBackend.GenerateKey) has run Check under the same gate; this stays as a last guard.
            if (Find(s, (CKA.CKA_ID, id)).Count > 0)
                throw new PicoHsmException(PicoErrorKind.ResourceExists, "IdInUse",
                    $"An object with id {IdHex(id)} already exists on '{session.TokenLabel}'. Choose another -Id.", IdHex(id));
            var f = Pkcs11Connection.Factories;
            IObjectHandle created;
            try
            {
                switch (kind)
                {
                    case KeyKind.Rsa:
                    case KeyKind.Ec:
                    {
                        var pub = new List<IObjectAttribute> { Attr(CKA.CKA_TOKEN, true), Attr(CKA.CKA_PRIVATE, false), Attr(CKA.CKA_ID, id), Attr(CKA.CKA_LABEL, label), Attr(CKA.CKA_VERIFY, true) };
                        var priv = new List<IObjectAttribute>
                        {
                            Attr(CKA.CKA_TOKEN, true), Attr(CKA.CKA_PRIVATE, true), Attr(CKA.CKA_SENSITIVE, true), Attr(CKA.CKA_EXTRACTABLE, extractable),
                            Attr(CKA.CKA_ID, id), Attr(CKA.CKA_LABEL, label), Attr(CKA.CKA_SIGN, true),
                        };
                        CKM mech;
                        if (kind == KeyKind.Rsa)
                        {
                            pub.Add(Attr(CKA.CKA_MODULUS_BITS, (ulong)size));
                            pub.Add(Attr(CKA.CKA_PUBLIC_EXPONENT, new byte[] { 1, 0, 1 }));
                            pub.Add(Attr(CKA.CKA_ENCRYPT, true));
                            priv.Add(Attr(CKA.CKA_DECRYPT, true));
                            mech = CKM.CKM_RSA_PKCS_KEY_PAIR_GEN;
                        }
                        else
                        {
                            var c = EcCurves.FromName(curve ?? "P-256") ?? throw new PicoHsmException(PicoErrorKind.InvalidArgument, "UnknownCurve",
                                $"Unknown curve '{curve}'. Use one of: {string.Join(", ", EcCurves.Known.Select(k => k.Name))}.", curve);
                            pub.Add(Attr(CKA.CKA_EC_PARAMS, EcCurves.ToEcParams(c)));
                            priv.Add(Attr(CKA.CKA_DERIVE, true));
                            mech = CKM.CKM_EC_KEY_PAIR_GEN;
                        }
                        s.GenerateKeyPair(f.MechanismFactory.Create(mech), pub, priv, out _, out created);
                        break;
                    }
                    case KeyKind.Aes:
                    case KeyKind.GenericSecret:
                        created = s.GenerateKey(f.MechanismFactory.Create(kind == KeyKind.Aes ? CKM.CKM_AES_KEY_GEN : CKM.CKM_GENERIC_SECRET_KEY_GEN), new List<IObjectAttribute>
                        {
                            Attr(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), Attr(CKA.CKA_KEY_TYPE, kind == KeyKind.Aes ? CKK.CKK_AES : CKK.CKK_GENERIC_SECRET),
                            Attr(CKA.CKA_TOKEN, true), Attr(CKA.CKA_PRIVATE, true), Attr(CKA.CKA_SENSITIVE, true), Attr(CKA.CKA_EXTRACTABLE, extractable),
                            Attr(CKA.CKA_VALUE_LEN, (ulong)(size / 8)), Attr(CKA.CKA_ID, id), Attr(CKA.CKA_LABEL, label),
                            Attr(CKA.CKA_ENCRYPT, true), Attr(CKA.CKA_DECRYPT, true),
                        });
                        break;
                    default:
                        throw new PicoHsmException(PicoErrorKind.InvalidArgument, "KeyTypeNotSupported", $"Cannot generate a key of type {kind}.", kind);
                }
            }
            catch (Pkcs11Exception ex)
            {
                throw Pkcs11Errors.Translate(ex, $"generate a {kind} key", session);
            }
            // The new key read by its handle: a listing here would make generating n keys quadratic.
            return Pkcs11KeyStore.Describe(session, s, created, secret: kind is KeyKind.Aes or KeyKind.GenericSecret);
        }
    }
}
