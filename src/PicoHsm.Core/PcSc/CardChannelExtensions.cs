namespace PicoHsm.PcSc;

/// <summary>How <see cref="CardChannelExtensions.Transmit(ICardChannel, CommandApdu, TransmitOptions)"/> treats 61xx / 6Cxx.</summary>
public sealed record TransmitOptions
{
    public static readonly TransmitOptions Default = new();

    /// <summary>
    /// Answer 61xx with GET RESPONSE (00 C0 00 00 xx) and append the data until another SW comes.
    /// Turn off where the card uses 61xx for something else: the Pico HSM answers READ BINARY with
    /// a full chunk of data and 61xx meaning "more of the file left", not "GET RESPONSE available".
    /// </summary>
    public bool FollowGetResponse { get; init; } = true;

    /// <summary>Resend the command once with Le = xx when the card answers 6Cxx (wrong Le).</summary>
    public bool ResendOnWrongLe { get; init; } = true;

    /// <summary>Upper bound for GET RESPONSE rounds (guards against a card that never stops).</summary>
    public int MaxGetResponseRounds { get; init; } = 512;
}

public static class CardChannelExtensions
{
    /// <summary>
    /// Sends <paramref name="command"/> and returns the full response: follows 61xx with GET RESPONSE
    /// (concatenating the data) and resends once with Le=xx on 6Cxx.
    /// </summary>
    public static ResponseApdu Transmit(this ICardChannel channel, CommandApdu command, TransmitOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentNullException.ThrowIfNull(command);
        options ??= TransmitOptions.Default;

        ResponseApdu r = ResponseApdu.Parse(channel.Transmit(command.ToArray()));
        if (r.SW1 == 0x6C && options.ResendOnWrongLe)
        {
            int ne = r.SW2 == 0 ? CommandApdu.MaxShortNe : r.SW2;
            r = ResponseApdu.Parse(channel.Transmit(command.WithNe(ne).ToArray()));
        }
        if (r.SW1 != 0x61 || !options.FollowGetResponse) return r;

        using var data = new MemoryStream();
        data.Write(r.Data);
        for (int round = 0; r.SW1 == 0x61; round++)
        {
            if (round >= options.MaxGetResponseRounds)
                throw new InvalidOperationException($"The card kept answering 61xx after {round} GET RESPONSE commands.");
            int ne = r.SW2 == 0 ? CommandApdu.MaxShortNe : r.SW2;
            var getResponse = new CommandApdu((byte)(command.Cla & 0x03), 0xC0, 0x00, 0x00, default, ne);
            r = ResponseApdu.Parse(channel.Transmit(getResponse.ToArray()));
            if (r.SW1 == 0x6C && options.ResendOnWrongLe)
                r = ResponseApdu.Parse(channel.Transmit(getResponse.WithNe(r.SW2 == 0 ? 256 : r.SW2).ToArray()));
            data.Write(r.Data);
        }
        return new ResponseApdu(data.ToArray(), r.SW1, r.SW2);
    }
}
