namespace PicoHsm.PcSc;

/// <summary>
/// A connection to one card that exchanges raw APDUs. Implemented by <see cref="PcscCardChannel"/>
/// for real readers, and by test doubles (trace replay, simulators).
/// </summary>
public interface ICardChannel : IDisposable
{
    /// <summary>The reader the card sits in (e.g. "Virtual PCD 00 00").</summary>
    string ReaderName { get; }

    /// <summary>The card's answer to reset.</summary>
    byte[] Atr { get; }

    /// <summary>
    /// Sends one command APDU and returns the raw response (data followed by SW1 SW2).
    /// No GET RESPONSE / 6Cxx handling here: see <see cref="CardChannelExtensions.Transmit(ICardChannel, CommandApdu, TransmitOptions)"/>.
    /// </summary>
    byte[] Transmit(ReadOnlySpan<byte> apdu);

    /// <summary>
    /// Takes exclusive access to the card until the returned object is disposed, so that no other
    /// application (a PKCS#11 module) interleaves its APDUs with a multi-command sequence.
    /// </summary>
    IDisposable BeginTransaction();

    /// <summary>Re-establishes the connection; <paramref name="reset"/> = warm reset of the card (clears its PIN state).</summary>
    void Reconnect(bool reset);
}
