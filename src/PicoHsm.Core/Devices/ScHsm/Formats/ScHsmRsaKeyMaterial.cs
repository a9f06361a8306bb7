using System.Numerics;
using System.Security.Cryptography;
using PicoHsm.Common;

namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>
/// An RSA private key from a key blob. Type 5 (Pico HSM) holds d, n, e; type 6 (CardContact's CRT
/// form) holds dp, dq, p, qinv, q, n, e. Values are kept exactly as the blob encodes them (big-endian,
/// as many bytes as the blob gives), so writing the material again reproduces the blob byte for byte.
/// </summary>
public sealed class ScHsmRsaKeyMaterial : ScHsmKeyMaterial
{
    private readonly byte[] _modulus;
    private readonly byte[] _exponent;

    private ScHsmRsaKeyMaterial(int keySize, bool crt, byte[] modulus, byte[] exponent,
        SecretBytes? d, SecretBytes? p, SecretBytes? q, SecretBytes? dp, SecretBytes? dq, SecretBytes? inverseQ)
        : base(keySize)
    {
        IsCrt = crt;
        _modulus = modulus;
        _exponent = exponent;
        D = d; P = p; Q = q; DP = dp; DQ = dq; InverseQ = inverseQ;
    }

    public override ScHsmKeyType KeyType => IsCrt ? ScHsmKeyType.RsaCrt : ScHsmKeyType.Rsa;

    /// <summary>True for the CRT form (type 6): <see cref="D"/> is then null and the CRT values are set.</summary>
    public bool IsCrt { get; }

    public ReadOnlySpan<byte> Modulus => _modulus;
    public ReadOnlySpan<byte> Exponent => _exponent;

    /// <summary>Private exponent (type 5 only).</summary>
    public SecretBytes? D { get; }
    /// <summary>CRT values (type 6 only). InverseQ is q^-1 mod p, the blob's "pq" field.</summary>
    public SecretBytes? P { get; }
    public SecretBytes? Q { get; }
    public SecretBytes? DP { get; }
    public SecretBytes? DQ { get; }
    public SecretBytes? InverseQ { get; }

    /// <summary>
    /// Material to wrap from .NET parameters. <paramref name="crtForm"/> false gives the Pico's own form
    /// (type 5: d, n, e); true gives type 6. Numbers are written without leading zeros, as mbedTLS does.
    /// </summary>
    public static ScHsmRsaKeyMaterial FromRSAParameters(in RSAParameters parameters, bool crtForm = false)
    {
        if (parameters.Modulus is null || parameters.Exponent is null)
            throw new ArgumentException("The RSA parameters have no modulus or exponent.", nameof(parameters));
        var n = UnsignedBytes.Minimal(parameters.Modulus);
        var e = UnsignedBytes.Minimal(parameters.Exponent);
        int keySize = n.Length * 8;
        if (!crtForm)
        {
            if (parameters.D is null) throw new ArgumentException("The RSA parameters have no private exponent.", nameof(parameters));
            return new ScHsmRsaKeyMaterial(keySize, false, n, e, Secret(parameters.D), null, null, null, null, null);
        }
        if (parameters.P is null || parameters.Q is null || parameters.DP is null || parameters.DQ is null || parameters.InverseQ is null)
            throw new ArgumentException("The RSA parameters have no CRT values.", nameof(parameters));
        return new ScHsmRsaKeyMaterial(keySize, true, n, e, null, Secret(parameters.P), Secret(parameters.Q),
            Secret(parameters.DP), Secret(parameters.DQ), Secret(parameters.InverseQ));
    }

    public static ScHsmRsaKeyMaterial FromRsa(RSA rsa, bool crtForm = false)
    {
        ArgumentNullException.ThrowIfNull(rsa);
        var parameters = rsa.ExportParameters(includePrivateParameters: true);
        try
        {
            return FromRSAParameters(parameters, crtForm);
        }
        finally
        {
            Clear(parameters);
        }
    }

