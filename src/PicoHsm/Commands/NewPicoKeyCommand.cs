using System.Management.Automation;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

/// <summary>Generates a key on the token (exportable under the DKEK unless -NonExportable).</summary>
[Cmdlet(VerbsCommon.New, "PicoKey", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(PicoKey))]
public sealed class NewPicoKeyCommand : PicoSessionCmdletBase
{
    [Parameter(Mandatory = true, Position = 0)]
    public KeyKind KeyType { get; set; }

    /// <summary>Bits: RSA 2048/3072/4096, AES 128/192/256. Ignored for EC (the curve decides).</summary>
    [Parameter]
    [ValidateSet("128", "192", "256", "2048", "3072", "4096")]
    public int Size { get; set; }

    [Parameter]
    [ValidateSet("P-256", "P-384", "P-521", "secp256k1", "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1")]
    public string Curve { get; set; } = "P-256";

    [Parameter(Mandatory = true)]
    [ValidatePattern("^([0-9a-fA-F]{2})+$")]
    public string Id { get; set; } = "";

    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string Label { get; set; } = "";

    /// <summary>Make the key non-extractable: it can then never be backed up.</summary>
    [Parameter]
    public SwitchParameter NonExportable { get; set; }

    protected override void EndProcessingWithSession(PicoHsmSession session)
    {
        if (session.Device is not IKeyGenerator generator)
        {
            ThrowTerminatingError(NewError("NotSupported", ErrorCategory.NotImplemented,
                $"'{session.TokenLabel}' is a {session.DeviceFamily}; generate its keys with the device's own tools (pkcs11-tool --keypairgen), then back them up with Export-PicoWrappedKey.", session));
            return;
        }
        int size = Size != 0 ? Size : KeyType switch { KeyKind.Rsa => 2048, KeyKind.Aes => 256, KeyKind.GenericSecret => 256, _ => 0 };
        string what = KeyType == KeyKind.Ec ? $"EC {Curve}" : $"{KeyType}-{size}";
        // The pre-flight before ShouldProcess: -WhatIf reports exactly the refusals of the real run.
        byte[] id = Convert.FromHexString(Id);
        var refusals = Run(() => generator.CheckGenerate(KeyType, size, KeyType == KeyKind.Ec ? Curve : null, id), Id);
        if (refusals.Count > 0)
        {
            foreach (var r in refusals) WriteError(r, Id);
            return;
        }
        if (!ShouldProcess($"{session.TokenLabel}", $"Generate {what} key id {Id} '{Label}'")) return;
        WriteObject(generator.GenerateKey(KeyType, size, KeyType == KeyKind.Ec ? Curve : null,
            id, Label, extractable: !NonExportable));
    }
}
