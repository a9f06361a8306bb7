#if NETSTANDARD2_0
// Members of newer .NET the core calls and .NET Framework lacks (beyond what the Polyfill
// package brings), as C# 14 extension members so the calling code reads the same in both builds.
using System.Numerics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace PicoHsm.Compat;

internal static class BclExtensions
{
    extension(Array)
    {
        /// <summary>Array.Clear(array) of .NET 6.</summary>
        public static void Clear(Array array) => Array.Clear(array, 0, array.Length);
    }

    extension(string text)
    {
        /// <summary>string.Replace with a comparison (.NET Core 2.0).</summary>
        public string Replace(string oldValue, string newValue, StringComparison comparisonType)
        {
            if (string.IsNullOrEmpty(oldValue)) throw new ArgumentException("The string to replace is empty.", nameof(oldValue));
            var sb = new System.Text.StringBuilder();
            int start = 0, at;
            while ((at = text.IndexOf(oldValue, start, comparisonType)) >= 0)
            {
                sb.Append(text, start, at - start).Append(newValue);
                start = at + oldValue.Length;
            }
            return sb.Append(text, start, text.Length - start).ToString();
        }
    }

    extension(GC)
    {
        /// <summary>
        /// GC.AllocateArray of .NET 5. .NET Framework has no pinned object heap: the array is an
        /// ordinary one (the garbage collector may move it, leaving a copy behind until reused).
        /// </summary>
        public static T[] AllocateArray<T>(int length, bool pinned = false) => new T[length];
    }

    extension(DateTimeOffset)
    {
        public static DateTimeOffset UnixEpoch => new(1970, 1, 1, 0, 0, 0, TimeSpan.Zero);
    }

    extension(nint)
    {
        public static int Size => IntPtr.Size;
    }

    extension(BitOperations)
    {
        public static uint RotateLeft(uint value, int offset) => (value << offset) | (value >> (32 - offset));

        public static int LeadingZeroCount(uint value)
        {
            if (value == 0) return 32;
            int n = 0;
            while ((value & 0x80000000u) == 0) { n++; value <<= 1; }
            return n;
        }
    }

    extension(IncrementalHash hash)
    {
        public void AppendData(ReadOnlySpan<byte> data)
        {
            byte[] copy = data.ToArray();
            try { hash.AppendData(copy); }
            finally { CryptographicOperations.ZeroMemory(copy); }
        }

        public int GetHashAndReset(Span<byte> destination)
        {
            byte[] h = hash.GetHashAndReset();
            try
            {
                if (destination.Length < h.Length) throw new ArgumentException("The destination is too small for the hash.", nameof(destination));
                h.CopyTo(destination);
                return h.Length;
            }
            finally { CryptographicOperations.ZeroMemory(h); }
        }
    }

    extension(Rfc2898DeriveBytes)
    {
        /// <summary>PBKDF2 of .NET 6 (netstandard2.0 has no Rfc2898DeriveBytes with a hash name): BouncyCastle's.</summary>
        public static byte[] Pbkdf2(ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt, int iterations, HashAlgorithmName hashAlgorithm, int outputLength)
        {
            byte[] pw = password.ToArray();
            try
            {
                var gen = new Org.BouncyCastle.Crypto.Generators.Pkcs5S2ParametersGenerator(Digest(hashAlgorithm));
                gen.Init(pw, salt.ToArray(), iterations);
                var key = (Org.BouncyCastle.Crypto.Parameters.KeyParameter)gen.GenerateDerivedMacParameters(outputLength * 8);
                return key.GetKey();
            }
            finally { CryptographicOperations.ZeroMemory(pw); }
        }