    /// <summary>
    /// Full .NET parameters (n, e, d, p, q, dp, dq, qinv at the widths .NET wants). For a type-5 key the
    /// primes are recovered from d. The arrays are the caller's: clear them after use
    /// (<see cref="ClearParameters"/>).
    /// </summary>
    public RSAParameters ToRSAParameters()
    {
        var n = UnsignedBytes.ToBigInteger(_modulus);
        var e = UnsignedBytes.ToBigInteger(_exponent);
        int length = UnsignedBytes.TrimLeadingZeros(_modulus).Length;
        int half = (length + 1) / 2;
        BigInteger d, p, q, dp, dq, qinv;
        if (IsCrt)
        {
            p = UnsignedBytes.ToBigInteger(P!.Span);
            q = UnsignedBytes.ToBigInteger(Q!.Span);
            dp = UnsignedBytes.ToBigInteger(DP!.Span);
            dq = UnsignedBytes.ToBigInteger(DQ!.Span);
            qinv = UnsignedBytes.ToBigInteger(InverseQ!.Span);
            var lambda = (p - 1) * (q - 1) / BigInteger.GreatestCommonDivisor(p - 1, q - 1);
            d = ModInverse(e, lambda);
        }
        else
        {
            d = UnsignedBytes.ToBigInteger(D!.Span);
            (p, q) = RsaFactorRecovery.Factor(n, e, d);
            dp = d % (p - 1);
            dq = d % (q - 1);
            qinv = ModInverse(q, p);
        }
        return new RSAParameters
        {
            Modulus = UnsignedBytes.PadTo(_modulus, length),
            Exponent = UnsignedBytes.Minimal(_exponent),
            D = UnsignedBytes.FromBigInteger(d, length),
            P = UnsignedBytes.FromBigInteger(p, half),
            Q = UnsignedBytes.FromBigInteger(q, half),
            DP = UnsignedBytes.FromBigInteger(dp, half),
            DQ = UnsignedBytes.FromBigInteger(dq, half),
            InverseQ = UnsignedBytes.FromBigInteger(qinv, half),
        };
    }

    /// <summary>A .NET RSA key with this private key.</summary>
    public RSA ToRsa()
    {
        var parameters = ToRSAParameters();
        try
        {
            var rsa = RSA.Create();
            rsa.ImportParameters(parameters);
            return rsa;
        }
        finally
        {
            Clear(parameters);
        }
    }

    /// <summary>Zeroes the private arrays of RSA parameters.</summary>
    public static void ClearParameters(RSAParameters parameters) => Clear(parameters);

    internal override int FieldsLength => IsCrt
        ? 14 + DP!.Length + DQ!.Length + P!.Length + InverseQ!.Length + Q!.Length + _modulus.Length + _exponent.Length
        : 6 + D!.Length + _modulus.Length + _exponent.Length;

    internal override void WriteFields(Span<byte> destination)
    {
        int offset = 0;
        if (IsCrt)
        {
            WriteField(destination, ref offset, DP!.Span);
            WriteField(destination, ref offset, DQ!.Span);
            WriteField(destination, ref offset, P!.Span);
            WriteField(destination, ref offset, InverseQ!.Span);
            WriteField(destination, ref offset, Q!.Span);
        }
        else
        {
            WriteField(destination, ref offset, D!.Span);
        }
        WriteField(destination, ref offset, _modulus);
        WriteField(destination, ref offset, _exponent);
    }

    internal static ScHsmRsaKeyMaterial FromFields(ScHsmKeyType type, int keySize, ReadOnlySpan<byte> fields)
    {
        int offset = 0;
        if (type == ScHsmKeyType.Rsa)
        {
            var d = SecretBytes.CopyOf(ReadField(fields, ref offset, "d"));
            try
            {
                var n = ReadField(fields, ref offset, "n").ToArray();
                var e = ReadField(fields, ref offset, "e").ToArray();
                return new ScHsmRsaKeyMaterial(keySize, false, n, e, d, null, null, null, null, null);
            }
            catch
            {
                d.Dispose();
                throw;
            }
        }

        var secrets = new List<SecretBytes>(5);
        try
        {
            foreach (var name in new[] { "dp", "dq", "p", "qinv", "q" })
                secrets.Add(SecretBytes.CopyOf(ReadField(fields, ref offset, name)));
            var n = ReadField(fields, ref offset, "n").ToArray();
            var e = ReadField(fields, ref offset, "e").ToArray();
            return new ScHsmRsaKeyMaterial(keySize, true, n, e, null,
                p: secrets[2], q: secrets[4], dp: secrets[0], dq: secrets[1], inverseQ: secrets[3]);
        }
        catch
        {
            foreach (var s in secrets) s.Dispose();
            throw;
        }
    }

    public override void Dispose()
    {
        D?.Dispose();
        P?.Dispose();
        Q?.Dispose();
        DP?.Dispose();
        DQ?.Dispose();
        InverseQ?.Dispose();
    }

    private static SecretBytes Secret(byte[] value) => SecretBytes.CopyOf(UnsignedBytes.TrimLeadingZeros(value));

    private static BigInteger ModInverse(BigInteger a, BigInteger m)
    {
        BigInteger oldR = a % m, r = m, oldS = 1, s = 0;
        if (oldR.Sign < 0) oldR += m;
        while (!r.IsZero)
        {
            var quotient = oldR / r;
            (oldR, r) = (r, oldR - quotient * r);
            (oldS, s) = (s, oldS - quotient * s);
        }
        if (!oldR.IsOne) throw new ScHsmFormatException("The RSA key's values are not consistent (no modular inverse).");
        var result = oldS % m;
        return result.Sign < 0 ? result + m : result;
    }

    private static void Clear(RSAParameters parameters)
    {
        foreach (var array in new[] { parameters.D, parameters.P, parameters.Q, parameters.DP, parameters.DQ, parameters.InverseQ })
            if (array is not null) CryptographicOperations.ZeroMemory(array);
    }
}
