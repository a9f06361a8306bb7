#if NET
using System.Reflection;
using System.Text;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.Pkcs11;

namespace PicoHsm.Core.Tests.Devices.Pkcs11;

/// <summary>
/// When the registry sends C_Login again after CKR_GENERAL_ERROR (a torn read of SoftHSM2's token
/// file, see Pkcs11TornReads; TornTokenReadTests makes it happen for real, but when is up to the
/// scheduler) and when it must not. The answers here are scripted, so each case is certain: a
/// session whose C_Login answers what the case says, and counts how often it was called. No
/// retry may ever follow an answer the token gives after checking the PIN, or go on without the
/// caller's word that the token's PIN state shows no try spent.
/// </summary>
public sealed class Pkcs11LoginRetryTests
{
    private static readonly byte[] Pin = Encoding.UTF8.GetBytes("648219");

    private static PicoHsmToken Token() => new()
    {
        ModulePath = "scripted", SlotId = 7, SlotDescription = "scripted slot", TokenPresent = true,
        Label = "scripted", SerialNumber = Guid.NewGuid().ToString("n")[..16], Initialized = true, UserPinInitialized = true,
    };

    private static (Pkcs11Login Login, ScriptedSession Session) LogIn(Func<int, CKR> answer, Func<bool>? guard)
    {
        var session = ScriptedSession.Create(answer);
        var login = Pkcs11LoginRegistry.Login("scripted-" + Guid.NewGuid().ToString("n"), Token(), (ISession)(object)session, Pin,
            retrySpendsNoTry: guard);
        return (login, session);
    }

    [Fact]
    public void GeneralErrorOnce_IsLoggedInOnTheSecondTry_WhenTheGuardAllowsIt()
    {
        int asked = 0;
        var (login, session) = LogIn(n => n == 1 ? CKR.CKR_GENERAL_ERROR : CKR.CKR_OK, () => { asked++; return true; });
        Assert.Equal(2, session.Logins);
        Assert.Equal(1, asked);
        login.Release(() => { });
    }

    [Fact]
    public void GeneralError_IsNotSentAgain_WhenTheGuardSaysATryMayHaveBeenSpent()
    {
        var e = Assert.Throws<PicoHsmException>(() => LogIn(_ => CKR.CKR_GENERAL_ERROR, () => false));
        Assert.Equal(1, ScriptedSession.Last!.Logins);
        Assert.Equal(CKR.CKR_GENERAL_ERROR, Assert.IsType<Pkcs11Exception>(e.InnerException).RV);
    }

    [Fact]
    public void GeneralError_IsNotSentAgain_WithoutAGuard()
    {
        Assert.Throws<PicoHsmException>(() => LogIn(_ => CKR.CKR_GENERAL_ERROR, null));
        Assert.Equal(1, ScriptedSession.Last!.Logins);
    }

    [Theory]
    [InlineData(CKR.CKR_PIN_INCORRECT)]
    [InlineData(CKR.CKR_PIN_LOCKED)]
    [InlineData(CKR.CKR_DEVICE_ERROR)]
    [InlineData(CKR.CKR_USER_PIN_NOT_INITIALIZED)]
    public void AnswersOtherThanGeneralError_AreFinal_AndTheGuardIsNotAsked(CKR rv)
    {
        int asked = 0;
        var e = Assert.Throws<PicoHsmException>(() => LogIn(_ => rv, () => { asked++; return true; }));
        Assert.Equal(1, ScriptedSession.Last!.Logins);
        Assert.Equal(0, asked);
        Assert.Equal(rv, Assert.IsType<Pkcs11Exception>(e.InnerException).RV);
    }

    [Fact]
    public void GeneralErrorEveryTime_GivesUpAfterTheWaits_WithTheTokensAnswer()
    {
        var e = Assert.Throws<PicoHsmException>(() => LogIn(_ => CKR.CKR_GENERAL_ERROR, () => true));
        Assert.Equal(Pkcs11TornReads.Waits.Length + 1, ScriptedSession.Last!.Logins);
        Assert.Equal(CKR.CKR_GENERAL_ERROR, Assert.IsType<Pkcs11Exception>(e.InnerException).RV);
        Assert.Contains("scripted", e.Message);
    }

    [Fact]
    public void Read_RetriesOnlyGeneralError_AndThrowsTheLastFailure()
    {
        int calls = 0;
        Assert.Equal(3, Pkcs11TornReads.Read(() => ++calls < 3 ? throw new Pkcs11Exception("C_GetTokenInfo", CKR.CKR_GENERAL_ERROR) : calls));
        calls = 0;
        var e = Assert.Throws<Pkcs11Exception>(() => Pkcs11TornReads.Read<int>(() => { calls++; throw new Pkcs11Exception("C_GetTokenInfo", CKR.CKR_DEVICE_REMOVED); }));
        Assert.Equal(1, calls);
        Assert.Equal(CKR.CKR_DEVICE_REMOVED, e.RV);
    }

    /// <summary>An ISession whose C_Login answers from a script; C_GetSessionInfo fails (so the registry sees no login in place).</summary>
    public class ScriptedSession : DispatchProxy
    {
        [ThreadStatic] public static ScriptedSession? Last;
        private Func<int, CKR> _answer = _ => CKR.CKR_OK;
        public int Logins { get; private set; }

        public static ScriptedSession Create(Func<int, CKR> answer)
        {
            var s = (ScriptedSession)(object)Create<ISession, ScriptedSession>();
            s._answer = answer;
            Last = s;
            return s;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            switch (targetMethod!.Name)
            {
                case nameof(ISession.Login):
                    var rv = _answer(++Logins);
                    if (rv != CKR.CKR_OK) throw new Pkcs11Exception("C_Login", rv);
                    return null;
                case nameof(ISession.GetSessionInfo):
                    throw new Pkcs11Exception("C_GetSessionInfo", CKR.CKR_FUNCTION_NOT_SUPPORTED);
                default:
                    throw new NotSupportedException(targetMethod.Name);
            }
        }
    }
}
#endif
