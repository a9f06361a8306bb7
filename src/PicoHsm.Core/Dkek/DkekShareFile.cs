using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using PicoHsm.Common;

namespace PicoHsm.Dkek;

/// <summary>
/// One custodian's DKEK share file (.dkekshare), format version 1. See docs/dkek-share-format.md.
/// The 32-byte Shamir share is encrypted with AES-256-GCM under a key derived from the custodian's
/// password with PBKDF2-HMAC-SHA256; every header byte is GCM associated data, so any change to
/// the file fails decryption (or, for structural fields, is refused before the KDF runs).
/// Instances hold no secret: only the public header and the ciphertext.
/// </summary>
public sealed class DkekShareFile
{
    public const string Extension = ".dkekshare";
    public const int FormatVersion = 1;
    public const int ShareLength = 32;
    public const int MinIterations = 600_000;
    public const int DefaultIterations = 600_000;
    /// <summary>Upper bound so a damaged iteration count cannot make a read run for hours.</summary>
    public const int MaxIterations = 10_000_000;
    public const int MinSaltLength = 16;
    public const int MaxSaltLength = 64;
    public const int DefaultSaltLength = 16;
    public const int NonceLength = 12;
    public const int TagLength = 16;
    public const int MaxLabelBytes = 512;
    public const byte KdfPbkdf2HmacSha256 = 1;
    public const byte AeadAes256Gcm = 1;

    /// <summary>"\x89PDKS\r\n\x1a": non-ASCII first byte and CR LF / ^Z catch text-mode transfers (as PNG does).</summary>
    public static ReadOnlySpan<byte> Magic => [0x89, 0x50, 0x44, 0x4B, 0x53, 0x0D, 0x0A, 0x1A];

