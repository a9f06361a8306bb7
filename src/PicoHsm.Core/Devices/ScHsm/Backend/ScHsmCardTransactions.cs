using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>
/// How every backend operation reaches the card: under the session's gate, refused once the connection is
/// closed, inside one PC/SC transaction (so nothing else talks to the card in between), with card status
/// errors translated by <see cref="ScHsmCardException.ToPicoHsmException"/> and PC/SC failures reported
/// as the card being unavailable. When the transaction cannot even begin because the card this connection
/// was made to has left the reader (removed, or restarted: the handle stays on the old card), the connection
/// is closed (<see cref="Gone"/>) and the error is SessionClosed, naming the fix.
/// </summary>
internal sealed class ScHsmCardTransactions(DeviceContext context, ICardChannel channel)
{
    public bool IsClosed { get; private set; }

    /// <summary>Why the connection was found gone (a PC/SC code's name), or null while it was not.</summary>
    public string? GoneReason { get; private set; }

    /// <summary>Told once when the card is found gone (the backend closes the connection: logout, PKCS#11 session).</summary>
    public Action? Gone { get; set; }

    public void Close() => IsClosed = true;

    public T Run<T>(string action, Func<T> body)
    {
        lock (context.Gate)
        {
            if (IsClosed) throw Closed();
            IDisposable tx;
            try
            {
                tx = channel.BeginTransaction();
            }
            catch (PcscException ex) when (IsGone(ex.ErrorCode))
            {
                MarkGone(ex.ErrorCode);
                throw Closed(ex);
            }
            catch (PcscException ex)
            {
                throw Unavailable(ex, channel.ReaderName);
            }
            try
            {
                using (tx) return body();
            }
            catch (ScHsmCardException ex)
            {
                throw ex.ToPicoHsmException(action, context);
            }
            catch (PcscException ex)
            {
                throw Unavailable(ex, channel.ReaderName);
            }
        }
    }

    /// <summary>
    /// Whether the connection still reaches the card it was made to: one SCardStatus, no APDU. Gone: closed (see
    /// <see cref="Gone"/>). A connection busy on another thread is not waited for (its own work finds out).
    /// </summary>
    public bool Check()
    {
        if (IsClosed) return false;
        if (channel is not PcscCardChannel pcsc) return true;
        if (!Monitor.TryEnter(context.Gate)) return true;
        try
        {
            if (IsClosed) return false;
            uint rc = pcsc.CheckStatus();
            if (!IsGone(rc)) return true;
            MarkGone(rc);
            return false;
        }
        finally
        {
            Monitor.Exit(context.Gate);
        }
    }

    /// <summary>
    /// PC/SC codes that say this handle will never reach its card again: the card left the reader (a card put back,
    /// or the device restarted, is a new card to PC/SC), the reader or pcscd went away. A reset is not: the channel
    /// reconnects and the PIN copy VERIFYs again.
    /// </summary>
    public static bool IsGone(uint rc) => rc is PcscError.SCARD_W_REMOVED_CARD or PcscError.SCARD_E_NO_SMARTCARD
        or PcscError.SCARD_E_INVALID_HANDLE or PcscError.SCARD_E_READER_UNAVAILABLE or PcscError.SCARD_E_UNKNOWN_READER
        or PcscError.SCARD_E_NO_SERVICE or PcscError.SCARD_E_SERVICE_STOPPED;

    private void MarkGone(uint rc)
    {
        if (GoneReason is not null) return;
        GoneReason = PcscError.Name(rc);
        Gone?.Invoke();
        IsClosed = true;
    }

    public PicoHsmException Closed(Exception? inner = null) => GoneReason is null
        ? new(PicoErrorKind.InvalidOperation, "SessionClosed",
            $"The card connection of session {context.SessionId} to '{context.TokenLabel}' is closed. Run Connect-PicoHsm again.", context, inner)
        : new(PicoErrorKind.ResourceUnavailable, "SessionClosed",
            $"Session {context.SessionId} to '{context.TokenLabel}' is closed: the card in '{channel.ReaderName}' was removed or restarted since it connected " +
            $"(PC/SC: {GoneReason}), so its login is gone. Put the card back if it is out, then run Connect-PicoHsm again.", context, inner);

    public static PicoHsmException Unavailable(PcscException ex, string reader) =>
        new(PicoErrorKind.ResourceUnavailable, "CardUnavailable",
            $"The card in '{reader}' did not answer: {ex.Message} Check that it is still inserted, then connect again.", reader, ex);
}
