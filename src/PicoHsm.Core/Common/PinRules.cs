namespace PicoHsm.Common;

/// <summary>
/// The PIN rules, in one place. A SmartCard-HSM / Pico HSM user PIN is 6 to 16 bytes (the card
/// refuses shorter ones at INITIALIZE); its SO-PIN is 8 bytes, written as 16 hex digits.
/// </summary>
public static class PinRules
{
    public const int UserPinMinLength = 6;
    public const int UserPinMaxLength = 16;
    public const int SoPinLength = 8;

    public static bool IsValidUserPin(ReadOnlySpan<byte> pin) => pin.Length is >= UserPinMinLength and <= UserPinMaxLength;

    /// <exception cref="PicoHsmException">Reason BadPin: the PIN is too short or too long.</exception>
    public static void ValidateUserPin(ReadOnlySpan<byte> pin)
    {
        if (!IsValidUserPin(pin))
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "BadPin",
                $"The user PIN is {UserPinMinLength} to {UserPinMaxLength} characters; this one has {pin.Length}. Choose a PIN of that length.");
    }

    /// <exception cref="PicoHsmException">Reason BadSoPin: not 8 bytes.</exception>
    public static void ValidateSoPin(ReadOnlySpan<byte> soPin)
    {
        if (soPin.Length != SoPinLength)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "BadSoPin",
                "The SO-PIN is 16 hex digits (8 bytes), e.g. as passed to sc-hsm-tool --so-pin.");
    }
}