        public static void Pbkdf2(ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt, Span<byte> destination, int iterations, HashAlgorithmName hashAlgorithm)
        {
            byte[] key = Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, hashAlgorithm, destination.Length);
            key.CopyTo(destination);
            CryptographicOperations.ZeroMemory(key);
        }
    }

    extension(IncrementalHash)
    {
        public static IncrementalHash CreateHMAC(HashAlgorithmName hashAlgorithm, ReadOnlySpan<byte> key)
        {
            byte[] k = key.ToArray();
            try { return IncrementalHash.CreateHMAC(hashAlgorithm, k); }
            finally { CryptographicOperations.ZeroMemory(k); }
        }
    }

    extension(HMACSHA256)
    {
        /// <summary>HMACSHA256.HashData of .NET 6 (disposing the HMAC clears its copy of the key).</summary>
        public static byte[] HashData(byte[] key, byte[] source)
        {
            using var hmac = new HMACSHA256(key);
            return hmac.ComputeHash(source);
        }

        public static byte[] HashData(ReadOnlySpan<byte> key, ReadOnlySpan<byte> source)
        {
            byte[] k = key.ToArray();
            try
            {
                using var hmac = new HMACSHA256(k);
                return hmac.ComputeHash(source.ToArray());
            }
            finally { CryptographicOperations.ZeroMemory(k); }
        }
    }

    extension(RandomNumberGenerator rng)
    {
        public void GetBytes(Span<byte> data)
        {
            byte[] b = new byte[data.Length];
            rng.GetBytes(b);
            b.CopyTo(data);
            CryptographicOperations.ZeroMemory(b);
        }
    }

    private static Org.BouncyCastle.Crypto.IDigest Digest(HashAlgorithmName name) => name.Name switch
    {
        "SHA1" => new Org.BouncyCastle.Crypto.Digests.Sha1Digest(),
        "SHA256" => new Org.BouncyCastle.Crypto.Digests.Sha256Digest(),
        "SHA384" => new Org.BouncyCastle.Crypto.Digests.Sha384Digest(),
        "SHA512" => new Org.BouncyCastle.Crypto.Digests.Sha512Digest(),
        _ => throw new CryptographicException($"Unknown hash algorithm '{name.Name}'."),
    };

    extension(BigInteger value)
    {
        public byte[] ToByteArray(bool isUnsigned, bool isBigEndian)
        {
            if (isUnsigned && value.Sign < 0) throw new OverflowException("A negative number has no unsigned form.");
            byte[] le = value.ToByteArray(); // little-endian two's complement
            int length = le.Length;
            if (isUnsigned && length > 1 && le[length - 1] == 0) length--; // the sign byte
            byte[] result = new byte[length];
            Array.Copy(le, result, length);
            if (isBigEndian) Array.Reverse(result);
            return result;
        }

        public int GetByteCount(bool isUnsigned = false) => value.ToByteArray(isUnsigned, isBigEndian: false).Length;

        public bool TryWriteBytes(Span<byte> destination, out int bytesWritten, bool isUnsigned = false, bool isBigEndian = false)
        {
            byte[] b = value.ToByteArray(isUnsigned, isBigEndian);
            if (b.Length > destination.Length) { bytesWritten = 0; return false; }
            b.CopyTo(destination);
            bytesWritten = b.Length;
            return true;
        }

        public long GetBitLength()
        {
            byte[] b = value.ToByteArray(isUnsigned: value.Sign >= 0, isBigEndian: true);
            if (value.IsZero) return 0;
            return (b.Length - 1) * 8L + (32 - BitOperations.LeadingZeroCount(b[0]));
        }
    }

    extension(Guid guid)
    {
        public bool TryWriteBytes(Span<byte> destination, bool bigEndian, out int bytesWritten)
        {
            if (destination.Length < 16) { bytesWritten = 0; return false; }
            byte[] b = guid.ToByteArray();
            if (bigEndian) SwapGuidFields(b);
            b.CopyTo(destination);
            bytesWritten = 16;
            return true;
        }
    }

    /// <summary>new Guid(bytes, bigEndian: true) of .NET 8 (a constructor cannot be an extension).</summary>
    public static Guid GuidFromBytes(ReadOnlySpan<byte> bytes, bool bigEndian)
    {
        byte[] b = bytes.Slice(0, 16).ToArray();
        if (bigEndian) SwapGuidFields(b);
        return new Guid(b);
    }

    private static void SwapGuidFields(byte[] b)
    {
        Array.Reverse(b, 0, 4);
        Array.Reverse(b, 4, 2);
        Array.Reverse(b, 6, 2);
    }

    /// <summary>new BigInteger(bytes, isUnsigned: true, isBigEndian: true) of .NET Core 2.1.</summary>
    public static BigInteger BigIntegerFromUnsignedBigEndian(ReadOnlySpan<byte> bytes)
    {
        byte[] le = new byte[bytes.Length + 1]; // the extra zero byte keeps it positive
        for (int i = 0; i < bytes.Length; i++) le[i] = bytes[bytes.Length - 1 - i];
        return new BigInteger(le);
    }
}
#endif
