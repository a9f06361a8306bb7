using System.Security.Cryptography;
using PicoHsm.Common;

namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>
/// An EC private key from a key blob (type 0x0C): a, b, p, order, G (04|x|y), d, Q (04|x|y), each
/// length(2) + value, after the key size in bits. The firmware writes a with length 0 for the NIST and
/// Koblitz curves and finds the curve by p alone, so <see cref="Curve"/> is looked up by p.
/// Values are kept as the blob encodes them, so writing the material again reproduces the blob.
/// </summary>
public sealed class ScHsmEcKeyMaterial : ScHsmKeyMaterial
{
    private readonly byte[] _a, _b, _prime, _order, _generator, _publicPoint;

    private ScHsmEcKeyMaterial(int keySize, byte[] a, byte[] b, byte[] prime, byte[] order, byte[] generator,
        SecretBytes d, byte[] publicPoint) : base(keySize)
    {
        _a = a; _b = b; _prime = prime; _order = order; _generator = generator; _publicPoint = publicPoint;
        D = d;
    }

    public override ScHsmKeyType KeyType => ScHsmKeyType.Ec;

    public ReadOnlySpan<byte> A => _a;
    public ReadOnlySpan<byte> B => _b;
    public ReadOnlySpan<byte> Prime => _prime;
    public ReadOnlySpan<byte> Order => _order;
    /// <summary>G as written in the blob (uncompressed point).</summary>
    public ReadOnlySpan<byte> Generator => _generator;
    /// <summary>Q as written in the blob (uncompressed point 04|x|y).</summary>
    public ReadOnlySpan<byte> PublicPoint => _publicPoint;
    /// <summary>The private scalar d (big-endian, as many bytes as the blob gives).</summary>
    public SecretBytes D { get; }

    /// <summary>The curve, identified by its prime as the firmware does; null for a curve not in <see cref="ScHsmCurve.Known"/>.</summary>
    public ScHsmCurve? Curve => ScHsmCurve.FromPrime(_prime);

    /// <summary>Material to wrap, encoded as the Pico HSM firmware encodes it (mbedTLS number sizes).</summary>
    public static ScHsmEcKeyMaterial FromECParameters(in ECParameters parameters)
    {
        if (parameters.D is null) throw new ArgumentException("The EC parameters have no private key.", nameof(parameters));
        var curve = ScHsmCurve.FromECCurve(parameters.Curve)
                    ?? throw new ArgumentException("The key's curve is not one the SmartCard-HSM supports.", nameof(parameters));
        byte[] q;
        if (parameters.Q.X is not null && parameters.Q.Y is not null)
        {
            q = new byte[1 + 2 * curve.FieldSizeBytes];
            q[0] = 0x04;
            UnsignedBytes.PadTo(parameters.Q.X, curve.FieldSizeBytes).CopyTo(q, 1);
            UnsignedBytes.PadTo(parameters.Q.Y, curve.FieldSizeBytes).CopyTo(q, 1 + curve.FieldSizeBytes);
        }
        else
        {
            q = PublicPointOf(curve, parameters.D);
        }
        return new ScHsmEcKeyMaterial(
            keySize: curve.Prime.Length * 8,  // the firmware's mbedtls_mpi_size(P) * 8: 528 for P-521
            a: curve.FirmwareOmitsA ? [] : curve.A,
            b: curve.B,
            prime: curve.Prime,
            order: curve.Order,
            generator: curve.Generator,
            d: SecretBytes.CopyOf(UnsignedBytes.TrimLeadingZeros(parameters.D)),
            publicPoint: q);
    }

#if NET
    public static ScHsmEcKeyMaterial FromECAlgorithm(ECAlgorithm key)
#else
    public static ScHsmEcKeyMaterial FromECAlgorithm(ECDsa key)
#endif
    {
        ArgumentNullException.ThrowIfNull(key);
        var parameters = key.ExportParameters(includePrivateParameters: true);
        try
        {
            return FromECParameters(parameters);
        }
        finally
        {
            if (parameters.D is not null) CryptographicOperations.ZeroMemory(parameters.D);
        }
    }

    /// <summary>
    /// .NET parameters on the named curve. The D array (pinned) is the caller's: clear it after use.
    /// </summary>
    public ECParameters ToECParameters()
    {
        var curve = Curve ?? throw new ScHsmFormatException("The key blob's curve (by its prime) is not a known curve.");
        int size = curve.FieldSizeBytes;
        if (_publicPoint.Length != 1 + 2 * size || _publicPoint[0] != 0x04)
            throw new ScHsmFormatException("The key blob's public point is not an uncompressed point on its curve.");
        return new ECParameters
        {
            Curve = curve.ToECCurve(),
            Q = new ECPoint { X = _publicPoint[1..(1 + size)], Y = _publicPoint[(1 + size)..] },
            D = PinnedPad(D.Span, size),
        };
    }

