using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Card;

// Objects and files: ENUMERATE OBJECTS, SELECT / READ / UPDATE BINARY, DELETE FILE.
public sealed partial class ScHsmCard
{
    /// <summary>ENUMERATE OBJECTS (80 58 00 00, extended case 2, Le 00 00 00): every file id on the device.</summary>
    public IReadOnlyList<ushort> EnumerateObjects()
    {
        ResponseApdu r = Send(new CommandApdu(0x80, 0x58, 0x00, 0x00, default, CommandApdu.MaxExtendedNe));
        Check(r, ScHsmCommands.EnumerateObjects);
        var fids = new List<ushort>(r.Data.Length / 2);
        for (int i = 0; i + 1 < r.Data.Length; i += 2)
            fids.Add((ushort)(r.Data[i] << 8 | r.Data[i + 1]));
        return fids;
    }

    /// <summary>
    /// The keys on the device from one ENUMERATE OBJECTS: every CC kid except CC00 (the device's own key),
    /// with flags for C4 kid (PRKD) and CE kid (certificate / CV request). Pico HSM does not list CE files
    /// in ENUMERATE OBJECTS (seen in the traces), so a CE kid that is not listed is reported as unknown
    /// (null) unless <paramref name="probeCertificates"/> asks to SELECT it (an EF select does not end the
    /// PIN session).
    /// </summary>
    public IReadOnlyList<ScHsmKeyEntry> ListKeys(bool probeCertificates = false)
    {
        using IDisposable tx = Channel.BeginTransaction();
        return KeysIn(new HashSet<ushort>(EnumerateObjects()), probeCertificates);
    }

    /// <summary>The keys an ENUMERATE OBJECTS answer lists (see <see cref="ListKeys"/>).</summary>
    public IReadOnlyList<ScHsmKeyEntry> KeysIn(ISet<ushort> fids, bool probeCertificates = false)
    {
        ArgumentNullException.ThrowIfNull(fids);
        var keys = new List<ScHsmKeyEntry>();
        foreach (ushort fid in fids.Order())
        {
            if (fid >> 8 != KeyPrefix) continue;
            byte kid = (byte)fid;
            if (kid == DeviceKeyReference) continue;
            ushort ce = (ushort)(CertificatePrefix << 8 | kid);
            bool? hasCert = fids.Contains(ce) ? true : probeCertificates ? FileExists(ce) : null;
            keys.Add(new ScHsmKeyEntry(kid, fids.Contains((ushort)(PrkdPrefix << 8 | kid)), hasCert));
        }
        return keys;
    }

    /// <summary>SELECT EF (00 A4 00 00 02 FID 00). Returns the FCP, or null when the file does not exist (6A82).</summary>
    public byte[]? SelectFile(ushort fid)
    {
        ResponseApdu r = Send(new CommandApdu(0x00, 0xA4, 0x00, 0x00, Fid(fid), 256));
        if (r.SW == 0x6A82) return null;
        Check(r, ScHsmCommands.SelectFile, $"EF {fid:X4}");
        return r.Data;
    }

    public bool FileExists(ushort fid) => SelectFile(fid) is not null;

    /// <summary>Reads a whole EF; throws <see cref="ScHsmCardException"/> 6A82 when it does not exist.</summary>
    public byte[] ReadFile(ushort fid)
        => TryReadFile(fid) ?? throw new ScHsmCardException(ScHsmCommands.SelectFile, 0x6A82, $"EF {fid:X4}");

    /// <summary>
    /// SELECT EF, then READ BINARY with odd INS (00 B1 00 00 04 54 02 offset Le 00) in chunks until the
    /// size the SELECT's FCP gives is read, or, without one, until an answer carries no data. 61xx after a
    /// full chunk (Pico: "more left") counts as success here. Null when the file does not exist.
    /// </summary>
    public byte[]? TryReadFile(ushort fid)
    {
        using IDisposable tx = Channel.BeginTransaction();
        if (SelectFile(fid) is not { } fcp) return null;
        // The firmware's FCP carries the file size (81 02 size): reading up to it saves the empty read
        // OpenSC ends on (one APDU per file; a listing or a restore reads two files per key).
        int? size = FcpFileSize(fcp);
        using var content = new MemoryStream();
        int offset = 0;
        while (offset <= 0xFFFF && !(offset >= size))
        {
            byte[] data = [0x54, 0x02, (byte)(offset >> 8), (byte)offset];
            ResponseApdu r = Send(new CommandApdu(0x00, 0xB1, 0x00, 0x00, data, 256), ReadBinaryOptions);
            // 6282: end of file reached before Le bytes (data is still valid)
            if (r.SW != 0x9000 && r.SW1 != 0x61 && r.SW != 0x6282)
                throw new ScHsmCardException(ScHsmCommands.ReadBinary, r.SW, $"EF {fid:X4} at offset {offset}");
            if (r.Data.Length == 0) break;
            content.Write(r.Data);
            offset += r.Data.Length;
            if (r.SW == 0x6282) break;
        }
        return content.ToArray();
    }

    /// <summary>The file size from an FCP (62 L, then 80 or 81 with 1–3 size bytes), or null when it carries none.</summary>
    internal static int? FcpFileSize(ReadOnlySpan<byte> fcp)
    {
        if (fcp.Length < 2 || fcp[0] != 0x62 || fcp[1] > 0x7F) return null;
        var body = fcp.Slice(2, Math.Min(fcp[1], fcp.Length - 2));
        while (body.Length >= 2)
        {
            byte tag = body[0], len = body[1];
            if (len > 0x7F || len > body.Length - 2) return null;
            if ((tag is 0x80 or 0x81) && len is >= 1 and <= 3)
            {
                int v = 0;
                foreach (byte b in body.Slice(2, len)) v = (v << 8) | b;
                return v;
            }
            body = body[(2 + len)..];
        }
        return null;
    }

