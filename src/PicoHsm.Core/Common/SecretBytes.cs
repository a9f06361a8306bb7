using System.Security.Cryptography;

namespace PicoHsm.Common;

/// <summary>
/// A pinned byte buffer for key material (a DKEK, a share, a decrypted private key) that is
/// zeroed when disposed. Pinned so the GC never leaves a stray copy behind when it compacts.
/// </summary>
public sealed class SecretBytes : IDisposable
{
    private readonly byte[] _buffer;
    private bool _disposed;

    public SecretBytes(int length)
    {
        _buffer = GC.AllocateArray<byte>(length, pinned: true);
    }

    /// <summary>Copies <paramref name="source"/>; the caller still owns (and should zero) the source.</summary>
    public static SecretBytes CopyOf(ReadOnlySpan<byte> source)
    {
        var s = new SecretBytes(source.Length);
        source.CopyTo(s._buffer);
        return s;
    }

    public int Length => _buffer.Length;

    public Span<byte> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _buffer;
        }
    }

    /// <summary>The array itself, for APIs that take byte[] (PKCS#11 attribute values). Do not keep it.</summary>
    public byte[] UnsafeArray
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _buffer;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        CryptographicOperations.ZeroMemory(_buffer);
        _disposed = true;
    }
}
