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
/// A fault injected into the <see cref="CommandNumber"/>-th command after the <see cref="AfterCount"/>-th successful
/// command with INS <see cref="AfterIns"/> (default UNWRAP KEY, 74; WRAP KEY, 72, interrupts a backup after that
/// many keys). It fires once.
/// </summary>
public sealed class SimulatedFault
{
    public byte AfterIns { get; set; } = 0x74;
    /// <summary>Which successful <see cref="AfterIns"/> starts the count (1: the first).</summary>
    public int AfterCount { get; set; } = 1;
    public int CommandNumber { get; set; } = 1;
    public FaultMode Mode { get; set; } = FaultMode.Error;
    public ushort StatusWord { get; set; } = 0x6581;

    /// <summary>Set once the fault fired.</summary>
    public bool Fired { get; internal set; }

    /// <summary>"after74:3:remove", "after74:1:error", "after74:2:error:6A84", "after72x3:1:remove" (the first command
    /// after the 3rd successful WRAP KEY) (the --fault option).</summary>
    public static SimulatedFault Parse(string spec)
    {
        var parts = spec.Split(':');
        if (parts.Length < 2 || !parts[0].StartsWith("after", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException("--fault takes afterINS[xK]:N[:error[:SW]|:remove], e.g. after74:2:remove or after72x3:1:remove");
        var ins = parts[0][5..].Split('x', 'X');
        var f = new SimulatedFault
        {
            AfterIns = Convert.ToByte(ins[0], 16),
            AfterCount = ins.Length > 1 ? int.Parse(ins[1]) : 1,
            CommandNumber = int.Parse(parts[1]),
        };
        if (f.AfterCount < 1 || f.CommandNumber < 1) throw new ArgumentException("--fault: K and N count from 1");
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
