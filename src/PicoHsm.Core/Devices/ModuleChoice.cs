namespace PicoHsm.Devices;

/// <summary>A PKCS#11 module path and why it was chosen ("given with -ModulePath", "from $PICOHSM_PKCS11_MODULE", the OpenSC default...).</summary>
public sealed record ModuleChoice(string Path, string Reason)
{
    public override string ToString() => $"'{Path}' ({Reason})";
}
