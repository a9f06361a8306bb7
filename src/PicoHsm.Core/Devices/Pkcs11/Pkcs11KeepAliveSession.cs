using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using Net.Pkcs11Interop.HighLevelAPI.MechanismParams;

namespace PicoHsm.Devices.Pkcs11;

/// <summary>
/// The PKCS#11 session every connection uses: Pkcs11Interop's, with each template and mechanism kept
/// alive until the native call that reads it has returned.
/// <para>
/// Why: Pkcs11Interop copies each <see cref="IObjectAttribute"/>'s CK_ATTRIBUTE (type, pointer to its
/// value in unmanaged memory, length) into an array and then calls the module. After the copy nothing
/// refers to the attribute objects any more, so the JIT's optimised code lets the GC collect them while
/// the module is still reading the template, and their finalizers free the values (Marshal.FreeHGlobal)
/// under it. The module then reads freed memory: malloc's own bookkeeping in place of a CKA_ID or a
/// CKA_LABEL. Seen as a restore from four runspaces (whose allocations make the GC run often) that made
/// one key of 1,000 under another id, with no error: the key was there, but not at its id. The same
/// holds for the search templates (a search for the DKEK that finds nothing) and for a mechanism's
/// parameters. <see cref="GC.KeepAlive"/> after each call ends that window.
/// </para>
/// </summary>
internal sealed class Pkcs11KeepAliveSession : ISession
{
    private readonly ISession _s;

    public Pkcs11KeepAliveSession(ISession session) => _s = session ?? throw new ArgumentNullException(nameof(session));

    /// <summary>The session Pkcs11Interop made (for code that must hand it to Pkcs11Interop itself).</summary>
    public ISession Inner => _s;

    public void Dispose() => _s.Dispose();

