using System.Management.Automation;
using System.Security;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Operations;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

/// <summary>
/// INITIALIZE DEVICE on a SmartCard-HSM / Pico HSM: wipes every key and sets the PINs and the
/// number of DKEK shares. High impact: the confirmation names what will be lost.
/// </summary>
[Cmdlet(VerbsData.Initialize, "PicoHsm", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(PicoDkek))]
public sealed class InitializePicoHsmCommand : PicoCmdletBase
{
    /// <summary>A session to the card; else -Reader; else the default session.</summary>
    [Parameter]
    public PicoHsmSession? Session { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ReaderCompleter))]
    public string? Reader { get; set; }

    /// <summary>The SO-PIN: 16 hex digits (8 bytes), as sc-hsm-tool takes it.</summary>
    [Parameter(Mandatory = true)]
    public SecureString SoPin { get; set; } = null!;

    /// <summary>The new user PIN (6 to 16 characters).</summary>
    [Parameter(Mandatory = true)]
    public SecureString Pin { get; set; } = null!;

    /// <summary>DKEK shares to announce: 1 for a PicoHsm n-of-m DKEK (imported whole), k for k sc-hsm-tool shares. 0: a random DKEK that can never be backed up.</summary>
    [Parameter(Mandatory = true)]
    [ValidateRange(0, 255)]
    public int DkekShareCount { get; set; }

    /// <summary>Pico HSM: the number of key domains.</summary>
    [Parameter]
    [ValidateRange(1, 255)]
    public int? KeyDomainCount { get; set; }

    [Parameter]
    [ValidateRange(1, 10)]
    public int RetryCounter { get; set; } = 3;

    protected override void EndProcessingCore()
    {
        if (DkekShareCount == 0)
            WriteWarning("-DkekShareCount 0 makes the device create a random DKEK that never leaves it: no key of this device can ever be backed up or restored elsewhere.");
        PicoHsmSession? temporary = null;
        var session = Session ?? (Reader is null ? SessionRegistry.Current.Default : null);
        if (session is null && Reader is not null)
            session = temporary = Run(() => SessionConnector.OpenCardOnly(Reader), Reader);
        if (session is null)
            ThrowTerminatingError(NewError("NoCard", ErrorCategory.ConnectionError,
                "Name the card: -Reader '<reader>' (see Get-PicoHsmToken or tab completion), or -Session of a SmartCard-HSM session.", null));
        try
        {
            if (session!.Device is not IScHsmDevice card)
            {
                ThrowTerminatingError(NewError("NotAScHsm", ErrorCategory.InvalidOperation,
                    $"'{session.TokenLabel}' is not a SmartCard-HSM / Pico HSM session; only those are initialised with this cmdlet.", session));
                return;
            }
            string reader = card.ReaderName;
            string loss = DescribeLoss(session.Device);
            if (!ShouldProcess($"the card in '{reader}'", $"Initialise (wipe) the device: {loss}; announce {DkekShareCount} DKEK share(s)"))
                return;

            byte[] so = SecureStringToUtf8(SoPin);
            byte[] pin = SecureStringToUtf8(Pin);
            byte[] soBytes = Array.Empty<byte>();
            try
            {
                soBytes = HexToBytes(so) ?? Array.Empty<byte>();
                PinRules.ValidateSoPin(soBytes);
                PinRules.ValidateUserPin(pin);
                Run(() => { card.Initialize(soBytes, pin, DkekShareCount, KeyDomainCount, (byte)RetryCounter); return 0; }, reader);
            }
            finally
            {
                Array.Clear(so);
                Array.Clear(pin);
                Array.Clear(soBytes);
            }
            var dkek = Run(() => session.Device.GetDkek());
            // Every session on the wiped card is closed (listed IsOpen False until Disconnect-PicoHsm), and the
            // PKCS#11 modules are finalised once no session uses them, so the next connect reads the card afresh.
            SessionRegistry.Current.CardChanged(reader);
            WriteWarning($"The card in '{reader}' was initialised. Sessions opened on it before were closed: connect again with Connect-PicoHsm.");
            foreach (var d in dkek) WriteObject(d);
        }
        finally
        {
            temporary?.Dispose();
        }
    }

    /// <summary>Hex digits to bytes without a string (strings cannot be zeroed); null when not hex.</summary>
    private static byte[]? HexToBytes(byte[] ascii)
    {
        if (ascii.Length % 2 != 0) return null;
        var result = new byte[ascii.Length / 2];
        for (int i = 0; i < ascii.Length; i++)
        {
            int v = ascii[i] switch { >= (byte)'0' and <= (byte)'9' => ascii[i] - '0', >= (byte)'a' and <= (byte)'f' => ascii[i] - 'a' + 10, >= (byte)'A' and <= (byte)'F' => ascii[i] - 'A' + 10, _ => -1 };
            if (v < 0) { Array.Clear(result); return null; }
            result[i / 2] = (byte)(result[i / 2] << 4 | v);
        }
        return result;
    }

    private static string DescribeLoss(IDeviceBackend card)
    {
        try
        {
            var keys = card.ListKeys();
            var dkek = card.GetDkek().FirstOrDefault(d => d.Present);
            string keyText = keys.Count == 0 ? "no keys" : $"{keys.Count} key(s) ({string.Join(", ", keys.Select(k => $"{k.Id} '{k.Label}'"))})";
            return dkek?.KeyCheckValue is { } kcv ? $"{keyText} and DKEK {kcv} will be lost" : $"{keyText} will be lost";
        }
        catch (Exception ex) when (ErrorTranslation.Translate(ex) is not null)
        {
            return "every key on it will be lost (the card could not be listed first)";
        }
    }
}