    private const UnixFileMode GroupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>
    /// A warning when the share file at <paramref name="path"/> (ours or sc-hsm-tool's) can be read or written by
    /// users other than its owner (Unix mode &amp; 077 != 0); null when it cannot, on Windows, or when the mode
    /// cannot be read. Files the module writes are 0600; a share copied in by other means may not be.
    /// </summary>
    public static string? PermissionWarning(string path)
    {
        if (OperatingSystem.IsWindows()) return null;
        UnixFileMode mode;
        try { mode = File.GetUnixFileMode(path); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException) { return null; }
        if ((mode & GroupOrOther) == 0) return null;
        string octal = Convert.ToString((int)mode & 0x1FF, 8).PadLeft(3, '0');
        return $"The share file '{path}' can be read by users other than its owner (mode {octal}). Anyone who reads it can try passwords against it offline: " +
            $"make it owner-only (chmod 600 '{path}') and check who may have copied it.";
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly byte[] _bytes;     // the whole file
    private readonly int _headerLength; // bytes [0, _headerLength) are the associated data
    private readonly byte[] _kcv;
    private readonly byte[] _salt;
    private readonly byte[] _nonce;

    private DkekShareFile(byte[] bytes, int headerLength, Guid splitId, int index, int threshold, int shareCount,
        byte[] kcv, DateTimeOffset created, int iterations, byte[] salt, byte[] nonce, string label, string? sourceName)
    {
        _bytes = bytes;
        _headerLength = headerLength;
        SplitId = splitId;
        Index = index;
        Threshold = threshold;
        ShareCount = shareCount;
        _kcv = kcv;
        Created = created;
        Iterations = iterations;
        _salt = salt;
        _nonce = nonce;
        Label = label;
        SourceName = sourceName;
    }

    /// <summary>Random identifier common to all shares of one split: shares of two splits never mix.</summary>
    public Guid SplitId { get; }
    /// <summary>The share's x-coordinate, 1..m.</summary>
    public int Index { get; }
    /// <summary>n: how many shares rebuild the DKEK.</summary>
    public int Threshold { get; }
    /// <summary>m: how many shares were made.</summary>
    public int ShareCount { get; }
    public byte[] Kcv => (byte[])_kcv.Clone();
    public string KcvHex => KeyCheckValue.ToHex(_kcv);
    public DateTimeOffset Created { get; }
    public string Kdf => "PBKDF2-HMAC-SHA256";
    public int Iterations { get; }
    public byte[] Salt => (byte[])_salt.Clone();
    public string Label { get; }
    /// <summary>The name given to <see cref="Read"/> (null for a file made by <see cref="Create"/>).</summary>
    public string? SourceName { get; }

    private string DisplayName => SourceName is null ? "the DKEK share file" : $"the DKEK share file '{SourceName}'";

    public byte[] ToBytes() => (byte[])_bytes.Clone();

    /// <summary>A file name for this share: "dkek-&lt;kcv&gt;-share-&lt;i&gt;-of-&lt;m&gt;.dkekshare".</summary>
    public string SuggestedFileName => $"dkek-{KcvHex}-share-{Index}-of-{ShareCount}{Extension}";

    /// <summary>Encrypts one share under <paramref name="password"/> (which must pass <see cref="DkekPasswordPolicy"/>).</summary>
    public static DkekShareFile Create(ReadOnlySpan<byte> share, int index, int threshold, int shareCount,
        ReadOnlySpan<byte> kcv, Guid splitId, string label, ReadOnlySpan<char> password,
        DateTimeOffset? created = null, int iterations = DefaultIterations, CancellationToken cancellation = default)
    {
        if (share.Length != ShareLength)
            throw new ArgumentException($"A DKEK share is {ShareLength} bytes.", nameof(share));
        if (shareCount is < 2 or > Shamir.MaxShares)
            throw new ArgumentOutOfRangeException(nameof(shareCount), shareCount, "The share count m must be 2..255.");
        if (threshold < 2 || threshold > shareCount)
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "The threshold n must be 2..m.");
        if (index < 1 || index > shareCount)
            throw new ArgumentOutOfRangeException(nameof(index), index, "The share index must be 1..m.");
        if (kcv.Length != KeyCheckValue.Length || KeyCheckValue.IsUnknown(kcv))
            throw new ArgumentException("The DKEK key check value must be 8 bytes and not all zero.", nameof(kcv));
        if (splitId == Guid.Empty)
            throw new ArgumentException("The split id must not be empty.", nameof(splitId));
        ArgumentNullException.ThrowIfNull(label);
        if (iterations < MinIterations || iterations > MaxIterations)
            throw new ArgumentOutOfRangeException(nameof(iterations), iterations, $"PBKDF2 iterations must be {MinIterations}..{MaxIterations}.");
        DkekPasswordPolicy.Validate(password);
        byte[] labelBytes = StrictUtf8.GetBytes(label);
        if (labelBytes.Length > MaxLabelBytes)
            throw new ArgumentException($"The label is longer than {MaxLabelBytes} UTF-8 bytes.", nameof(label));

        DateTimeOffset when = DateTimeOffset.FromUnixTimeMilliseconds((created ?? DateTimeOffset.UtcNow).ToUnixTimeMilliseconds());
        byte[] salt = RandomNumberGenerator.GetBytes(DefaultSaltLength);
        byte[] nonce = RandomNumberGenerator.GetBytes(NonceLength);

        int headerLength = 51 + salt.Length + 1 + NonceLength + 2 + labelBytes.Length;
        byte[] bytes = new byte[headerLength + ShareLength + TagLength];
        Span<byte> w = bytes;
        Magic.CopyTo(w);
        BinaryPrimitives.WriteUInt16BigEndian(w[8..], FormatVersion);
        splitId.TryWriteBytes(w.Slice(10, 16), bigEndian: true, out _);
        w[26] = (byte)index;
        w[27] = (byte)threshold;
        w[28] = (byte)shareCount;
        kcv.CopyTo(w.Slice(29, 8));
        BinaryPrimitives.WriteInt64BigEndian(w[37..], when.ToUnixTimeMilliseconds());
        w[45] = KdfPbkdf2HmacSha256;
        BinaryPrimitives.WriteUInt32BigEndian(w[46..], (uint)iterations);
        w[50] = (byte)salt.Length;
        int p = 51;
        salt.CopyTo(w[p..]); p += salt.Length;
        w[p++] = AeadAes256Gcm;
        nonce.CopyTo(w[p..]); p += NonceLength;
        BinaryPrimitives.WriteUInt16BigEndian(w[p..], (ushort)labelBytes.Length); p += 2;
        labelBytes.CopyTo(w[p..]); p += labelBytes.Length;
        if (p != headerLength) throw new InvalidOperationException("Header length mismatch.");

        using (var key = DeriveKey(password, salt, iterations, cancellation))
        using (var gcm = new AesGcm(key.Span, TagLength))
        {
            gcm.Encrypt(nonce, share, w.Slice(headerLength, ShareLength), w.Slice(headerLength + ShareLength, TagLength), w[..headerLength]);
        }
        return new DkekShareFile(bytes, headerLength, splitId, index, threshold, shareCount, kcv.ToArray(), when,
            iterations, salt, nonce, label, sourceName: null);
    }

