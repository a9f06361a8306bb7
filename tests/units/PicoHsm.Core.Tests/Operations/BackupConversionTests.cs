using System.Security.Cryptography;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Backup;
using PicoHsm.Core.Tests.Devices.ScHsm.Backend;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Devices.ScHsm.Formats;
using PicoHsm.Operations;

namespace PicoHsm.Core.Tests.Operations;

/// <summary>
/// A new group of custodians takes over: backups made under the old DKEK are written again under the
/// new one, offline. The firmware's own .wky files and real .pkb files are converted; the result passes
/// the offline check under the new DKEK, carries the same key, and no longer opens under the old DKEK.
/// </summary>
public sealed class BackupConversionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("picohsm-convert-").FullName;
    private readonly SecretBytes _old = SecretBytes.CopyOf(VectorFiles.Dkek);
    private readonly SecretBytes _new = SecretBytes.CopyOf(RandomNumberGenerator.GetBytes(32));

    public void Dispose()
    {
        _old.Dispose();
        _new.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Theory]
    [InlineData("rsa2048.wky")]
    [InlineData("ec256.wky")]
    [InlineData("aes256.wky")]
    [InlineData("offline-rsa2048-crt.wky")]
    public void FirmwareWky_ConvertedToTheNewDkek_SameKeyAndDescription(string name)
    {
        string target = Path.Combine(_dir, name);
        var result = BackupConversion.Convert(VectorFiles.PathOf(name), _old, _new, target, overwrite: false);

        Assert.True(result.Passed, string.Join("; ", result.Problems));
        Assert.Equal(KeyCheckValue.ToHex(KeyCheckValue.Compute(_new.Span)), result.Kcv);
        var before = ScHsmWrappedKeyFile.Read(VectorFiles.Read(name));
        var after = ScHsmWrappedKeyFile.Read(File.ReadAllBytes(target));
        Assert.Equal(before.PrivateKeyDescription, after.PrivateKeyDescription);
        Assert.Equal(before.Certificate, after.Certificate);
        var (b, a) = (before.ParseKeyBlob(), after.ParseKeyBlob());
        Assert.Equal(b.KeyType, a.KeyType);
        Assert.Equal(b.AllowedAlgorithms, a.AllowedAlgorithms);
        Assert.Equal(b.AccessConditions, a.AccessConditions);
        using (var m1 = b.Decrypt(_old.Span))
        using (var m2 = a.Decrypt(_new.Span))
            Assert.Equal(Fields(m1), Fields(m2));

        // The old shares no longer open the converted backup.
        var withOld = ScHsmOfflineCheck.Check(target, _old);
        Assert.False(withOld.DkekMatch);
        Assert.False(withOld.Passed);
        Assert.Throws<ScHsmWrongDkekException>(() => a.Decrypt(_old.Span).Dispose());
    }

    [Fact]
    public void Pkb_ConvertedToTheNewDkek_UnwrapsToTheSameKey()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        byte[] pkcs8 = ec.ExportPkcs8PrivateKey();
        var sample = BackupSamples.Ec();
        var source = new WrappedKeyFile
        {
            Created = sample.Created, ToolVersion = sample.ToolVersion, SourceToken = sample.SourceToken, KeyClass = sample.KeyClass,
            KeyKind = sample.KeyKind, SizeBits = 256, CurveName = sample.CurveName, CurveParameters = sample.CurveParameters,
            Id = sample.Id, Label = sample.Label, Attributes = sample.Attributes, WrapMechanism = "CKM_AES_KEY_WRAP_PAD",
            WrappingKeyKcv = KeyCheckValue.Compute(_old.Span), WrappedKey = AesKeyWrap.WrapPad(_old.Span, pkcs8),
            PublicKeyInfo = ec.ExportSubjectPublicKeyInfo(),
        };
        string from = Path.Combine(_dir, "in.pkb"), to = Path.Combine(_dir, "out", "in.pkb");
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        File.WriteAllBytes(from, source.ToBytes());

        var result = BackupConversion.Convert(from, _old, _new, to, overwrite: false);
        Assert.True(result.Passed, string.Join("; ", result.Problems));
        var converted = BackupFiles.Read(to);
        Assert.Equal(KeyCheckValue.ToHex(KeyCheckValue.Compute(_new.Span)), converted.Kcv);
        Assert.Equal(source.Label, converted.Label);
        Assert.Equal(source.PublicKeyInfo, converted.Content!.PublicKeyInfo);
        Assert.Equal(pkcs8, AesKeyWrap.UnwrapPad(_new.Span, converted.Content.WrappedKey));
        Assert.False(OfflineBackupCheck.Check(to, _old).Passed);
        Assert.True(OfflineBackupCheck.Check(from, _old).Passed);   // the source is left as it was
    }

    [Fact]
    public void Pkb_Version2_GetsANewTagUnderTheNewDkek_AnEditedOneIsNotConverted_AndVersion1StaysVersion1()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var sample = BackupSamples.Ec();
        var v1 = new WrappedKeyFile
        {
            Created = sample.Created, ToolVersion = sample.ToolVersion, SourceToken = sample.SourceToken, KeyClass = sample.KeyClass,
            KeyKind = sample.KeyKind, SizeBits = 256, CurveName = sample.CurveName, CurveParameters = sample.CurveParameters,
            Id = sample.Id, Label = "converted", Attributes = sample.Attributes, WrapMechanism = "CKM_AES_KEY_WRAP_PAD",
            WrappingKeyKcv = KeyCheckValue.Compute(_old.Span), WrappedKey = AesKeyWrap.WrapPad(_old.Span, ec.ExportPkcs8PrivateKey()),
            PublicKeyInfo = ec.ExportSubjectPublicKeyInfo(),
        };
        var v2 = v1.WithAuthentication(BackupAuthentication.CreateOffline(v1, _old.Span, "CKM_AES_KEY_WRAP_PAD"));
        Directory.CreateDirectory(Path.Combine(_dir, "out"));
        string from2 = Path.Combine(_dir, "v2.pkb"), from1 = Path.Combine(_dir, "v1.pkb"), edited = Path.Combine(_dir, "edited.pkb");
        File.WriteAllBytes(from2, v2.ToBytes());
        File.WriteAllBytes(from1, v1.ToBytes());
        File.WriteAllBytes(edited, BackupSamples.Redigest(System.Text.Encoding.UTF8.GetString(v2.ToBytes()).Replace("\"label\": \"converted\"", "\"label\": \"edited\"")));

        string to2 = Path.Combine(_dir, "out", "v2.pkb");
        Assert.True(BackupConversion.Convert(from2, _old, _new, to2, false).Passed);
        var c2 = WrappedKeyFile.Read(File.ReadAllBytes(to2), to2);
        Assert.True(c2.IsAuthenticated);
        Assert.True(c2.Authentication!.VerifyOffline(c2, _new.Span));
        Assert.False(c2.Authentication.VerifyOffline(c2, _old.Span));

        string to1 = Path.Combine(_dir, "out", "v1.pkb");
        var r1 = BackupConversion.Convert(from1, _old, _new, to1, false);
        Assert.Contains(r1.Warnings, w => w.Contains("not authenticated"));
        Assert.False(WrappedKeyFile.Read(File.ReadAllBytes(to1), to1).IsAuthenticated);

        string toEdited = Path.Combine(_dir, "out", "edited.pkb");
        Assert.Equal("BackupTampered", Assert.Throws<PicoHsmException>(() => BackupConversion.Convert(edited, _old, _new, toEdited, false)).Reason);
        Assert.False(File.Exists(toEdited));
    }

    [Fact]
    public void Refusals_NameTheReasonAndWriteNothing()
    {
        string target = Path.Combine(_dir, "x.wky");
        Assert.Equal("SameDkek", Assert.Throws<PicoHsmException>(() =>
            BackupConversion.Convert(VectorFiles.PathOf("ec256.wky"), _old, SecretBytes.CopyOf(VectorFiles.Dkek), target, false)).Reason);
        Assert.Equal("OtherDkek", Assert.Throws<PicoHsmException>(() =>
            BackupConversion.Convert(VectorFiles.PathOf("ec256.wky"), _new, SecretBytes.CopyOf(RandomNumberGenerator.GetBytes(32)), target, false)).Reason);
        Assert.False(File.Exists(target));

        BackupConversion.Convert(VectorFiles.PathOf("ec256.wky"), _old, _new, target, false);
        Assert.Equal("AlreadyConverted", Assert.Throws<PicoHsmException>(() =>
            BackupConversion.Convert(target, _old, _new, Path.Combine(_dir, "y.wky"), false)).Reason);
        Assert.Equal("WouldOverwriteSource", Assert.Throws<PicoHsmException>(() =>
            BackupConversion.Convert(target, _new, _old, target, true)).Reason);
    }

    [Fact]
    public void TamperedSource_IsNotConverted()
    {
        var f = ScHsmWrappedKeyFile.Read(VectorFiles.Read("ec256.wky"));
        byte[] blob = f.KeyBlob.ToArray();
        blob[40] ^= 0x01;
        string from = Path.Combine(_dir, "bad.wky"), to = Path.Combine(_dir, "out.wky");
        File.WriteAllBytes(from, new ScHsmWrappedKeyFile(blob, f.PrivateKeyDescription, f.Certificate).ToArray());
        Assert.Equal("BackupDamaged", Assert.Throws<PicoHsmException>(() => BackupConversion.Convert(from, _old, _new, to, false)).Reason);
        Assert.False(File.Exists(to));
    }

    /// <summary>The key's plaintext fields (what the card would restore), for comparing two blobs' keys.</summary>
    private static byte[] Fields(ScHsmKeyMaterial m)
    {
        using var dkek = SecretBytes.CopyOf(new byte[32]);
        var blob = ScHsmKeyBlob.Build(dkek.Span, m, randomPrefix: new byte[8]);
        using var again = blob.Decrypt(dkek.Span);
        return blob.Ciphertext.ToArray();
    }
}
