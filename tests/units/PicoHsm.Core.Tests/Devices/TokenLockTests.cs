using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Operations;
using Xunit;

namespace PicoHsm.Core.Tests.Devices;

public class TokenLockTests
{
    private static PicoHsmToken Token(string serial, string label = "t") => new()
    {
        ModulePath = "/nonexistent.so", SlotId = 0, SlotDescription = "slot", TokenPresent = true,
        Label = label, SerialNumber = serial, Model = "SoftHSM v2", Manufacturer = "SoftHSM project",
    };

    [Fact]
    public void NameFor_SameTokenThroughAnotherSlotOrModule_IsTheSameLock()
    {
        var a = Token("serial-1");
        var b = new PicoHsmToken { ModulePath = "/other.so", SlotId = 7, SlotDescription = "x", TokenPresent = true, Label = "t", SerialNumber = "serial-1", Model = "SoftHSM v2", Manufacturer = "SoftHSM project" };
        Assert.Equal(TokenLock.NameFor(a), TokenLock.NameFor(b));
        Assert.NotEqual(TokenLock.NameFor(a), TokenLock.NameFor(Token("serial-2")));
    }

    [Fact]
    public void Acquire_WhileAnotherHoldsIt_WaitsAndThenReportsTokenBusy()
    {
        var token = Token("busy-" + Guid.NewGuid().ToString("n"));
        using (TokenLock.Acquire(token, CancellationToken.None))
        {
            // Another holder in this process (a second session): flock is per open file, so it waits too.
            var ex = Assert.Throws<PicoHsmException>(() => TokenLock.Acquire(token, CancellationToken.None, TimeSpan.FromMilliseconds(300)));
            Assert.Equal("TokenBusy", ex.Reason);
            Assert.Contains("run the command again", ex.Message);
        }
        // Released: the next holder gets it at once.
        using var again = TokenLock.Acquire(token, CancellationToken.None, TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public void Acquire_SerialisesHolders_NoTwoInsideAtOnce()
    {
        var token = Token("serial-" + Guid.NewGuid().ToString("n"));
        int inside = 0, maxInside = 0, entered = 0;
        var threads = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < 25; i++)
            {
                using var l = TokenLock.Acquire(token, CancellationToken.None);
                int now = Interlocked.Increment(ref inside);
                int seen;
                do { seen = maxInside; } while (now > seen && Interlocked.CompareExchange(ref maxInside, now, seen) != seen);
                Thread.Yield();
                Interlocked.Increment(ref entered);
                Interlocked.Decrement(ref inside);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Equal(100, entered);
        Assert.Equal(1, maxInside);
    }

    [Fact]
    public void Acquire_Cancelled_StopsWaiting()
    {
        var token = Token("cancel-" + Guid.NewGuid().ToString("n"));
        using var held = TokenLock.Acquire(token, CancellationToken.None);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() => TokenLock.Acquire(token, cts.Token));
    }

    [Fact]
    public void Acquire_InACancelledScope_EndsWithTheModulesStoppedError_NotTokenBusy()
    {
        // A backend passes CancellationToken.None; the cmdlet's Ctrl+C token reaches the wait
        // through the scope the cmdlet base class opens (PicoCmdletBase.Guard).
        var token = Token("scope-" + Guid.NewGuid().ToString("n"));
        using var held = TokenLock.Acquire(token, CancellationToken.None);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        OperationCanceledException ex;
        using (TokenLock.CancelWaitsWith(cts.Token))
            ex = Assert.ThrowsAny<OperationCanceledException>(() => TokenLock.Acquire(token, CancellationToken.None));
        Assert.Contains("nothing was changed", ex.Message);
        var typed = ErrorTranslation.Translate(ex);
        Assert.NotNull(typed);
        Assert.Equal(PicoErrorKind.OperationStopped, typed!.Kind);
        Assert.Equal("Stopped", typed.Reason);
    }

    [Fact]
    public void Acquire_CancelledWhileWaiting_Ends_WithStopped()
    {
        // The holder keeps the lock for good: the wait can only end by its cancellation (or by
        // TokenBusy after the full timeout, which this test would report as the wrong error).
        var token = Token("waiting-" + Guid.NewGuid().ToString("n"));
        using var held = TokenLock.Acquire(token, CancellationToken.None);
        using var cts = new CancellationTokenSource();
        using var waiting = new ManualResetEventSlim();
        Exception? caught = null;
        var t = new Thread(() =>
        {
            waiting.Set();
            try
            {
                using (TokenLock.CancelWaitsWith(cts.Token)) TokenLock.Acquire(token, CancellationToken.None).Dispose();
            }
            catch (Exception e) { caught = e; }
        });
        t.Start();
        waiting.Wait();
        Thread.Sleep(50); // let it start waiting (if it has not, it sees the cancellation at once: the same result)
        cts.Cancel();
        t.Join();
        Assert.IsAssignableFrom<OperationCanceledException>(caught);
        Assert.Equal("Stopped", ErrorTranslation.Translate(caught!)!.Reason);
    }

    [Fact]
    public void CancelWaitsWith_EndsWithItsScope()
    {
        var token = Token("scope-end-" + Guid.NewGuid().ToString("n"));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        using (TokenLock.CancelWaitsWith(cts.Token)) { }
        // Outside the scope a free lock is taken as before.
        using var l = TokenLock.Acquire(token, CancellationToken.None);
    }
}
