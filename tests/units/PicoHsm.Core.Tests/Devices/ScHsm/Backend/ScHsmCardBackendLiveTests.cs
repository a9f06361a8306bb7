using System.Text;
using Xunit.Abstractions;
using Sim = PicoHsm.CardSimulator;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Backend;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.PcSc;
using PicoHsm.Session;

using PicoHsm.Core.Tests.Support;

namespace PicoHsm.Core.Tests.Devices.ScHsm.Backend;

/// <summary>
/// The backend through the real PC/SC stack: the card simulator as the card of vpcd's second reader
/// ("Virtual PCD 00 01", port 35964) inside pcscd; FindReaders, ConnectCardOnly (PcscCardChannel), restore,
/// restore test and export. Skipped, with the reason, without a PC/SC library or when another process's card sits in
/// that reader.
/// </summary>
[Collection("pcsc-live")]
public sealed class ScHsmCardBackendLiveTests(ITestOutputHelper output) : IDisposable
{
    private const string Reader1 = "Virtual PCD 00 01";
    private const int Reader1Port = 35964;
    private readonly string _dir = Directory.CreateTempSubdirectory("schsm-live-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [PcscFact(emptyReader: Reader1)]
    public async Task CardOnlySession_OverPcsc_RestoreTestExport()
    {
        using (var ctx = PcscContext.Establish())
        {
            var before = PcscFactAttribute.WaitUntilEmpty(ctx, Reader1);
            if (before is { CardPresent: true }) // it was empty when the tests were discovered
                Assert.Fail($"{Reader1} got a card (ATR {Convert.ToHexString(before.Atr)}) from another process during the run; not interfering with it.");
        }
        var sim = new Sim.ScHsmSimulator(new Sim.ScHsmOptions { Initialized = true, DkekShares = 1, ImportedShares = { VectorFiles.Dkek } });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var vpcd = new Sim.VpcdClient(sim, "127.0.0.1", Reader1Port, s => output.WriteLine(s));
        var run = Task.Run(() => vpcd.RunAsync(cts.Token));
        try
        {
            IReadOnlyList<string> readers = Array.Empty<string>();
            for (int i = 0; i < 40 && !readers.Contains(Reader1); i++)
            {
                await Task.Delay(250);
                readers = ScHsmCardBackend.FindReaders();
            }
            Assert.Contains(Reader1, readers);

            using var pin = SecretBytes.CopyOf(Encoding.ASCII.GetBytes("648219"));
            using var session = new PicoHsmSession(ScHsmCardBackend.ConnectCardOnly(Reader1, pin));
            Assert.True(session.IsLoggedIn);
            Assert.Equal(DeviceFamily.ScHsmCard, session.DeviceFamily);
            Assert.Equal("ESPICOHSMTR", session.SerialNumber);
            Assert.Equal(Reader1, session.ReaderName);
            var backend = Assert.IsType<ScHsmCardBackend>(session.Device);
            Assert.Equal(VectorFiles.KcvHex, Assert.Single(backend.GetDkek()).KeyCheckValue);

            var key = backend.Restore(VectorFiles.Backup("rsa2048.wky"), new RestoreRequest());
            Assert.Equal("01", key.Id);
            var t = backend.Test(VectorFiles.Backup("ec256.wky"), restoreTest: true);
            Assert.True(t.Passed, string.Join(" | ", t.Problems));
            var b = backend.Export(key, Path.Combine(_dir, "rsa.wky"), overwrite: false);
            Assert.Equal(VectorFiles.KcvHex, b.Kcv);
            Assert.Equal(key.PublicKeyFingerprint, b.PublicKeyFingerprint);
            Assert.Equal(new byte[] { 0, 1 }, sim.KeyReferences.OrderBy(x => x).ToArray());

            // A second connection (as beside OpenSC's PKCS#11 session): found by the slot's reader name,
            // no PIN of its own: the card's PIN state is shared, so it wraps without a VERIFY.
            var token2 = new PicoHsmToken { ModulePath = "opensc-pkcs11.so", SlotId = 1, SlotDescription = Reader1, TokenPresent = true, Label = "SmartCard-HSM" };
            var context2 = new DeviceContext(token2);
            context2.SetLoggedIn(true);
            using var second = ScHsmCardBackend.Open(context2, pin: null);
            Assert.False(second.HasPin);
            var again = second.Export(Assert.Single(second.ListKeys()), Path.Combine(_dir, "rsa-2.wky"), overwrite: false);
            Assert.Equal(b.PublicKeyFingerprint, again.PublicKeyFingerprint);
        }
        finally
        {
            cts.Cancel();
            try { await run; } catch (OperationCanceledException) { }
        }
    }
}