    /// <summary>
    /// Parses a share file without decrypting it. Structure is checked strictly; weak KDF parameters
    /// are refused here, before any password is used.
    /// </summary>
    public static DkekShareFile Read(byte[] bytes, string? sourceName)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        string name = sourceName is null ? "The DKEK share file" : $"The DKEK share file '{sourceName}'";
        DkekShareFileException Fail(DkekShareFileReason reason, string detail) => new(reason, sourceName, $"{name} {detail}");

        ReadOnlySpan<byte> r = bytes;
        if (r.Length < Magic.Length || !r[..Magic.Length].SequenceEqual(Magic))
            throw Fail(DkekShareFileReason.NotAShareFile, "is not a DKEK share file (it does not start with the share file signature).");
        if (r.Length < 10)
            throw Fail(DkekShareFileReason.Corrupt, "is truncated.");
        int version = BinaryPrimitives.ReadUInt16BigEndian(r[8..]);
        if (version != FormatVersion)
            throw Fail(DkekShareFileReason.UnsupportedVersion, $"has format version {version}; this version of PicoHsm reads version {FormatVersion} only.");
        if (r.Length < 51)
            throw Fail(DkekShareFileReason.Corrupt, "is truncated.");

#if NET
        var splitId = new Guid(r.Slice(10, 16), bigEndian: true);
#else
        var splitId = BclExtensions.GuidFromBytes(r.Slice(10, 16), bigEndian: true);
#endif
        int index = r[26], threshold = r[27], shareCount = r[28];
        if (splitId == Guid.Empty)
            throw Fail(DkekShareFileReason.Corrupt, "is damaged: its split id is empty.");
        if (shareCount < 2 || threshold < 2 || threshold > shareCount || index < 1 || index > shareCount)
            throw Fail(DkekShareFileReason.Corrupt, $"is damaged: share {index} of a {threshold}-of-{shareCount} split is not possible.");
        byte[] kcv = r.Slice(29, 8).ToArray();
        if (KeyCheckValue.IsUnknown(kcv))
            throw Fail(DkekShareFileReason.Corrupt, "is damaged: its DKEK key check value is all zeros.");
        long ms = BinaryPrimitives.ReadInt64BigEndian(r[37..]);
        if (ms < -62_135_596_800_000L || ms > 253_402_300_799_999L)
            throw Fail(DkekShareFileReason.Corrupt, "is damaged: its creation time is out of range.");
        var created = DateTimeOffset.FromUnixTimeMilliseconds(ms);
        if (r[45] != KdfPbkdf2HmacSha256)
            throw Fail(DkekShareFileReason.Corrupt, $"names an unknown key derivation function ({r[45]}).");
        uint iterations = BinaryPrimitives.ReadUInt32BigEndian(r[46..]);
        if (iterations < MinIterations)
            throw Fail(DkekShareFileReason.WeakKdf, $"claims {iterations} PBKDF2 iterations, below the minimum of {MinIterations}: refused (the file may have been tampered with).");
        if (iterations > MaxIterations)
            throw Fail(DkekShareFileReason.Corrupt, $"is damaged: it claims {iterations} PBKDF2 iterations (at most {MaxIterations} are allowed).");
        int saltLength = r[50];
        if (saltLength < MinSaltLength)
            throw Fail(DkekShareFileReason.WeakKdf, $"has a {saltLength}-byte salt, below the minimum of {MinSaltLength}: refused.");
        if (saltLength > MaxSaltLength)
            throw Fail(DkekShareFileReason.Corrupt, $"is damaged: its salt length {saltLength} is above {MaxSaltLength}.");
        int p = 51;
        if (r.Length < p + saltLength + 1 + NonceLength + 2)
            throw Fail(DkekShareFileReason.Corrupt, "is truncated.");
        byte[] salt = r.Slice(p, saltLength).ToArray(); p += saltLength;
        if (r[p] != AeadAes256Gcm)
            throw Fail(DkekShareFileReason.Corrupt, $"names an unknown encryption algorithm ({r[p]}).");
        p++;
        byte[] nonce = r.Slice(p, NonceLength).ToArray(); p += NonceLength;
        int labelLength = BinaryPrimitives.ReadUInt16BigEndian(r[p..]); p += 2;
        if (labelLength > MaxLabelBytes)
            throw Fail(DkekShareFileReason.Corrupt, $"is damaged: its label length {labelLength} is above {MaxLabelBytes}.");
        int headerLength = p + labelLength;
        int expected = headerLength + ShareLength + TagLength;
        if (r.Length < expected)
            throw Fail(DkekShareFileReason.Corrupt, "is truncated.");
        if (r.Length > expected)
            throw Fail(DkekShareFileReason.Corrupt, $"is damaged: it has {r.Length - expected} unexpected bytes at the end.");
        string label;
        try { label = StrictUtf8.GetString(r.Slice(p, labelLength)); }
        catch (DecoderFallbackException) { throw Fail(DkekShareFileReason.Corrupt, "is damaged: its label is not valid UTF-8."); }

