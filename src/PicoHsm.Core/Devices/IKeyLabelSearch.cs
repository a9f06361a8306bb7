using PicoHsm.Keys;

namespace PicoHsm.Devices;

/// <summary>
/// Devices that can find keys by their exact label without reading every object: on a generic PKCS#11
/// token one C_FindObjects with CKA_LABEL (the token compares labels byte for byte), then the public
/// key and certificate of each key found by its id. Get-PicoKey -Label without wildcards asks this
/// first, so its first listing on a token of thousands of keys reads a handful of objects.
/// </summary>
public interface IKeyLabelSearch
{
    /// <summary>The keys whose label is exactly <paramref name="label"/> (ordinal), as <see cref="IDeviceBackend.ListKeys"/> describes them; never the DKEK.</summary>
    List<PicoKey> ListKeysByLabel(string label);
}
