using System.Collections.Concurrent;
using Net.Pkcs11Interop.Common;
using PicoHsm.Backup;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Keys;
using PicoHsm.Session;
using static PicoHsm.Devices.Pkcs11.Pkcs11KeyStore;

namespace PicoHsm.Core.Tests.Devices.Pkcs11;

/// <summary>
/// Issue 10, "Load and concurrency": several threads working over ONE session, as
/// <c>ForEach-Object -Parallel</c> with <c>$using:session</c> does. Every key exported once into its
/// own file, every file restored once: none missing, none doubled, each answer the key it was asked for.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class Pkcs11OneSessionLoadTests
{
    private const int Threads = 4;
    private static readonly byte[] DkekId = { 0xD1, 0xE0 };

    public Pkcs11OneSessionLoadTests(SoftHsmTokens hsm) { _ = hsm; }

    private static Pkcs11DkekBackend WithDkek(PicoHsmSession s)
    {
        var b = Assert.IsType<Pkcs11DkekBackend>(s.Device);
        using var dkek = SoftHsmTokens.Dkek(7);
        b.ImportDkek(dkek, "DKEK", DkekId);
        return b;
    }

    /// <summary>
    /// Runs <paramref name="work"/> on every item from <see cref="Threads"/> threads at once, while one more
    /// thread collects garbage and runs finalizers without pause (as a busy PowerShell host's runspaces
    /// make the GC do at random moments); the exceptions the work threw.
    /// </summary>
    private static List<Exception> OnThreads<T>(IReadOnlyList<T> items, Action<T> work)
    {
        var queue = new ConcurrentQueue<T>(items);
        var errors = new ConcurrentBag<Exception>();
        using var start = new ManualResetEventSlim();
        bool done = false;
        var collector = new Thread(() =>
        {
            start.Wait();
            while (!Volatile.Read(ref done))
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        });
        collector.Start();
        var threads = Enumerable.Range(0, Threads).Select(_ => new Thread(() =>
        {
            start.Wait();
            while (queue.TryDequeue(out var item))
            {
                try { work(item); }
                catch (Exception ex) { errors.Add(ex); }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        start.Set();
        threads.ForEach(t => t.Join());
        Volatile.Write(ref done, true);
        collector.Join();
        return errors.ToList();
    }

    private static HashSet<string> SecretIdsOnToken(Pkcs11DkekBackend b, string prefix)
    {
        // Read by a fresh find of the token, not through the module's listing.
        var ids = new List<string>();
        lock (b.Context.Gate)
            foreach (var h in Find(b.Connection.Session, (CKA.CKA_CLASS, CKO.CKO_SECRET_KEY)))
            {
                string id = IdHex(Read(b.Connection.Session, h, new List<CKA> { CKA.CKA_ID })[CKA.CKA_ID]?.GetValueAsByteArray());
                if (id.StartsWith(prefix, StringComparison.Ordinal)) ids.Add(id);
            }
        Assert.Equal(ids.Count, ids.Distinct().Count()); // no id doubled
        return ids.ToHashSet();
    }

    [SoftHsmFact]
    public void ExportAndRestoreFromFourThreadsOverOneSession_UnderGcPressure_EveryKeyOnceAtItsId_NoneMissing()
    {
        const int n = 150;
        using var src = SoftHsmTokens.Connect("core-load-src");
        using var dst = SoftHsmTokens.Connect("core-load-dst");
        var a = WithDkek(src);
        var d = WithDkek(dst);
        string prefix = Convert.ToHexString(Guid.NewGuid().ToByteArray()[..2]).ToLowerInvariant();
        for (int i = 0; i < n; i++)
            a.GenerateKey(KeyKind.Aes, 128, null, Convert.FromHexString($"{prefix}{i:x4}"), $"load-{i}", extractable: true);
        var keys = a.ListKeys().Where(k => k.Id.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        Assert.Equal(n, keys.Count);

        // Export: one file per key, from four threads over the one source session.
        var files = new ConcurrentDictionary<string, WrappedKeyFile>();
        var exportErrors = OnThreads(keys, k => Assert.True(files.TryAdd(k.Id, a.Wrap(k))));
        Assert.Empty(exportErrors);
        Assert.Equal(n, files.Count);
        Assert.All(files, f => Assert.Equal(f.Key, IdHex(f.Value.Id)));

        // Restore: as Import-PicoWrappedKey does (plan, then restore), from four threads over the one target session.
        var restored = new ConcurrentBag<(string Asked, PicoKey Got, RestoreAction Planned)>();
        var restoreErrors = OnThreads(files.Values.ToList(), f =>
        {
            var plan = d.Plan(f, null, null, force: false);
            Assert.False(plan.IsRefused, string.Join("; ", plan.Refusals.Select(r => r.Message)));
            restored.Add((IdHex(f.Id), d.Restore(f, null, null, force: false), plan.Action));
        });
        Assert.Empty(restoreErrors);
        Assert.All(restored, r => Assert.Equal(r.Asked, r.Got.Id));
        Assert.All(restored, r => Assert.Equal(RestoreAction.Create, r.Planned));
        var onToken = SecretIdsOnToken(d, prefix);
        var missing = files.Keys.Where(id => !onToken.Contains(id)).ToList();
        Assert.True(missing.Count == 0, $"missing on the token: {string.Join(", ", missing)}");
        Assert.Equal(n, onToken.Count);
    }

    [SoftHsmFact]
    public void ARestoreOrKeyGenerationWaitingForTheTokenLock_EndsWithStopped_WhenItsScopeIsCancelled_AndChangesNothing()
    {
        // Another process (here: this test) holds the token's lock for good; Ctrl+C (the cmdlet's
        // token, handed down by TokenLock.CancelWaitsWith) must end the wait, not TokenBusy after 60 s.
        using var s = SoftHsmTokens.Connect("core-load-dst");
        var b = WithDkek(s);
        var key = b.GenerateKey(KeyKind.Aes, 128, null, Guid.NewGuid().ToByteArray()[..6], "to restore", extractable: true);
        var file = b.Wrap(key);
        byte[] restoreId = Guid.NewGuid().ToByteArray()[..6];
        byte[] newId = Guid.NewGuid().ToByteArray()[..6];
        using var held = TokenLock.Acquire(s.Token, CancellationToken.None);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        using (TokenLock.CancelWaitsWith(cts.Token))
        {
            var e1 = Assert.ThrowsAny<OperationCanceledException>(() => b.Restore(file, restoreId, null, force: false));
            var e2 = Assert.ThrowsAny<OperationCanceledException>(() => b.GenerateKey(KeyKind.Aes, 128, null, newId, "never made", extractable: true));
            Assert.Equal("Stopped", PicoHsm.Operations.ErrorTranslation.Translate(e1)!.Reason);
            Assert.Equal("Stopped", PicoHsm.Operations.ErrorTranslation.Translate(e2)!.Reason);
        }
        lock (b.Context.Gate)
        {
            Assert.Empty(Find(b.Connection.Session, (CKA.CKA_ID, restoreId)));
            Assert.Empty(Find(b.Connection.Session, (CKA.CKA_ID, newId)));
        }
    }
}
