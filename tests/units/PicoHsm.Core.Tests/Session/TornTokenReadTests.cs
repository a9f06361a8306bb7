using System.Diagnostics;
using PicoHsm.Common;
using PicoHsm.Core.Tests.Devices.Pkcs11;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Session;

namespace PicoHsm.Core.Tests.Session;

/// <summary>
/// Connects while another process logs in to the same SoftHSM2 token, over and over: each of its
/// logins rewrites the token's token.object, and a read of it meanwhile is torn. Before
/// Pkcs11TornReads, such connects failed now and then: C_Login or C_GetTokenInfo answered
/// CKR_GENERAL_ERROR, C_Login CKR_USER_PIN_NOT_INITIALIZED, or the fresh C_Initialize left the token
/// out ("TokenNotFound"). CI saw the first in Load.Tests (two processes restoring into one token).
/// The other process is OpenSC's pkcs11-tool, as an admin's script beside ours would be.
/// </summary>
[Collection(SoftHsmCollection.Name)]
public sealed class TornTokenReadTests
{
    private const string Label = "core-torn";
    private readonly SoftHsmTokens _hsm;

    public TornTokenReadTests(SoftHsmTokens hsm) => _hsm = hsm;

    [SoftHsmFact]
    public void Connect_WhileAnotherProcessLogsInToTheToken_OverAndOver_NeverFails()
    {
        string stop = Path.Combine(_hsm.Root, "torn-stop");
        string count = Path.Combine(_hsm.Root, "torn-count");
        // Two loops of logins in other processes until the stop file appears; they count them, so the
        // test knows the connects and the logins really overlapped.
        string script = Path.Combine(_hsm.Root, "torn-logins.sh");
        File.WriteAllText(script,
            $"login() {{ n=0; while [ ! -e '{stop}' ]; do pkcs11-tool --module '{SoftHsmTokens.Module}' --token-label {Label} " +
            $"--login --pin {SoftHsmTokens.Pin} -I >/dev/null 2>&1; n=$((n+1)); done; echo $n > '{count}'.$1; }}\n" +
            "login 1 & login 2 & wait\n");
        var psi = new ProcessStartInfo("bash", $"\"{script}\"") { UseShellExecute = false };
        using var writer = Process.Start(psi)!;
        var failures = new List<string>();
        int connects = 0;
        try
        {
            var until = DateTime.UtcNow.AddSeconds(6);
            while (DateTime.UtcNow < until || connects < 100)
            {
                connects++;
                try
                {
                    using var s = SoftHsmTokens.Connect(Label);
                    Assert.True(s.IsLoggedIn);
                }
                catch (PicoHsmException ex)
                {
                    failures.Add($"{ex.Reason}: {ex.Message}");
                }
                if (connects >= 400) break;
            }
        }
        finally
        {
            File.WriteAllText(stop, "");
            writer.WaitForExit();
        }
        int logins = int.Parse(File.ReadAllText(count + ".1").Trim()) + int.Parse(File.ReadAllText(count + ".2").Trim());
        Assert.True(logins >= 20, $"the other process logged in only {logins} times: the two did not overlap");
        Assert.True(failures.Count == 0,
            $"{failures.Count} of {connects} connects failed while another process logged in {logins} times:\n" + string.Join("\n", failures.Distinct().Take(5)));
    }

    [SoftHsmFact]
    public void ALoginIsSentAgain_OnlyWhileTheTokensFlagsShowNoTrySpent()
    {
        // The guard SessionConnector gives the login registry, read from the token's own flags:
        // a wrong PIN from another process sets SoftHSM2's CKF_USER_PIN_COUNT_LOW, and from then
        // on a C_Login that failed is not sent again, until a right PIN clears the flag.
        ToolLogin(SoftHsmTokens.Pin);
        var (slot, token) = TokenDiscovery.Select(SoftHsmTokens.Module, Label, null, null);
        Assert.False(token.UserPinCountLow);
        Assert.True(SessionConnector.RetrySpendsNoTry(slot, token));
        ToolLogin("000000");
        Assert.False(SessionConnector.RetrySpendsNoTry(slot, token));
        ToolLogin(SoftHsmTokens.Pin);
        Assert.True(SessionConnector.RetrySpendsNoTry(slot, token));
    }

    private static void ToolLogin(string pin) => SoftHsmTokens.Pkcs11Tool(Label, "-I", pin); // a wrong PIN fails, as it should
}
