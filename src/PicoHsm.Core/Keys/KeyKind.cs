namespace PicoHsm.Keys;

/// <summary>The kinds of key the module backs up. Names match what users type (-KeyType).</summary>
public enum KeyKind
{
    Unknown = 0,
    Rsa,
    Ec,
    Aes,
    GenericSecret,
}
