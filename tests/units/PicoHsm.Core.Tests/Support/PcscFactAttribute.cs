using System.Diagnostics;
using Xunit.Abstractions;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.PcSc;

namespace PicoHsm.Core.Tests.Support;

/// <summary>
/// A [Fact] that is skipped, with the reason, when the native PC/SC library cannot be loaded (no
/// libpcsclite / winscard), or, for a test that puts its own card in <c>emptyReader</c>, when another
/// process's card sits in that reader (checked when the tests are discovered, after waiting a few
/// seconds for a card that is just leaving). Everything else (pcscd not running, readers missing)
/// fails loudly.
/// </summary>
public sealed class PcscFactAttribute : FactAttribute
{
    public PcscFactAttribute(string? emptyReader = null)
    {
        if (!PcscContext.IsLibraryAvailable(out string? error))
            Skip = $"PC/SC library not available on this machine: {error}";
        else if (emptyReader is not null && OtherCardIn(emptyReader) is { } atr)
            Skip = $"'{emptyReader}' already holds another process's card (ATR {atr}); this test needs that reader for its own card.";
    }

    /// <summary>The ATR of the card in <paramref name="reader"/> once it has had 5 s to leave; null when there is none.</summary>
    private static string? OtherCardIn(string reader)
    {
        try
        {
            using var ctx = PcscContext.Establish();
            PcscReaderStatus? st = WaitUntilEmpty(ctx, reader);
            return st is { CardPresent: true } ? Convert.ToHexString(st.Atr) : null;
        }
        catch (PcscException)
        {
            return null; // pcscd not running, no such reader: the test itself starts pcscd or reports it
        }
    }

    /// <summary>
    /// The state of <paramref name="reader"/> once it is empty, or after 5 s: a card process that just left
    /// (an earlier test) takes pcscd a moment to notice.
    /// </summary>
    internal static PcscReaderStatus? WaitUntilEmpty(PcscContext ctx, string reader)
    {
        PcscReaderStatus? st = ctx.GetStatusChange(reader, TimeSpan.FromSeconds(1));
        for (int i = 0; i < 10 && st is { CardPresent: true }; i++)
        {
            Thread.Sleep(500);
            st = ctx.GetStatusChange(reader, TimeSpan.FromSeconds(1));
        }
        return st;
    }
}
