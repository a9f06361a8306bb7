using System.Management.Automation;
using System.Security;
using PicoHsm.Common;
using PicoHsm.Devices.ScHsm.Shares;

namespace PicoHsm.Module.Commands;

/// <summary>
/// One custodian's password share of an sc-hsm-tool threshold share file: the share id (x), the value (y) as a
/// SecureString holding the hex sc-hsm-tool prints ("3f:3e:fa:…"), and the public prime. Update-PicoDkekShare
/// writes these; Import-PicoDkek and Update-PicoDkekShare take them with -PasswordShare. A SecureString holding
/// "id:value" converts to one, so no share ever travels as a plain string.
/// </summary>
public sealed class PicoPasswordShare
{
    /// <summary>From a SecureString holding "id:value", e.g. "1:3f:3e:fa:a8:51:77:40:0b" (as read with Read-Host -AsSecureString).</summary>
    public PicoPasswordShare(SecureString idAndValue)
    {
        ArgumentNullException.ThrowIfNull(idAndValue);
        char[] chars = SharePasswords.ToChars(idAndValue);
        try
        {
            int colon = Array.IndexOf(chars, ':');
            if (colon < 1 || !int.TryParse(chars.AsSpan(0, colon), out int id) || id < 1)
                throw new PicoHsmException(PicoErrorKind.InvalidArgument, "PasswordShareFormat",
                    "A password share is not in the form \"<share id>:<value>\" (its value is not shown), e.g. \"1:3f:3e:fa:…\". Type the share id, a colon, then the value as it was shown.", null);
            Id = id;
            Value = new SecureString();
            for (int i = colon + 1; i < chars.Length; i++) Value.AppendChar(chars[i]);
            Value.MakeReadOnly();
        }
        finally
        {
            Array.Clear(chars);
        }
    }

    public PicoPasswordShare(int id, SecureString value, string? prime = null, int? threshold = null, string? shareFile = null)
    {
        Id = id;
        Value = value;
        Prime = prime;
        Threshold = threshold;
        ShareFile = shareFile;
    }

    /// <summary>The share id (sc-hsm-tool's "Share ID").</summary>
    public int Id { get; }
    /// <summary>The share value, hex with colons (sc-hsm-tool's "Share value"); secret.</summary>
    public SecureString Value { get; }
    /// <summary>The public prime every custodian of the file was shown (hex with colons); null when not known.</summary>
    public string? Prime { get; }
    /// <summary>How many password shares open the file; null when not known.</summary>
    public int? Threshold { get; }
    /// <summary>The share file this password share opens; null when not known.</summary>
    public string? ShareFile { get; }

    public override string ToString() => $"password share {Id}";

    /// <summary>The core's form (the value's bytes; the caller zeroes them).</summary>
    internal ScHsmPasswordShare ToCore()
    {
        char[] chars = SharePasswords.ToChars(Value);
        try
        {
            return new ScHsmPasswordShare(Id, ScHsmPasswordShares.ParseHex(chars));
        }
        catch (FormatException ex)
        {
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "PasswordShareFormat",
                $"Password share {Id} is not hex bytes such as 3f:3e:fa:a8 (its value is not shown). Type it again as it was shown.", null, ex);
        }
        finally
        {
            Array.Clear(chars);
        }
    }

    /// <summary>
    /// The 8-byte password of a threshold file from -PasswordShare, or asked per custodian at the prompt
    /// ("id:value", Enter alone when all are in). The caller zeroes the result.
    /// </summary>
    internal static byte[] RebuildPassword(PicoCmdletBase cmdlet, string prime, PicoPasswordShare[]? given, string parameterName)
    {
        var shares = given?.ToList() ?? new List<PicoPasswordShare>();
        if (shares.Count == 0)
        {
            for (int n = 1; n <= ScHsmShareRotation.MaxPasswordShares; n++)
            {
                var s = cmdlet.PromptSecretInternal($"Custodian {n}: your password share as <share id>:<value> (Enter alone when all are in)");
                if (s is null && n == 1)
                    throw new PicoHsmException(PicoErrorKind.InvalidArgument, "PasswordSharesMissing",
                        $"The custodians' password shares are needed and this session cannot prompt. Pass them with {parameterName} (SecureStrings holding \"<id>:<value>\", or the objects Update-PicoDkekShare wrote).", null);
                if (s is null || s.Length == 0) break;
                shares.Add(new PicoPasswordShare(s));
            }
        }
        byte[] primeBytes;
        try { primeBytes = ScHsmPasswordShares.ParseHex(prime); }
        catch (FormatException ex)
        {
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "PasswordSharePrimeFormat",
                $"The prime is not hex bytes such as c0:1b:aa:f3:4b:97:a7:03: {ex.Message} Give it as the custodians were shown it.", prime, ex);
        }
        var core = shares.Select(s => s.ToCore()).ToList();
        try
        {
            return ScHsmShareRotation.PasswordFromShares(primeBytes, core);
        }
        finally
        {
            foreach (var c in core) Array.Clear(c.Value);
        }
    }
}