    public Pkcs11InteropFactories Factories => _s.Factories;
    public ulong SessionId => _s.SessionId;
    public bool CloseWhenDisposed => _s.CloseWhenDisposed;
    public void CloseSession() { _s.CloseSession(); }
    public void InitPin(string userPin) { _s.InitPin(userPin); }
    public void InitPin(byte[] userPin) { _s.InitPin(userPin); }
    public void SetPin(string oldPin, string newPin) { _s.SetPin(oldPin, newPin); }
    public void SetPin(byte[] oldPin, byte[] newPin) { _s.SetPin(oldPin, newPin); }
    public ISessionInfo GetSessionInfo() { return _s.GetSessionInfo(); }
    public byte[] GetOperationState() { return _s.GetOperationState(); }
    public void SetOperationState(byte[] state, IObjectHandle encryptionKey, IObjectHandle authenticationKey) { _s.SetOperationState(state, encryptionKey, authenticationKey); }
    public void Login(CKU userType, string pin) { _s.Login(userType, pin); }
    public void Login(CKU userType, byte[] pin) { _s.Login(userType, pin); }
    public void Logout() { _s.Logout(); }
    public IObjectHandle CreateObject(List<IObjectAttribute> attributes) { try { return _s.CreateObject(attributes); } finally { GC.KeepAlive(attributes); } }
    public IObjectHandle CopyObject(IObjectHandle objectHandle, List<IObjectAttribute> attributes) { try { return _s.CopyObject(objectHandle, attributes); } finally { GC.KeepAlive(attributes); } }
    public void DestroyObject(IObjectHandle objectHandle) { _s.DestroyObject(objectHandle); }
    public ulong GetObjectSize(IObjectHandle objectHandle) { return _s.GetObjectSize(objectHandle); }
    public List<IObjectAttribute> GetAttributeValue(IObjectHandle objectHandle, List<CKA> attributes) { return _s.GetAttributeValue(objectHandle, attributes); }
    public List<IObjectAttribute> GetAttributeValue(IObjectHandle objectHandle, List<ulong> attributes) { return _s.GetAttributeValue(objectHandle, attributes); }
    public void SetAttributeValue(IObjectHandle objectHandle, List<IObjectAttribute> attributes) { try { _s.SetAttributeValue(objectHandle, attributes); } finally { GC.KeepAlive(attributes); } }
    public void FindObjectsInit(List<IObjectAttribute> attributes) { try { _s.FindObjectsInit(attributes); } finally { GC.KeepAlive(attributes); } }
    public List<IObjectHandle> FindObjects(int objectCount) { return _s.FindObjects(objectCount); }
    public void FindObjectsFinal() { _s.FindObjectsFinal(); }
    public List<IObjectHandle> FindAllObjects(List<IObjectAttribute> attributes) { try { return _s.FindAllObjects(attributes); } finally { GC.KeepAlive(attributes); } }
    public byte[] Encrypt(IMechanism mechanism, IObjectHandle keyHandle, byte[] data) { try { return _s.Encrypt(mechanism, keyHandle, data); } finally { GC.KeepAlive(mechanism); } }
    public void Encrypt(IMechanism mechanism, IObjectHandle keyHandle, Stream inputStream, Stream outputStream) { try { _s.Encrypt(mechanism, keyHandle, inputStream, outputStream); } finally { GC.KeepAlive(mechanism); } }
    public void Encrypt(IMechanism mechanism, IObjectHandle keyHandle, Stream inputStream, Stream outputStream, int bufferLength) { try { _s.Encrypt(mechanism, keyHandle, inputStream, outputStream, bufferLength); } finally { GC.KeepAlive(mechanism); } }
    public byte[] Decrypt(IMechanism mechanism, IObjectHandle keyHandle, byte[] encryptedData) { try { return _s.Decrypt(mechanism, keyHandle, encryptedData); } finally { GC.KeepAlive(mechanism); } }
    public void Decrypt(IMechanism mechanism, IObjectHandle keyHandle, Stream inputStream, Stream outputStream) { try { _s.Decrypt(mechanism, keyHandle, inputStream, outputStream); } finally { GC.KeepAlive(mechanism); } }
    public void Decrypt(IMechanism mechanism, IObjectHandle keyHandle, Stream inputStream, Stream outputStream, int bufferLength) { try { _s.Decrypt(mechanism, keyHandle, inputStream, outputStream, bufferLength); } finally { GC.KeepAlive(mechanism); } }
    public byte[] DigestKey(IMechanism mechanism, IObjectHandle keyHandle) { try { return _s.DigestKey(mechanism, keyHandle); } finally { GC.KeepAlive(mechanism); } }
    public byte[] Digest(IMechanism mechanism, byte[] data) { try { return _s.Digest(mechanism, data); } finally { GC.KeepAlive(mechanism); } }
    public byte[] Digest(IMechanism mechanism, Stream inputStream) { try { return _s.Digest(mechanism, inputStream); } finally { GC.KeepAlive(mechanism); } }
    public byte[] Digest(IMechanism mechanism, Stream inputStream, int bufferLength) { try { return _s.Digest(mechanism, inputStream, bufferLength); } finally { GC.KeepAlive(mechanism); } }
    public byte[] Sign(IMechanism mechanism, IObjectHandle keyHandle, byte[] data) { try { return _s.Sign(mechanism, keyHandle, data); } finally { GC.KeepAlive(mechanism); } }
    public byte[] Sign(IMechanism mechanism, IObjectHandle keyHandle, string keyPin, byte[] data) { try { return _s.Sign(mechanism, keyHandle, keyPin, data); } finally { GC.KeepAlive(mechanism); } }
    public byte[] Sign(IMechanism mechanism, IObjectHandle keyHandle, byte[] keyPin, byte[] data) { try { return _s.Sign(mechanism, keyHandle, keyPin, data); } finally { GC.KeepAlive(mechanism); } }
    public byte[] Sign(IMechanism mechanism, IObjectHandle keyHandle, Stream inputStream) { try { return _s.Sign(mechanism, keyHandle, inputStream); } finally { GC.KeepAlive(mechanism); } }
    public byte[] Sign(IMechanism mechanism, IObjectHandle keyHandle, string keyPin, Stream inputStream) { try { return _s.Sign(mechanism, keyHandle, keyPin, inputStream); } finally { GC.KeepAlive(mechanism); } }
    public byte[] Sign(IMechanism mechanism, IObjectHandle keyHandle, byte[] keyPin, Stream inputStream) { try { return _s.Sign(mechanism, keyHandle, keyPin, inputStream); } finally { GC.KeepAlive(mechanism); } }
    public byte[] Sign(IMechanism mechanism, IObjectHandle keyHandle, Stream inputStream, int bufferLength) { try { return _s.Sign(mechanism, keyHandle, inputStream, bufferLength); } finally { GC.KeepAlive(mechanism); } }
    public byte[] Sign(IMechanism mechanism, IObjectHandle keyHandle, string keyPin, Stream inputStream, int bufferLength) { try { return _s.Sign(mechanism, keyHandle, keyPin, inputStream, bufferLength); } finally { GC.KeepAlive(mechanism); } }
    public byte[] Sign(IMechanism mechanism, IObjectHandle keyHandle, byte[] keyPin, Stream inputStream, int bufferLength) { try { return _s.Sign(mechanism, keyHandle, keyPin, inputStream, bufferLength); } finally { GC.KeepAlive(mechanism); } }
    public byte[] SignRecover(IMechanism mechanism, IObjectHandle keyHandle, byte[] data) { try { return _s.SignRecover(mechanism, keyHandle, data); } finally { GC.KeepAlive(mechanism); } }
    public byte[] SignRecover(IMechanism mechanism, IObjectHandle keyHandle, string keyPin, byte[] data) { try { return _s.SignRecover(mechanism, keyHandle, keyPin, data); } finally { GC.KeepAlive(mechanism); } }
    public byte[] SignRecover(IMechanism mechanism, IObjectHandle keyHandle, byte[] keyPin, byte[] data) { try { return _s.SignRecover(mechanism, keyHandle, keyPin, data); } finally { GC.KeepAlive(mechanism); } }
    public void Verify(IMechanism mechanism, IObjectHandle keyHandle, byte[] data, byte[] signature, out bool isValid) { try { _s.Verify(mechanism, keyHandle, data, signature, out isValid); } finally { GC.KeepAlive(mechanism); } }
    public void Verify(IMechanism mechanism, IObjectHandle keyHandle, Stream inputStream, byte[] signature, out bool isValid) { try { _s.Verify(mechanism, keyHandle, inputStream, signature, out isValid); } finally { GC.KeepAlive(mechanism); } }
    public void Verify(IMechanism mechanism, IObjectHandle keyHandle, Stream inputStream, byte[] signature, out bool isValid, int bufferLength) { try { _s.Verify(mechanism, keyHandle, inputStream, signature, out isValid, bufferLength); } finally { GC.KeepAlive(mechanism); } }
    public byte[] VerifyRecover(IMechanism mechanism, IObjectHandle keyHandle, byte[] signature, out bool isValid) { try { return _s.VerifyRecover(mechanism, keyHandle, signature, out isValid); } finally { GC.KeepAlive(mechanism); } }
    public void DigestEncrypt(IMechanism digestingMechanism, IMechanism encryptionMechanism, IObjectHandle keyHandle, byte[] data, out byte[] digest, out byte[] encryptedData) { try { _s.DigestEncrypt(digestingMechanism, encryptionMechanism, keyHandle, data, out digest, out encryptedData); } finally { GC.KeepAlive(digestingMechanism); GC.KeepAlive(encryptionMechanism); } }
    public byte[] DigestEncrypt(IMechanism digestingMechanism, IMechanism encryptionMechanism, IObjectHandle keyHandle, Stream inputStream, Stream outputStream) { try { return _s.DigestEncrypt(digestingMechanism, encryptionMechanism, keyHandle, inputStream, outputStream); } finally { GC.KeepAlive(digestingMechanism); GC.KeepAlive(encryptionMechanism); } }
    public byte[] DigestEncrypt(IMechanism digestingMechanism, IMechanism encryptionMechanism, IObjectHandle keyHandle, Stream inputStream, Stream outputStream, int bufferLength) { try { return _s.DigestEncrypt(digestingMechanism, encryptionMechanism, keyHandle, inputStream, outputStream, bufferLength); } finally { GC.KeepAlive(digestingMechanism); GC.KeepAlive(encryptionMechanism); } }
    public void DecryptDigest(IMechanism digestingMechanism, IMechanism decryptionMechanism, IObjectHandle keyHandle, byte[] data, out byte[] digest, out byte[] decryptedData) { try { _s.DecryptDigest(digestingMechanism, decryptionMechanism, keyHandle, data, out digest, out decryptedData); } finally { GC.KeepAlive(digestingMechanism); GC.KeepAlive(decryptionMechanism); } }
    public byte[] DecryptDigest(IMechanism digestingMechanism, IMechanism decryptionMechanism, IObjectHandle keyHandle, Stream inputStream, Stream outputStream) { try { return _s.DecryptDigest(digestingMechanism, decryptionMechanism, keyHandle, inputStream, outputStream); } finally { GC.KeepAlive(digestingMechanism); GC.KeepAlive(decryptionMechanism); } }
    public byte[] DecryptDigest(IMechanism digestingMechanism, IMechanism decryptionMechanism, IObjectHandle keyHandle, Stream inputStream, Stream outputStream, int bufferLength) { try { return _s.DecryptDigest(digestingMechanism, decryptionMechanism, keyHandle, inputStream, outputStream, bufferLength); } finally { GC.KeepAlive(digestingMechanism); GC.KeepAlive(decryptionMechanism); } }
    public void SignEncrypt(IMechanism signingMechanism, IObjectHandle signingKeyHandle, IMechanism encryptionMechanism, IObjectHandle encryptionKeyHandle, byte[] data, out byte[] signature, out byte[] encryptedData) { try { _s.SignEncrypt(signingMechanism, signingKeyHandle, encryptionMechanism, encryptionKeyHandle, data, out signature, out encryptedData); } finally { GC.KeepAlive(signingMechanism); GC.KeepAlive(encryptionMechanism); } }
    public void SignEncrypt(IMechanism signingMechanism, IObjectHandle signingKeyHandle, string signingKeyPin, IMechanism encryptionMechanism, IObjectHandle encryptionKeyHandle, byte[] data, out byte[] signature, out byte[] encryptedData) { try { _s.SignEncrypt(signingMechanism, signingKeyHandle, signingKeyPin, encryptionMechanism, encryptionKeyHandle, data, out signature, out encryptedData); } finally { GC.KeepAlive(signingMechanism); GC.KeepAlive(encryptionMechanism); } }
    public void SignEncrypt(IMechanism signingMechanism, IObjectHandle signingKeyHandle, byte[] signingKeyPin, IMechanism encryptionMechanism, IObjectHandle encryptionKeyHandle, byte[] data, out byte[] signature, out byte[] encryptedData) { try { _s.SignEncrypt(signingMechanism, signingKeyHandle, signingKeyPin, encryptionMechanism, encryptionKeyHandle, data, out signature, out encryptedData); } finally { GC.KeepAlive(signingMechanism); GC.KeepAlive(encryptionMechanism); } }
    public byte[] SignEncrypt(IMechanism signingMechanism, IObjectHandle signingKeyHandle, IMechanism encryptionMechanism, IObjectHandle encryptionKeyHandle, Stream inputStream, Stream outputStream) { try { return _s.SignEncrypt(signingMechanism, signingKeyHandle, encryptionMechanism, encryptionKeyHandle, inputStream, outputStream); } finally { GC.KeepAlive(signingMechanism); GC.KeepAlive(encryptionMechanism); } }
    public byte[] SignEncrypt(IMechanism signingMechanism, IObjectHandle signingKeyHandle, string signingKeyPin, IMechanism encryptionMechanism, IObjectHandle encryptionKeyHandle, Stream inputStream, Stream outputStream) { try { return _s.SignEncrypt(signingMechanism, signingKeyHandle, signingKeyPin, encryptionMechanism, encryptionKeyHandle, inputStream, outputStream); } finally { GC.KeepAlive(signingMechanism); GC.KeepAlive(encryptionMechanism); } }
    public byte[] SignEncrypt(IMechanism signingMechanism, IObjectHandle signingKeyHandle, byte[] signingKeyPin, IMechanism encryptionMechanism, IObjectHandle encryptionKeyHandle, Stream inputStream, Stream outputStream) { try { return _s.SignEncrypt(signingMechanism, signingKeyHandle, signingKeyPin, encryptionMechanism, encryptionKeyHandle, inputStream, outputStream); } finally { GC.KeepAlive(signingMechanism); GC.KeepAlive(encryptionMechanism); } }
    public byte[] SignEncrypt(IMechanism signingMechanism, IObjectHandle signingKeyHandle, IMechanism encryptionMechanism, IObjectHandle encryptionKeyHandle, Stream inputStream, Stream outputStream, int bufferLength) { try { return _s.SignEncrypt(signingMechanism, signingKeyHandle, encryptionMechanism, encryptionKeyHandle, inputStream, outputStream, bufferLength); } finally { GC.KeepAlive(signingMechanism); GC.KeepAlive(encryptionMechanism); } }
    public byte[] SignEncrypt(IMechanism signingMechanism, IObjectHandle signingKeyHandle, string signingKeyPin, IMechanism encryptionMechanism, IObjectHandle encryptionKeyHandle, Stream inputStream, Stream outputStream, int bufferLength) { try { return _s.SignEncrypt(signingMechanism, signingKeyHandle, signingKeyPin, encryptionMechanism, encryptionKeyHandle, inputStream, outputStream, bufferLength); } finally { GC.KeepAlive(signingMechanism); GC.KeepAlive(encryptionMechanism); } }
    public byte[] SignEncrypt(IMechanism signingMechanism, IObjectHandle signingKeyHandle, byte[] signingKeyPin, IMechanism encryptionMechanism, IObjectHandle encryptionKeyHandle, Stream inputStream, Stream outputStream, int bufferLength) { try { return _s.SignEncrypt(signingMechanism, signingKeyHandle, signingKeyPin, encryptionMechanism, encryptionKeyHandle, inputStream, outputStream, bufferLength); } finally { GC.KeepAlive(signingMechanism); GC.KeepAlive(encryptionMechanism); } }
    public void DecryptVerify(IMechanism verificationMechanism, IObjectHandle verificationKeyHandle, IMechanism decryptionMechanism, IObjectHandle decryptionKeyHandle, byte[] data, byte[] signature, out byte[] decryptedData, out bool isValid) { try { _s.DecryptVerify(verificationMechanism, verificationKeyHandle, decryptionMechanism, decryptionKeyHandle, data, signature, out decryptedData, out isValid); } finally { GC.KeepAlive(verificationMechanism); GC.KeepAlive(decryptionMechanism); } }
    public void DecryptVerify(IMechanism verificationMechanism, IObjectHandle verificationKeyHandle, IMechanism decryptionMechanism, IObjectHandle decryptionKeyHandle, Stream inputStream, Stream outputStream, byte[] signature, out bool isValid) { try { _s.DecryptVerify(verificationMechanism, verificationKeyHandle, decryptionMechanism, decryptionKeyHandle, inputStream, outputStream, signature, out isValid); } finally { GC.KeepAlive(verificationMechanism); GC.KeepAlive(decryptionMechanism); } }
    public void DecryptVerify(IMechanism verificationMechanism, IObjectHandle verificationKeyHandle, IMechanism decryptionMechanism, IObjectHandle decryptionKeyHandle, Stream inputStream, Stream outputStream, byte[] signature, out bool isValid, int bufferLength) { try { _s.DecryptVerify(verificationMechanism, verificationKeyHandle, decryptionMechanism, decryptionKeyHandle, inputStream, outputStream, signature, out isValid, bufferLength); } finally { GC.KeepAlive(verificationMechanism); GC.KeepAlive(decryptionMechanism); } }
    public IObjectHandle GenerateKey(IMechanism mechanism, List<IObjectAttribute> attributes) { try { return _s.GenerateKey(mechanism, attributes); } finally { GC.KeepAlive(mechanism); GC.KeepAlive(attributes); } }
    public void GenerateKeyPair(IMechanism mechanism, List<IObjectAttribute> publicKeyAttributes, List<IObjectAttribute> privateKeyAttributes, out IObjectHandle publicKeyHandle, out IObjectHandle privateKeyHandle) { try { _s.GenerateKeyPair(mechanism, publicKeyAttributes, privateKeyAttributes, out publicKeyHandle, out privateKeyHandle); } finally { GC.KeepAlive(mechanism); GC.KeepAlive(publicKeyAttributes); GC.KeepAlive(privateKeyAttributes); } }
    public byte[] WrapKey(IMechanism mechanism, IObjectHandle wrappingKeyHandle, IObjectHandle keyHandle) { try { return _s.WrapKey(mechanism, wrappingKeyHandle, keyHandle); } finally { GC.KeepAlive(mechanism); } }
    public IObjectHandle UnwrapKey(IMechanism mechanism, IObjectHandle unwrappingKeyHandle, byte[] wrappedKey, List<IObjectAttribute> attributes) { try { return _s.UnwrapKey(mechanism, unwrappingKeyHandle, wrappedKey, attributes); } finally { GC.KeepAlive(mechanism); GC.KeepAlive(attributes); } }
    public IObjectHandle DeriveKey(IMechanism mechanism, IObjectHandle baseKeyHandle, List<IObjectAttribute> attributes) { try { return _s.DeriveKey(mechanism, baseKeyHandle, attributes); } finally { GC.KeepAlive(mechanism); GC.KeepAlive(attributes); } }
    public void SeedRandom(byte[] seed) { _s.SeedRandom(seed); }
    public byte[] GenerateRandom(int length) { return _s.GenerateRandom(length); }
    public void GetFunctionStatus() { _s.GetFunctionStatus(); }
    public void CancelFunction() { _s.CancelFunction(); }
}
