using PicoHsm.Common;
using PicoHsm.Devices.Pkcs11;
using PicoHsm.Devices.ScHsm.Card;
using PicoHsm.PcSc;

namespace PicoHsm.Devices.ScHsm.Backend;

/// <summary>Finding the card's reader and connecting to it (shared mode); the backend made owns the connection.</summary>
internal static class ScHsmCardConnector
{
    /// <summary>Readers holding a SmartCard-HSM family card (by ATR; nothing is sent to any card).</summary>
    public static IReadOnlyList<string> FindReaders()
    {
        try
        {
            using var ctx = PcscContext.Establish();
            return ScHsmCard.FindReaders(ctx).Select(r => r.Reader).ToList();
        }
        catch (PcscException ex) when (ex.ErrorCode is PcscError.SCARD_E_NO_READERS_AVAILABLE or PcscError.SCARD_E_NO_SERVICE)
        {
            return Array.Empty<string>();
        }
    }

    /// <summary>The backend of the card in <paramref name="readerName"/>, owning <paramref name="pkcs11"/> when given.</summary>
    public static ScHsmCardBackend Open(DeviceContext context, string readerName, SecretBytes? pin, Pkcs11Connection? pkcs11)
    {
        ArgumentNullException.ThrowIfNull(context);
        var channel = Connect(readerName);
        return new ScHsmCardBackend(context, channel, pin, pkcs11);
    }

    /// <summary>
    /// The backend of the card in the reader the PKCS#11 slot is named after (OpenSC's slot description is
    /// the PC/SC reader name); the only SmartCard-HSM reader when the name matches none.
    /// </summary>
    public static ScHsmCardBackend Open(DeviceContext context, SecretBytes? pin, Pkcs11Connection? pkcs11)
    {
        ArgumentNullException.ThrowIfNull(context);
        var readers = FindReaders();
        string wanted = context.Token.SlotDescription?.Trim() ?? "";
        string? reader = readers.FirstOrDefault(r => r == wanted)
            ?? readers.FirstOrDefault(r => wanted.Length > 0 && (r.StartsWith(wanted, StringComparison.Ordinal) || wanted.StartsWith(r, StringComparison.Ordinal)))
            ?? (readers.Count == 1 ? readers[0] : null);
        if (reader is null)
            throw new PicoHsmException(PicoErrorKind.NotFound, "NoCardReader",
                readers.Count == 0
                    ? $"No PC/SC reader holds a SmartCard-HSM / Pico HSM card (session {context.SessionId}, slot '{wanted}'). Check that pcscd (or the Smart Card service) runs and sees the card."
                    : $"None of the SmartCard-HSM readers ({string.Join(", ", readers)}) matches the slot '{wanted}' of session {context.SessionId}. Connect with -Reader.", context);
        return Open(context, reader, pin, pkcs11);
    }

    /// <summary>
    /// A backend for a card reached through PC/SC only: the token is described from the card
    /// (<see cref="ScHsmTokenReader.ReadToken"/>), and with a PIN the session is logged in once the card accepted it.
    /// </summary>
    public static ScHsmCardBackend ConnectCardOnly(string readerName, SecretBytes? pin)
    {
        var channel = Connect(readerName);
        ScHsmCardBackend? backend = null;
        try
        {
            var token = ScHsmTokenReader.ReadToken(channel);
            backend = new ScHsmCardBackend(new DeviceContext(token), channel, null);
            if (pin is not null) backend.Login(pin);
            return backend;
        }
        catch
        {
            if (backend is not null) backend.Dispose();
            else channel.Dispose();
            throw;
        }
    }

    private static PcscCardChannel Connect(string readerName)
    {
        ArgumentException.ThrowIfNullOrEmpty(readerName);
        try
        {
            return PcscCardChannel.Connect(readerName);
        }
        catch (PcscException ex)
        {
            throw new PicoHsmException(PicoErrorKind.ResourceUnavailable, "CardUnavailable",
                $"Cannot connect to the card in reader '{readerName}': {ex.Message} Check that the card is inserted and pcscd (or the Smart Card service) runs.", readerName, ex);
        }
    }
}
