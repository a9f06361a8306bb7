using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;
using PicoHsm.Backup;
using PicoHsm.Common;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// The authentication tag of a .pkb (format version 2), made and checked by the token, so the DKEK
/// never leaves it. Export: one fresh HMAC key per backup run (a session object: generic secret, 32
/// bytes, extractable only so that it can be wrapped), wrapped once under the DKEK with the same
/// RFC 5649 wrap as the keys, then one C_Sign (CKM_SHA256_HMAC) per key over its restore fields.
/// Check: the file's MAC key unwrapped under the DKEK into a session object that can only verify,
/// one C_Verify, the object destroyed. Callers hold the context's gate.
/// </summary>
internal sealed class Pkcs11BackupMac
{
    private readonly DeviceContext _context;
    private readonly Pkcs11Connection _p11;
    private readonly Pkcs11Mechanisms _mechanisms;
    private (IObjectHandle Key, IObjectHandle Dkek, string Wrap, byte[] Wrapped)? _current;

    public Pkcs11BackupMac(DeviceContext context, Pkcs11Connection connection, Pkcs11Mechanisms mechanisms)
    {
        _context = context;
        _p11 = connection;
        _mechanisms = mechanisms;
    }

    private ISession S => _p11.Session;

    /// <summary>How many MAC keys this backend made (one per backup run; for tests).</summary>
    internal int KeysMade { get; private set; }

    /// <summary>Ends a backup run: the run's MAC key is destroyed (a session object: it would go at logout anyway).</summary>
    public void Reset()
    {
        if (_current is { } c)
        {
            try { S.DestroyObject(c.Key); } catch (Pkcs11Exception) { } catch (ObjectDisposedException) { }
        }
        _current = null;
    }

    /// <summary>The file with its tag: the run's MAC key (made on first use, wrapped under <paramref name="dkek"/>) signs its restore fields.</summary>
    public WrappedKeyFile Authenticate(WrappedKeyFile file, DkekObjects dkek)
    {
        _mechanisms.Require(CKM.CKM_SHA256_HMAC, "authenticate the backup (format version 2)");
        _mechanisms.Require(CKM.CKM_GENERIC_SECRET_KEY_GEN, "make the backup's MAC key");
        if (_current is not { } c || c.Dkek.ObjectId != dkek.Key.ObjectId)
        {
            Reset();
            var key = S.GenerateKey(Pkcs11Mechanisms.Create(CKM.CKM_GENERIC_SECRET_KEY_GEN), new List<IObjectAttribute>
            {
                Attr(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), Attr(CKA.CKA_KEY_TYPE, CKK.CKK_GENERIC_SECRET),
                Attr(CKA.CKA_VALUE_LEN, (ulong)BackupAuthentication.MacKeyLength), Attr(CKA.CKA_TOKEN, false), Attr(CKA.CKA_PRIVATE, true),
                Attr(CKA.CKA_SENSITIVE, true), Attr(CKA.CKA_EXTRACTABLE, true), Attr(CKA.CKA_SIGN, true), Attr(CKA.CKA_VERIFY, false),
                Attr(CKA.CKA_ENCRYPT, false), Attr(CKA.CKA_DECRYPT, false), Attr(CKA.CKA_WRAP, false), Attr(CKA.CKA_UNWRAP, false),
                Attr(CKA.CKA_DERIVE, false), Attr(CKA.CKA_LABEL, "PicoHsm backup MAC key"),
            });
            try
            {
                var mech = _mechanisms.ChooseWrapMechanism("SecretKey");
                byte[] wrapped = S.WrapKey(Pkcs11Mechanisms.Create(mech), dkek.Key, key);
                _current = c = (key, dkek.Key, mech.ToString(), wrapped);
                KeysMade++;
            }
            catch
            {
                try { S.DestroyObject(key); } catch (Pkcs11Exception) { }
                throw;
            }
        }
        byte[] data = BackupAuthentication.AuthenticatedBytes(file, BackupAuthentication.HmacSha256, c.Wrap, c.Wrapped);
        byte[] tag = Sign(c.Key, data);
        return file.WithAuthentication(new BackupAuthentication(BackupAuthentication.HmacSha256, c.Wrap, c.Wrapped, tag));
    }