        return new DkekShareFile((byte[])bytes.Clone(), headerLength, splitId, index, threshold, shareCount, kcv, created,
            (int)iterations, salt, nonce, label, sourceName);
    }

    /// <summary>
    /// Decrypts the share. A wrong password and a changed file are indistinguishable (GCM tag
    /// failure): <see cref="DkekShareFileReason.WrongPasswordOrTampered"/>. The caller disposes the result.
    /// </summary>
    public SecretBytes Decrypt(ReadOnlySpan<char> password, CancellationToken cancellation = default)
    {
        var share = new SecretBytes(ShareLength);
        try
        {
            using var key = DeriveKey(password, _salt, Iterations, cancellation);
            using var gcm = new AesGcm(key.Span, TagLength);
            ReadOnlySpan<byte> b = _bytes;
            gcm.Decrypt(_nonce, b.Slice(_headerLength, ShareLength), b.Slice(_headerLength + ShareLength, TagLength),
                share.Span, b[.._headerLength]);
            return share;
        }
        catch (AuthenticationTagMismatchException ex)
        {
            share.Dispose();
            throw new DkekShareFileException(DkekShareFileReason.WrongPasswordOrTampered, SourceName,
                $"Cannot decrypt {DisplayName}: the password is wrong, or the file has been changed.", ex);
        }
        catch
        {
            share.Dispose();
            throw;
        }
    }

    /// <summary>
    /// PBKDF2-HMAC-SHA256(UTF-8(NFC(password)), salt, iterations) -> 32-byte AES key. NFC so the same
    /// password typed on systems that compose accents differently gives the same key. ASCII passwords
    /// are encoded straight from the span; a non-ASCII password is normalized through a transient
    /// string, which cannot be zeroed (documented limitation).
    /// </summary>
    internal static SecretBytes DeriveKey(ReadOnlySpan<char> password, ReadOnlySpan<byte> salt, int iterations,
        CancellationToken cancellation = default)
    {
        if (password.IsEmpty)
            throw new ArgumentException("The password is empty.", nameof(password));
        ReadOnlySpan<char> chars = password;
        string? normalized = null;
        if (password.ContainsAnyExceptInRange((char)0, (char)0x7F))
        {
            normalized = password.ToString();
            try { normalized = normalized.Normalize(NormalizationForm.FormC); }
            catch (ArgumentException) { throw new ArgumentException("The password contains an invalid character (an unpaired UTF-16 surrogate).", nameof(password)); }
            chars = normalized;
        }
        int byteCount;
        try { byteCount = StrictUtf8.GetByteCount(chars); }
        catch (EncoderFallbackException) { throw new ArgumentException("The password contains an invalid character (an unpaired UTF-16 surrogate).", nameof(password)); }
        using var utf8 = new SecretBytes(byteCount);
        StrictUtf8.GetBytes(chars, utf8.Span);
        var key = new SecretBytes(32);
        try
        {
            Pbkdf2HmacSha256(utf8.Span, salt, key.Span, iterations, cancellation);
        }
        catch
        {
            key.Dispose();
            throw;
        }
        return key;
    }

    /// <summary>Iterations between two looks at the cancellation token (a few milliseconds of HMAC).</summary>
    internal const int IterationsPerCheck = 4096;

    /// <summary>
    /// PBKDF2-HMAC-SHA256 for one 32-byte block (RFC 8018: T1 = U1 ^ ... ^ Uc, U1 = HMAC(P, S || 1),
    /// Uj = HMAC(P, Uj-1)). Written out rather than Rfc2898DeriveBytes.Pbkdf2, which runs all
    /// 600,000 iterations in one native call that Ctrl+C cannot interrupt; this checks the token
    /// every <see cref="IterationsPerCheck"/> iterations. Same output (tested against Pbkdf2).
    /// </summary>
    internal static void Pbkdf2HmacSha256(ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt, Span<byte> output, int iterations,
        CancellationToken cancellation)
    {
        if (output.Length != 32) throw new ArgumentException("One PBKDF2-HMAC-SHA256 block is 32 bytes.", nameof(output));
        if (iterations < 1) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "At least one iteration.");
#if NETSTANDARD2_0
        // .NET Framework's (and Mono's) HMAC re-hashes the key pads on every reset: the Desktop build
        // runs its own rounds there; loaded in PowerShell 7 it keeps the platform's (native) HMAC below.
        if (Pbkdf2Sha256.PlatformHmacIsManaged)
        {
            Pbkdf2Sha256.DeriveBlock(password, salt, output, iterations, IterationsPerCheck, cancellation);
            return;
        }
#endif
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, password);
        Span<byte> u = stackalloc byte[32];
        Span<byte> blockIndex = stackalloc byte[4];
        try
        {
            BinaryPrimitives.WriteInt32BigEndian(blockIndex, 1);
            hmac.AppendData(salt);
            hmac.AppendData(blockIndex);
            hmac.GetHashAndReset(u);
            u.CopyTo(output);
            for (int i = 1; i < iterations; i++)
            {
                if (i % IterationsPerCheck == 0) cancellation.ThrowIfCancellationRequested();
                hmac.AppendData(u);
                hmac.GetHashAndReset(u);
                for (int k = 0; k < 32; k++) output[k] ^= u[k];
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(u);
        }
    }
}
