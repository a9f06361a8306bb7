namespace PicoHsm.CardSimulator;

/// <summary>What an injected fault does to the command it hits.</summary>
public enum FaultMode
{
    /// <summary>The card answers <see cref="SimulatedFault.StatusWord"/> (default 6581, memory failure) and does nothing; it stays reachable.</summary>
    Error,

    /// <summary>The card leaves the reader before the command runs: <see cref="ScHsmSimulator.Process"/> throws
    /// <see cref="CardRemovedException"/> until <see cref="ScHsmSimulator.Reinsert"/> (vpcd: the connection is dropped).</summary>
    Remove,
}

/// <summary>
/// A fault injected into the <paramref name="CommandNumber"/>-th command after a successful command with INS
/// <see cref="AfterIns"/> (default UNWRAP KEY, 74). It fires once.
/// </summary>
public sealed class SimulatedFault
{
    public byte AfterIns { get; set; } = 0x74;
    public int CommandNumber { get; set; } = 1;
    public FaultMode Mode { get; set; } = FaultMode.Error;
    public ushort StatusWord { get; set; } = 0x6581;

    /// <summary>Set once the fault fired.</summary>
    public bool Fired { get; internal set; }

    /// <summary>"after74:3:remove", "after74:1:error", "after74:2:error:6A84" (the --fault option).</summary>
    public static SimulatedFault Parse(string spec)
    {
        var parts = spec.Split(':');
        if (parts.Length < 2 || !parts[0].StartsWith("after", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException("--fault takes afterINS:N[:error[:SW]|:remove], e.g. after74:2:remove");
        var f = new SimulatedFault
        {
            AfterIns = Convert.ToByte(parts[0][5..], 16),
            CommandNumber = int.Parse(parts[1]),
        };
        if (parts.Length > 2) f.Mode = parts[2].Equals("remove", StringComparison.OrdinalIgnoreCase) ? FaultMode.Remove : FaultMode.Error;
        if (parts.Length > 3) f.StatusWord = Convert.ToUInt16(parts[3], 16);
        return f;
    }
}

/// <summary>The simulated card is not in the reader (a <see cref="FaultMode.Remove"/> fault fired).</summary>
public sealed class CardRemovedException : Exception
{
    public CardRemovedException() : base("The card was removed from the reader (injected fault).") { }
}