    /// <summary>
    /// The HMAC-SHA256 tag in two token calls (C_SignInit, one C_Sign into a 32-byte buffer: see
    /// <see cref="Pkcs11OneCallReader.TrySign"/>); where that path is not available, Pkcs11Interop's
    /// three (it asks the length first).
    /// </summary>
    private byte[] Sign(IObjectHandle key, byte[] data)
    {
        var tag = new byte[BackupAuthentication.TagLength];
        int n = Pkcs11OneCallReader.TrySign(_p11.ModulePath, S.SessionId, CKM.CKM_SHA256_HMAC, key.ObjectId, data, tag, out byte[]? larger);
        if (n < 0) return S.Sign(Pkcs11Mechanisms.Create(CKM.CKM_SHA256_HMAC), key, data);
        if (larger is not null) return larger;
        if (n < tag.Length) Array.Resize(ref tag, n);
        return tag;
    }

    /// <summary>
    /// Whether the file's tag verifies under its MAC key unwrapped by <paramref name="dkek"/>: false when the MAC
    /// key does not unwrap (changed, or wrapped under another DKEK) or the tag does not verify. Only a session
    /// object is made, and destroyed at once.
    /// </summary>
    public bool Verify(WrappedKeyFile file, DkekObjects dkek)
    {
        var a = file.Authentication ?? throw new ArgumentException("The file has no authentication tag.", nameof(file));
        _mechanisms.Require(CKM.CKM_SHA256_HMAC, "check the backup's authentication tag");
        if (!Enum.TryParse(a.KeyWrapMechanism, out CKM wrap) || !_mechanisms.Supports(wrap))
            throw new PicoHsmException(PicoErrorKind.NotSupported, "MechanismNotSupported",
                $"The token '{_context.TokenLabel}' does not offer {a.KeyWrapMechanism}, needed to check the backup's authentication tag.", file.SourceName);
        IObjectHandle key;
        try
        {
            key = S.UnwrapKey(Pkcs11Mechanisms.Create(wrap), dkek.Key, a.WrappedMacKey, new List<IObjectAttribute>
            {
                Attr(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY), Attr(CKA.CKA_KEY_TYPE, CKK.CKK_GENERIC_SECRET), Attr(CKA.CKA_TOKEN, false),
                Attr(CKA.CKA_PRIVATE, true), Attr(CKA.CKA_SENSITIVE, true), Attr(CKA.CKA_EXTRACTABLE, false),
                Attr(CKA.CKA_SIGN, false), Attr(CKA.CKA_VERIFY, true), Attr(CKA.CKA_ENCRYPT, false), Attr(CKA.CKA_DECRYPT, false),
                Attr(CKA.CKA_WRAP, false), Attr(CKA.CKA_UNWRAP, false), Attr(CKA.CKA_DERIVE, false), Attr(CKA.CKA_LABEL, "PicoHsm backup MAC check"),
            });
        }
        catch (Pkcs11Exception ex) when (ex.RV is CKR.CKR_WRAPPED_KEY_INVALID or CKR.CKR_WRAPPED_KEY_LEN_RANGE or CKR.CKR_ENCRYPTED_DATA_INVALID
            or CKR.CKR_ENCRYPTED_DATA_LEN_RANGE or CKR.CKR_DATA_INVALID or CKR.CKR_DATA_LEN_RANGE or CKR.CKR_FUNCTION_FAILED or CKR.CKR_GENERAL_ERROR
            or CKR.CKR_KEY_SIZE_RANGE)
        {
            return false;
        }
        try
        {
            S.Verify(Pkcs11Mechanisms.Create(CKM.CKM_SHA256_HMAC), key, a.AuthenticatedBytes(file), a.Tag, out bool valid);
            return valid;
        }
        catch (Pkcs11Exception ex) when (ex.RV is CKR.CKR_SIGNATURE_INVALID or CKR.CKR_SIGNATURE_LEN_RANGE or CKR.CKR_KEY_SIZE_RANGE)
        {
            return false;
        }
        finally
        {
            try { S.DestroyObject(key); } catch (Pkcs11Exception) { }
        }
    }
}
