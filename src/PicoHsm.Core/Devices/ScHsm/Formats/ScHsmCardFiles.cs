using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Devices.ScHsm.Formats;

/// <summary>The public key found in a SmartCard-HSM CE file / wrapped-key certificate element.</summary>
public sealed record ScHsmPublicKey(KeyKind Kind, byte[] SubjectPublicKeyInfo, int SizeBits, string? Curve, bool IsX509Certificate)
{
    public string Fingerprint => PublicKeyInfo.Fingerprint(SubjectPublicKeyInfo);
}

/// <summary>
/// Reading what the SmartCard-HSM keeps next to a key: the public key in EF CE kid (a CV certificate
/// request <c>67</c>, a CV certificate <c>7F21</c> or an X.509 certificate <c>30</c>) and the PKCS#15
/// description in EF C4 kid.
/// </summary>
public static class ScHsmCardFiles
{
    private static readonly byte[] TagPublicKey = [0x7F, 0x49];
    // id-TA-RSA (0.4.0.127.0.7.2.2.2.1) and id-TA-ECDSA (0.4.0.127.0.7.2.2.2.2) prefixes.
    private static readonly byte[] TaRsaPrefix = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x01];
    private static readonly byte[] TaEcPrefix = [0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x02];

    /// <summary>
    /// The public key of a CE file: from a CV request / CV certificate (7F49: RSA 81 modulus, 82 exponent;
    /// EC 86 point, curve from 81 prime or, when the request leaves the domain parameters out, from
    /// <paramref name="sizeHint"/>) or an X.509 certificate. Null when there is none or it cannot be read.
    /// </summary>
    public static ScHsmPublicKey? ReadPublicKey(byte[]? element, int? sizeHint = null)
    {
        if (element is not { Length: > 2 }) return null;
        try
        {
            if (element[0] == 0x30) return FromX509(element);
            if (element[0] is 0x67 or 0x7F) return FromCv(element, sizeHint);
        }
        catch (Exception ex) when (ex is ScHsmFormatException or CryptographicException or FormatException or ArgumentException)
        {
        }
        return null;
    }

    private static ScHsmPublicKey? FromX509(byte[] der)
    {
        using var cert = new X509Certificate2(der);
        byte[] spki = cert.PublicKey.ExportSubjectPublicKeyInfo();
        using (var rsa = cert.GetRSAPublicKey())
            if (rsa is not null) return new ScHsmPublicKey(KeyKind.Rsa, spki, rsa.KeySize, null, true);
        using (var ec = cert.GetECDsaPublicKey())
        {
            if (ec is null) return null;
            var p = ec.ExportParameters(false);
            var curve = p.Curve.Oid?.Value is { } oid ? EcCurves.FromOid(oid) : null;
            var sc = ScHsmCurve.FromECCurve(p.Curve);
            return new ScHsmPublicKey(KeyKind.Ec, spki, curve?.Bits ?? sc?.FieldSizeBits ?? ec.KeySize, curve?.Name ?? sc?.Name, true);
        }
    }

    private static ScHsmPublicKey? FromCv(byte[] element, int? sizeHint)
    {
        byte[]? pk = FindConstructed(element, TagPublicKey);
        if (pk is null) return null;
        byte[]? oid = null, p81 = null, p82 = null, p86 = null;
        ReadOnlySpan<byte> content = pk;
        while (!content.IsEmpty)
        {
            var e = DerElement.Read(content, "a public key field");
            content = content[e.Encoded.Length..];
            if (e.TagLength != 1) continue;
            switch (e.FirstTagByte)
            {
                case 0x06: oid = e.Content.ToArray(); break;
                case 0x81: p81 = e.Content.ToArray(); break;
                case 0x82: p82 = e.Content.ToArray(); break;
                case 0x86: p86 = e.Content.ToArray(); break;
            }
        }
        if (oid is null) return null;
        if (oid.AsSpan().StartsWith(TaRsaPrefix))
        {
            if (p81 is null || p82 is null) return null;
            byte[] spki = PublicKeyInfo.FromRsa(p81, p82);
            using var rsa = RSA.Create();
            rsa.ImportSubjectPublicKeyInfo(spki, out _);
            return new ScHsmPublicKey(KeyKind.Rsa, spki, rsa.KeySize, null, false);
        }
        if (oid.AsSpan().StartsWith(TaEcPrefix))
        {
            if (p86 is null || p86.Length < 3) return null;
            ScHsmCurve? sc = p81 is not null ? ScHsmCurve.FromPrime(p81) : null;
            sc ??= CurveFromPointAndSize(p86, sizeHint);
            if (sc is null) return null;
            var known = EcCurves.FromOid(sc.Oid);
            byte[] ecParams = known is not null ? EcCurves.ToEcParams(known) : EncodeOid(sc.Oid);
            byte[] spki = PublicKeyInfo.FromEc(ecParams, p86);
            return new ScHsmPublicKey(KeyKind.Ec, spki, known?.Bits ?? sc.FieldSizeBits, known?.Name ?? sc.Name, false);
        }
        return null;
    }

    /// <summary>Without the prime, the curve of a given field size (NIST first, as the card's default curves).</summary>
    private static ScHsmCurve? CurveFromPointAndSize(byte[] point, int? sizeHint)
    {
        int fieldBytes = (point.Length - 1) / 2;
        int bits = sizeHint ?? 0;
        string? oid = (bits, fieldBytes) switch
        {
            (256, _) or (0, 32) => "1.2.840.10045.3.1.7",
            (384, _) or (0, 48) => "1.3.132.0.34",
            (521, _) or (0, 66) => "1.3.132.0.35",
            _ => null,
        };
        var c = ScHsmCurve.FromOid(oid);
        return c is not null && c.FieldSizeBytes == fieldBytes ? c : null;
    }

    private static byte[] EncodeOid(string oid)
    {
        var w = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
        w.WriteObjectIdentifier(oid);
        return w.Encode();
    }

    /// <summary>Depth-first search through constructed elements for the first one with <paramref name="tag"/>; its content.</summary>
    internal static byte[]? FindConstructed(ReadOnlySpan<byte> data, ReadOnlySpan<byte> tag)
    {
        while (!data.IsEmpty)
        {
            var e = DerElement.Read(data, "a CV element");
            data = data[e.Encoded.Length..];
            if (e.Tag.SequenceEqual(tag)) return e.Content.ToArray();
            if ((e.FirstTagByte & 0x20) != 0)
            {
                var inner = FindConstructed(e.Content, tag);
                if (inner is not null) return inner;
            }
        }
        return null;
    }

    /// <summary>The holder reference (5F20) of a CV certificate or request, e.g. the device certificate in EF 2F02.</summary>
    public static string? ReadHolderReference(byte[]? cv)
    {
        if (cv is not { Length: > 2 }) return null;
        try
        {
            byte[]? body = FindConstructed(cv, [0x7F, 0x4E]);
            if (body is null) return null;
            ReadOnlySpan<byte> content = body;
            while (!content.IsEmpty)
            {
                var e = DerElement.Read(content, "a CV body field");
                content = content[e.Encoded.Length..];
                if (e.Tag.SequenceEqual((ReadOnlySpan<byte>)[0x5F, 0x20])) return Encoding.ASCII.GetString(e.Content);
            }
        }
        catch (ScHsmFormatException)
        {
        }
        return null;
    }

    /// <summary>
    /// Manufacturer (UTF8String) and label ([0]) of a PKCS#15 TokenInfo (EF 2F03), as OpenSC's sc-hsm emulation
    /// reads them (Pico HSM: "Pol Henarejos", "SmartCard-HSM"). Nulls when absent or unreadable.
    /// </summary>
    public static (string? Manufacturer, string? Label) ReadTokenInfo(byte[]? tokenInfo)
    {
        string? manufacturer = null, label = null;
        if (tokenInfo is not { Length: > 2 } || tokenInfo[0] != 0x30) return (null, null);
        try
        {
            ReadOnlySpan<byte> content = DerElement.Read(tokenInfo, "the TokenInfo").Content;
            while (!content.IsEmpty)
            {
                var e = DerElement.Read(content, "a TokenInfo field");
                content = content[e.Encoded.Length..];
                if (e.TagLength != 1) continue;
                if (e.FirstTagByte == 0x0C) manufacturer ??= Encoding.UTF8.GetString(e.Content);
                else if (e.FirstTagByte == 0x80) label ??= Encoding.UTF8.GetString(e.Content);
            }
        }
        catch (ScHsmFormatException)
        {
        }
        return (string.IsNullOrWhiteSpace(manufacturer) ? null : manufacturer.Trim(), string.IsNullOrWhiteSpace(label) ? null : label.Trim());
    }

    /// <summary>
    /// The PKCS#15 description with its key reference (the INTEGER in CommonKeyAttributes) set to
    /// <paramref name="keyReference"/>; unchanged when it carries none. Every other byte is kept.
    /// </summary>
    public static byte[] WithKeyReference(byte[] prkd, int keyReference)
    {
        var outer = DerElement.Read(prkd, "the key description");
        ReadOnlySpan<byte> content = outer.Content;
        var parts = new List<byte[]>();
        bool changed = false;
        int index = 0;
        while (!content.IsEmpty)
        {
            var e = DerElement.Read(content, "a key description element");
            content = content[e.Encoded.Length..];
            if (index == 1 && e.FirstTagByte == 0x30)
            {
                var inner = new List<byte[]>();
                ReadOnlySpan<byte> attrs = e.Content;
                while (!attrs.IsEmpty)
                {
                    var a = DerElement.Read(attrs, "a common key attribute");
                    attrs = attrs[a.Encoded.Length..];
                    if (a.FirstTagByte == 0x02 && a.TagLength == 1)
                    {
                        inner.Add(EncodeInteger(keyReference));
                        changed = true;
                    }
                    else inner.Add(a.Encoded.ToArray());
                }
                parts.Add(DerElement.Encode(0x30, inner.ToArray()));
            }
            else parts.Add(e.Encoded.ToArray());
            index++;
        }
        if (!changed) return prkd;
        if (outer.TagLength != 1) throw new ScHsmFormatException("The key description has a multi-byte tag.");
        return DerElement.Encode(outer.FirstTagByte, parts.ToArray());
    }

    private static byte[] EncodeInteger(int value)
    {
        var bytes = new List<byte>();
        do { bytes.Insert(0, (byte)value); value >>= 8; } while (value > 0);
        if ((bytes[0] & 0x80) != 0) bytes.Insert(0, 0);
        return DerElement.Encode(0x02, bytes.ToArray());
    }
}
