using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>
/// How every backend operation reaches the card: under the session's gate, refused once the connection is
/// closed, inside one PC/SC transaction (so nothing else talks to the card in between), with card status
/// errors translated by <see cref="ScHsmCardException.ToPicoHsmException"/> and PC/SC failures reported
/// as the card being unavailable.
/// </summary>
internal sealed class ScHsmCardTransactions(DeviceContext context, ICardChannel channel)
{
    public bool IsClosed { get; private set; }

    public void Close() => IsClosed = true;

    public T Run<T>(string action, Func<T> body)
    {
        lock (context.Gate)
        {
            if (IsClosed) throw Closed();
            try
            {
                using var tx = channel.BeginTransaction();
                return body();
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

    public PicoHsmException Closed() => new(PicoErrorKind.InvalidOperation, "SessionClosed",
        $"The card connection of session {context.SessionId} to '{context.TokenLabel}' is closed. Connect again with Connect-PicoHsm.", context);

    public static PicoHsmException Unavailable(PcscException ex, string reader) =>
        new(PicoErrorKind.ResourceUnavailable, "CardUnavailable",
            $"The card in '{reader}' did not answer: {ex.Message} Check that it is still inserted, then connect again.", reader, ex);
}
