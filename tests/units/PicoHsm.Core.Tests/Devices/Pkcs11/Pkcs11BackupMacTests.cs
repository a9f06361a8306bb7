using System.Text;
using Net.Pkcs11Interop.Common;
using PicoHsm.Backup;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Operations;
using PicoHsm.Session;
using PicoHsm.Core.Tests.Backup;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;

namespace PicoHsm.Core.Tests.Devices.Pkcs11;

/// <summary>
/// Issue 10: a .pkb's attributes are authenticated under the DKEK (format version 2). A file whose
/// label, id, key type or usage flags were changed and re-digested is refused (BackupTampered) by the
/// restore's pre-flight, before anything is made on the token; a version 1 file still restores, with
/// its warning; the token makes one MAC key per backup run.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class Pkcs11BackupMacTests
{
    private static readonly byte[] DkekId = { 0xD1, 0xE0 };
    private const byte Seed = 1; // the DKEK the other tests on core-keys import
    private readonly SoftHsmTokens _hsm;

    public Pkcs11BackupMacTests(SoftHsmTokens hsm) => _hsm = hsm;

    private static Pkcs11DkekBackend WithDkek(PicoHsmSession s)
    {
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        using var dkek = SoftHsmTokens.Dkek(Seed);
        b.ImportDkek(dkek, "DKEK", DkekId);
        return b;
    }

    private static byte[] NewId() => Guid.NewGuid().ToByteArray()[..6];

    private static int ObjectCount(Pkcs11DkekBackend b) => Find(b.Connection.Session).Count;

    /// <summary>What an attacker with the file and no DKEK can do: edit the text and recompute the digest.</summary>
    private static WrappedKeyFile Edit(WrappedKeyFile f, Func<string, string> edit, string name = "edited.pkb")
    {
        string text = Encoding.UTF8.GetString(f.ToBytes());
        string edited = edit(text);
        Assert.NotEqual(text, edited);
        return WrappedKeyFile.Read(BackupSamples.Redigest(edited), name);
    }

    private static void AssertTampered(Pkcs11DkekBackend b, WrappedKeyFile f, byte[]? newId = null)
    {
        int before = ObjectCount(b);
        var plan = b.Plan(f, newId, null, force: true);
        Assert.Equal(RestoreAction.Refused, plan.Action);
        var r = Assert.Single(plan.Refusals);
        Assert.Equal("BackupTampered", r.Reason);
        Assert.Equal(PicoErrorKind.InvalidData, r.Kind);
        var e = Assert.Throws<PicoHsmException>(() => b.Restore(f, newId, null, force: true));
        Assert.Equal("BackupTampered", e.Reason);
        Assert.Equal(before, ObjectCount(b));
    }

    [SoftHsmFact]
    public void Seen_SignOnlyRsaKey_EditedToDecryptWithANewLabel_AndRedigested_IsRefusedByTestAndRestore_AndNothingIsMade()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        byte[] id = NewId();
        var key = b.GenerateKey(KeyKind.Rsa, 2048, null, id, "sign only", extractable: true);
        var h = Assert.Single(Find(b.Connection.Session, (CKA.CKA_CLASS, CKO.CKO_PRIVATE_KEY), (CKA.CKA_ID, id)));
        b.Connection.Session.SetAttributeValue(h, new List<Net.Pkcs11Interop.HighLevelAPI.IObjectAttribute> { Attr(CKA.CKA_DECRYPT, false) });
        b.ListKeys();
        var file = b.Wrap(key);
        Assert.True(file.IsAuthenticated);
        Assert.False(file.Attributes[KeyAttributeNames.Decrypt]);
        var forged = Edit(file, t => t.Replace("\"decrypt\": false", "\"decrypt\": true").Replace("\"label\": \"sign only\"", "\"label\": \"decrypts now\""));
        Assert.True(forged.Attributes[KeyAttributeNames.Decrypt]);

        // The key gone, as on a token being restored: the forged file must not bring it back.
        b.RemoveKey(key);
        Assert.Empty(Find(b.Connection.Session, (CKA.CKA_ID, id)));
        string path = Path.Combine(_hsm.Root, $"forged-{Guid.NewGuid():n}.pkb");
        File.WriteAllBytes(path, forged.ToBytes());
        var test = BackupCheck.Test(b, path, null, restoreTest: true);
        Assert.False(test.Passed);
        Assert.False(test.Valid);
        Assert.Contains(test.Problems, p => p.Contains("authentication tag"));
        AssertTampered(b, forged);
        Assert.Empty(Find(b.Connection.Session, (CKA.CKA_ID, id)));

        // Offline, from the DKEK alone: the same refusal.
        using var dkek = SoftHsmTokens.Dkek(Seed);
        var offline = OfflineBackupCheck.Check(path, dkek);
        Assert.False(offline.Valid);
        Assert.False(offline.Passed);
        // And the untouched file restores as it was.
        var restored = b.Restore(file, null, null, force: false);
        Assert.Equal("sign only", restored.Label);
    }

    public static TheoryData<string> Edits() => new()
    {
        "label", "id", "sizeBits", "kind", "curve", "curveParameters", "publicKey",
        "sign", "derive", "decrypt", "extractable", "private", "alwaysAuthenticate", "attribute removed", "attribute added",
        "wrappedKey from another backup", "wrappedMacKey", "tag", "keyWrap",
    };

    [SoftHsmTheory]
    [MemberData(nameof(Edits))]
    public void EveryRestoreUsedField_ChangedAlone_AndRedigested_IsRefusedBeforeTheTokenChanges(string field)
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        var ec = b.GenerateKey(KeyKind.Ec, 256, "P-256", NewId(), "ec key", extractable: true);
        var other = b.GenerateKey(KeyKind.Ec, 256, "P-256", NewId(), "other", extractable: true);
        var f = b.Wrap(ec);
        var g = b.Wrap(other);
        Assert.Equal(f.Authentication!.WrappedMacKey, g.Authentication!.WrappedMacKey); // one MAC key per run
        string B64(byte[] x) => Convert.ToBase64String(x);
        string Flip(string text, string name) =>
            text.Contains($"\"{name}\": true") ? text.Replace($"\"{name}\": true", $"\"{name}\": false") : text.Replace($"\"{name}\": false", $"\"{name}\": true");
        byte[] Changed(byte[] x) { var c = (byte[])x.Clone(); c[^1] ^= 1; return c; }
        Func<string, string> edit = field switch
        {
            "label" => t => t.Replace("\"label\": \"ec key\"", "\"label\": \"renamed\""),
            "id" => t => t.Replace($"\"id\": \"{f.IdHex}\"", "\"id\": \"77\""),
            "sizeBits" => t => t.Replace("\"sizeBits\": 256", "\"sizeBits\": 384"),
            "kind" => t => t.Replace("\"sizeBits\": 256", "\"sizeBits\": 256"), // see below
            "curve" => t => t.Replace($"\"curve\": \"{f.CurveName}\"", "\"curve\": \"P-384\""),
            "curveParameters" => t => t.Replace($"\"curveParameters\": \"{B64(f.CurveParameters!)}\"", $"\"curveParameters\": \"{B64(EcCurves.ToEcParams(EcCurves.FromName("P-384")!))}\""),
            "publicKey" => t => t.Replace($"\"publicKey\": \"{B64(f.PublicKeyInfo!)}\"", $"\"publicKey\": \"{B64(g.PublicKeyInfo!)}\""),
            // The attribute set in canonical (sorted) order, as the writer would give it.
            "attribute removed" => t => t.Replace(Attributes(f.Attributes), Attributes(f.Attributes.Where(a => a.Key != KeyAttributeNames.Derive))),
            "attribute added" => t => t.Replace(Attributes(f.Attributes), Attributes(f.Attributes.Append(new(KeyAttributeNames.Wrap, true)))),
            "wrappedKey from another backup" => t => t.Replace(B64(f.WrappedKey), B64(g.WrappedKey)),
            "wrappedMacKey" => t => t.Replace(B64(f.Authentication.WrappedMacKey), B64(Changed(f.Authentication.WrappedMacKey))),
            "tag" => t => t.Replace(Convert.ToHexString(f.Authentication.Tag).ToLowerInvariant(), Convert.ToHexString(Changed(f.Authentication.Tag)).ToLowerInvariant()),
            "keyWrap" => t => t.Replace("\"keyWrap\": \"CKM_AES_KEY_WRAP_PAD\"", "\"keyWrap\": \"CKM_AES_KEY_WRAP\""),
            _ => t => Flip(t, field),
        };
        if (field == "kind")
        {
            // An AES key claimed to be a generic secret (the other secret kind).
            var aes = b.GenerateKey(KeyKind.Aes, 256, null, NewId(), "aes", extractable: true);
            var a = b.Wrap(aes);
            AssertTampered(b, Edit(a, t => t.Replace("\"kind\": \"Aes\"", "\"kind\": \"GenericSecret\"")), NewId());
            return;
        }
        Assert.True(f.Attributes.ContainsKey(KeyAttributeNames.Derive));
        Assert.False(f.Attributes.ContainsKey(KeyAttributeNames.Wrap));
        // Onto a free id, so that only the tag can refuse it.
        AssertTampered(b, Edit(f, edit), NewId());
    }

    private static string Attributes(IEnumerable<KeyValuePair<string, bool>> attributes) =>
        "\"attributes\": {\n" + string.Join(",\n", attributes.OrderBy(a => a.Key, StringComparer.Ordinal)
            .Select(a => $"      \"{a.Key}\": {(a.Value ? "true" : "false")}")) + "\n    }";

    [SoftHsmFact]
    public void ABackupRun_MakesOneMacKey_AndOneSignPerKey_AndAListingStartsTheNext()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        var keys = Enumerable.Range(0, 3).Select(i => b.GenerateKey(KeyKind.Aes, 128, null, NewId(), $"k{i}", extractable: true)).ToList();
        b.ListKeys();
        int made = b.BackupMac.KeysMade;
        var files = keys.Select(b.Wrap).ToList();
        Assert.Equal(made + 1, b.BackupMac.KeysMade);
        Assert.Single(files.Select(f => Convert.ToHexString(f.Authentication!.WrappedMacKey)).Distinct());
        Assert.Equal(3, files.Select(f => Convert.ToHexString(f.Authentication!.Tag)).Distinct().Count());
        b.ListKeys();
        var next = b.Wrap(keys[0]);
        Assert.Equal(made + 2, b.BackupMac.KeysMade);
        Assert.NotEqual(files[0].Authentication!.WrappedMacKey, next.Authentication!.WrappedMacKey);
        // The run's MAC key is a session object: none is left on the token.
        Assert.Empty(Find(b.Connection.Session, (CKA.CKA_LABEL, "PicoHsm backup MAC key"), (CKA.CKA_TOKEN, true)));
        // Every file verifies, on the token and offline.
        using var dkek = SoftHsmTokens.Dkek(Seed);
        foreach (var f in files.Append(next))
        {
            Assert.False(b.Plan(f, NewId(), null, false).IsRefused);
            Assert.True(f.Authentication!.VerifyOffline(f, dkek.Span));
        }
    }

    [SoftHsmFact]
    public void AVersion1File_StillRestores_WithTheUnauthenticatedWarning()
    {
        using var s = SoftHsmTokens.Connect("core-keys");
        var b = WithDkek(s);
        var key = b.GenerateKey(KeyKind.Ec, 256, "P-256", NewId(), "old format", extractable: true);
        var v2 = b.Wrap(key);
        byte[] v1Bytes = v2.WithAuthentication(null).ToBytes();
        Assert.Contains("\"version\": 1,", Encoding.UTF8.GetString(v1Bytes));
        Assert.DoesNotContain("authentication", Encoding.UTF8.GetString(v1Bytes));
        string path = Path.Combine(_hsm.Root, $"v1-{Guid.NewGuid():n}.pkb");
        File.WriteAllBytes(path, v1Bytes);
        var backup = BackupFiles.Read(path);
        Assert.False(backup.Authenticated);
        Assert.Contains("format version 1", backup.AuthenticationWarning);
        Assert.Contains("not authenticated", backup.AuthenticationWarning);
        var test = BackupCheck.Test(b, path, null, restoreTest: true);
        Assert.True(test.Passed, string.Join("; ", test.Problems));
        Assert.Contains(test.Warnings, w => w.Contains("not authenticated"));
        b.RemoveKey(key);
        var restored = b.Restore(backup, new RestoreRequest());
        Assert.Equal(key.PublicKeyFingerprint, restored.PublicKeyFingerprint);
        // A version 2 backup has no warning.
        string p2 = Path.Combine(_hsm.Root, $"v2-{Guid.NewGuid():n}.pkb");
        File.WriteAllBytes(p2, v2.ToBytes());
        Assert.Null(BackupFiles.Read(p2).AuthenticationWarning);
        Assert.Empty(BackupCheck.Test(b, p2, null, restoreTest: false).Warnings);
    }
}