    /// <summary>The PKCS#15 private key description of a key (EF C4 kid), or null when there is none.</summary>
    public byte[]? ReadPrivateKeyDescription(byte keyReference) => TryReadFile((ushort)(PrkdPrefix << 8 | keyReference));

    /// <summary>The certificate (30..) or CV request (67..) of a key (EF CE kid), or null when there is none.</summary>
    public byte[]? ReadCertificate(byte keyReference) => TryReadFile((ushort)(CertificatePrefix << 8 | keyReference));

    /// <summary>
    /// Writes <paramref name="data"/> to EF <paramref name="fid"/> as sc-hsm-tool does: SELECT it; when
    /// missing, create it empty (00 D7 FID 06 54 02 0000 53 00); with <paramref name="eraseFirst"/> an
    /// existing file is deleted and created again (as OpenSC does at key generation). Then UPDATE BINARY on
    /// the current EF (00 D7 00 00, 54 02 offset 53 len data) in pieces of at most 255 bytes; pieces
    /// longer than fit a short APDU are sent extended. An update at offset 0 replaces the content on Pico.
    /// </summary>
    public void WriteFile(ushort fid, ReadOnlySpan<byte> data, bool eraseFirst = false)
    {
        using IDisposable tx = Channel.BeginTransaction();
        bool exists = SelectFile(fid) is not null;
        if (exists && eraseFirst)
        {
            DeleteFile(fid);
            exists = false;
        }
        if (!exists)
        {
            ResponseApdu c = Send(new CommandApdu(0x00, 0xD7, (byte)(fid >> 8), (byte)fid, [0x54, 0x02, 0x00, 0x00, 0x53, 0x00]));
            Check(c, ScHsmCommands.UpdateBinary, $"create EF {fid:X4}");
        }
        for (int offset = 0; offset < data.Length; offset += MaxWriteChunk)
        {
            ReadOnlySpan<byte> piece = data.Slice(offset, Math.Min(MaxWriteChunk, data.Length - offset));
            byte[] body = UpdateBinaryBody(offset, piece);
            ResponseApdu r = Send(new CommandApdu(0x00, 0xD7, 0x00, 0x00, body));
            Check(r, ScHsmCommands.UpdateBinary, $"EF {fid:X4} at offset {offset}");
        }
    }

    /// <summary>
    /// Writes <paramref name="data"/> to EF <paramref name="fid"/> without a SELECT: UPDATE BINARY with the file id
    /// in P1-P2 (00 D7 FID, 54 02 offset 53 len data), in pieces of at most 255 bytes. The firmware selects the
    /// file by that id and creates it when missing: the create <see cref="WriteFile"/> sends (trace 05a,
    /// 00 D7 CE 01 06 54 02 0000 53 00) is this command with no data, and OpenSC's sc_hsm_write_ef writes every
    /// piece this way. The piece at offset 0 replaces the content (as with <see cref="WriteFile"/>). For a restore,
    /// which writes two files per key: one SELECT less for each.
    /// </summary>
    public void WriteFileById(ushort fid, ReadOnlySpan<byte> data)
    {
        if (fid == 0) throw new ArgumentOutOfRangeException(nameof(fid), "File id 0000 means the current EF; give the file's id.");
        int offset = 0;
        do
        {
            ReadOnlySpan<byte> piece = data.Slice(offset, Math.Min(MaxWriteChunk, data.Length - offset));
            ResponseApdu r = Send(new CommandApdu(0x00, 0xD7, (byte)(fid >> 8), (byte)fid, UpdateBinaryBody(offset, piece)));
            Check(r, ScHsmCommands.UpdateBinary, $"EF {fid:X4} at offset {offset}");
            offset += piece.Length;
        }
        while (offset < data.Length);
    }

    internal static byte[] UpdateBinaryBody(int offset, ReadOnlySpan<byte> piece)
    {
        if (offset > 0xFFFF) throw new ArgumentOutOfRangeException(nameof(offset), "EF offsets are 16 bits.");
        int lenBytes = piece.Length < 0x80 ? 1 : piece.Length <= 0xFF ? 2 : 3;
        byte[] b = new byte[4 + 1 + lenBytes + piece.Length];
        int o = 0;
        b[o++] = 0x54; b[o++] = 0x02; b[o++] = (byte)(offset >> 8); b[o++] = (byte)offset;
        b[o++] = 0x53;
        if (lenBytes == 1) b[o++] = (byte)piece.Length;
        else if (lenBytes == 2) { b[o++] = 0x81; b[o++] = (byte)piece.Length; }
        else { b[o++] = 0x82; b[o++] = (byte)(piece.Length >> 8); b[o++] = (byte)piece.Length; }
        piece.CopyTo(b.AsSpan(o));
        return b;
    }

    /// <summary>DELETE FILE (00 E4 02 00 02 FID).</summary>
    public void DeleteFile(ushort fid)
    {
        ResponseApdu r = Send(new CommandApdu(0x00, 0xE4, 0x02, 0x00, Fid(fid)));
        Check(r, ScHsmCommands.DeleteFile, $"EF {fid:X4}");
    }
}