    /// <summary>d left-padded to <paramref name="size"/> bytes in a pinned array (the GC leaves no moved copy); the caller zeroes it.</summary>
    private static byte[] PinnedPad(ReadOnlySpan<byte> d, int size)
    {
        var trimmed = UnsignedBytes.TrimLeadingZeros(d);
        if (trimmed.Length > size) throw new ScHsmFormatException("The key blob's private scalar is longer than its curve's field.");
        var padded = GC.AllocateArray<byte>(size, pinned: true);
        trimmed.CopyTo(padded.AsSpan(size - trimmed.Length));
        return padded;
    }

    public ECDsa ToECDsa()
    {
        var parameters = ToECParameters();
        try
        {
            var ecdsa = ECDsa.Create();
            ecdsa.ImportParameters(parameters);
            return ecdsa;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(parameters.D);
        }
    }

    /// <summary>
    /// d·G on <paramref name="curve"/>, uncompressed. The scalar goes to the platform's EC code (OpenSSL,
    /// CNG) from a pinned buffer of the field's width that is zeroed after the import, and the key object
    /// that held it is disposed (OpenSSL clears a private key when it frees it). Only where the platform
    /// does not know the curve (macOS knows the NIST curves alone) or refuses the scalar is it done with
    /// BouncyCastle, whose BigInteger is an immutable copy of d that cannot be zeroed (see SECURITY.md).
    /// </summary>
    internal static byte[] PublicPointOf(ScHsmCurve curve, ReadOnlySpan<byte> d) =>
        PlatformPublicPointOf(curve, d) ?? BouncyCastlePublicPointOf(curve, d);

    /// <summary>d·G by the platform, or null where it does not have the curve or will not take d (0, or not below the order).</summary>
    internal static byte[]? PlatformPublicPointOf(ScHsmCurve curve, ReadOnlySpan<byte> d)
    {
        int size = curve.FieldSizeBytes;
        var trimmed = UnsignedBytes.TrimLeadingZeros(d);
        if (trimmed.IsEmpty || trimmed.Length > size) return null;
        using var scalar = new SecretBytes(size);
        trimmed.CopyTo(scalar.Span[(size - trimmed.Length)..]);
        try
        {
            using var ec = ECDsa.Create();
            ec.ImportParameters(new ECParameters { Curve = curve.ToECCurve(), D = scalar.UnsafeArray });
            var pub = ec.ExportParameters(includePrivateParameters: false);
            if (pub.Q.X is null || pub.Q.Y is null) return null;
            var q = new byte[1 + 2 * size];
            q[0] = 0x04;
            UnsignedBytes.PadTo(pub.Q.X, size).CopyTo(q, 1);
            UnsignedBytes.PadTo(pub.Q.Y, size).CopyTo(q, 1 + size);
            return q;
        }
        // NotImplementedException: Mono's ECDsa is a stub (the net472 test run); .NET Framework's is CNG.
        catch (Exception ex) when (ex is CryptographicException or PlatformNotSupportedException or ArgumentException or NotImplementedException)
        {
            return null;
        }
    }

    /// <summary>d·G with BouncyCastle point arithmetic (the fallback of <see cref="PublicPointOf"/>).</summary>
    internal static byte[] BouncyCastlePublicPointOf(ScHsmCurve curve, ReadOnlySpan<byte> d)
    {
        using var copy = SecretBytes.CopyOf(d);
        var scalar = new Org.BouncyCastle.Math.BigInteger(1, copy.UnsafeArray);
        return curve.BouncyParameters.G.Multiply(scalar).Normalize().GetEncoded(false);
    }

    internal override int FieldsLength =>
        14 + _a.Length + _b.Length + _prime.Length + _order.Length + _generator.Length + D.Length + _publicPoint.Length;

    internal override void WriteFields(Span<byte> destination)
    {
        int offset = 0;
        WriteField(destination, ref offset, _a);
        WriteField(destination, ref offset, _b);
        WriteField(destination, ref offset, _prime);
        WriteField(destination, ref offset, _order);
        WriteField(destination, ref offset, _generator);
        WriteField(destination, ref offset, D.Span);
        WriteField(destination, ref offset, _publicPoint);
    }

    internal static ScHsmEcKeyMaterial FromFields(int keySize, ReadOnlySpan<byte> fields)
    {
        int offset = 0;
        var a = ReadField(fields, ref offset, "a").ToArray();
        var b = ReadField(fields, ref offset, "b").ToArray();
        var p = ReadField(fields, ref offset, "p").ToArray();
        var order = ReadField(fields, ref offset, "order").ToArray();
        var g = ReadField(fields, ref offset, "G").ToArray();
        var d = SecretBytes.CopyOf(ReadField(fields, ref offset, "d"));
        try
        {
            var q = ReadField(fields, ref offset, "Q").ToArray();
            return new ScHsmEcKeyMaterial(keySize, a, b, p, order, g, d, q);
        }
        catch
        {
            d.Dispose();
            throw;
        }
    }

    public override void Dispose() => D.Dispose();
}
