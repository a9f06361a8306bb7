using System.Management.Automation;
using PicoHsm.Devices;
using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

/// <summary>
/// Removes keys from the device with everything that describes them: on a generic PKCS#11 token the private or
/// secret key, its public key and certificate; on a SmartCard-HSM / Pico HSM the key, its PRKD and its
/// certificate (orphans left by an interrupted restore too). Never the DKEK, never the card's device key.
/// It cannot be undone: ConfirmImpact High asks first unless -Confirm:$false.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "PicoKey", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = "Key")]
[OutputType(typeof(void))]
public sealed class RemovePicoKeyCommand : PicoSessionCmdletBase
{
    /// <summary>Keys from Get-PicoKey.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = "Key", Position = 0)]
    [ValidateNotNull]
    public PicoKey[]? Key { get; set; }

    /// <summary>CKA_ID in hex.</summary>
    [Parameter(Mandatory = true, ParameterSetName = "Id")]
    [ArgumentCompleter(typeof(KeyIdCompleter))]
    public string[]? Id { get; set; }

    /// <summary>SmartCard-HSM / Pico HSM: the key reference (1-254), for example of an orphan.</summary>
    [Parameter(Mandatory = true, ParameterSetName = "KeyReference")]
    [ValidateRange(1, 254)]
    public int[]? KeyReference { get; set; }

    private readonly List<PicoKey> _keys = new();

    protected override void ProcessRecordWithSession(PicoHsmSession session)
    {
        if (Key is not null) _keys.AddRange(Key);
    }

    protected override void EndProcessingWithSession(PicoHsmSession session)
    {
        if (session.Device is not IKeyRemover remover)
        {
            ThrowTerminatingError(NewError("NotSupported", ErrorCategory.NotImplemented,
                $"The device of session {session.Id} ('{session.TokenLabel}') cannot remove keys through this module. Use the device's own tool.", session));
            return;
        }
        var keys = ParameterSetName == "Key" ? _keys : Select(session);
        foreach (var key in keys)
        {
            ThrowIfStopping();
            string where = key.KeyReference is int r ? $" (key reference {r})" : "";
            string target = $"key {key.Id}{(string.IsNullOrEmpty(key.Label) ? "" : $" '{key.Label}'")}{where}{(key.IsOrphan ? ", an orphan" : "")} on '{session.TokenLabel}'";
            if (!ShouldProcess(target, "Remove the key with its public key / PRKD and certificate (this cannot be undone)")) continue;
            TryRun(() => WriteVerbose("Removed " + remover.RemoveKey(key)), key);
        }
    }

    /// <summary>By -Id or -KeyReference. An id that is not listed is still passed on, so the device names what it is (the DKEK: refused).</summary>
    private List<PicoKey> Select(PicoHsmSession session)
    {
        var all = session.Device.ListKeys();
        var found = new List<PicoKey>();
        foreach (string raw in Id ?? Array.Empty<string>())
        {
            string id = GetPicoKeyCommand.NormalizeId(raw);
            var match = all.Where(k => k.Id == id).ToList();
            found.AddRange(match.Count > 0 ? match : new[] { new PicoKey { Id = id, Class = "PrivateKey", TokenLabel = session.TokenLabel } });
        }
        foreach (int r in KeyReference ?? Array.Empty<int>())
        {
            var match = all.FirstOrDefault(k => k.KeyReference == r);
            if (match is null)
                WriteError(NewError("KeyNotFound", ErrorCategory.ObjectNotFound,
                    $"No key with reference {r} on '{session.TokenLabel}'. List the keys with Get-PicoKey.", r));
            else found.Add(match);
        }
        return found;
    }
}
