using System.Management.Automation;
using PicoHsm.Common;
using PicoHsm.Keys;
using PicoHsm.Session;

namespace PicoHsm.Module.Commands;

[Cmdlet(VerbsCommon.Get, "PicoKey")]
[OutputType(typeof(PicoKey))]
public sealed class GetPicoKeyCommand : PicoSessionCmdletBase
{
    /// <summary>CKA_ID in hex.</summary>
    [Parameter(Position = 0)]
    [ArgumentCompleter(typeof(KeyIdCompleter))]
    public string[]? Id { get; set; }

    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(KeyLabelCompleter))]
    public string? Label { get; set; }

    [Parameter]
    public KeyKind[]? KeyType { get; set; }

    /// <summary>Public key attributes are listed without a login.</summary>
    protected override bool RequiresLogin => false;

    protected override void EndProcessingWithSession(PicoHsmSession session)
    {
        // "Get-PicoKey web" binds web to -Id (position 0); say so instead of looking for id 0web.
        foreach (string id in Id ?? Array.Empty<string>())
            if (!IsHexId(id))
                ThrowTerminatingError(NewError("IdNotHex", ErrorCategory.InvalidArgument,
                    $"'{id}' is not a key id: ids are hex (for example 01a1). To choose keys by label, use -Label '{id}'.", id));
        // An exact label is asked of the token (one search, not every object read); the listing's
        // case-insensitive match is the fallback when no key has exactly that label.
        List<PicoKey>? keys = null;
        if (Label is not null && !WildcardPattern.ContainsWildcardCharacters(Label) && session.Device is PicoHsm.Devices.IKeyLabelSearch search)
        {
            keys = search.ListKeysByLabel(Label);
            if (keys.Count == 0) keys = null;
        }
        keys ??= session.Device.ListKeys();
        var ids = Id?.Select(NormalizeId).ToHashSet(StringComparer.Ordinal);
        var pattern = Label is null ? null : WildcardPattern.Get(Label, WildcardOptions.IgnoreCase);
        int written = 0;
        foreach (var k in keys)
        {
            if (ids is not null && !ids.Contains(k.Id)) continue;
            if (pattern is not null && !pattern.IsMatch(k.Label ?? "")) continue;
            if (KeyType is not null && Array.IndexOf(KeyType, k.KeyType) < 0) continue;
            WriteObject(k);
            written++;
        }
        if (written == 0 && ids is not null && !(Label is not null && WildcardPattern.ContainsWildcardCharacters(Label)))
        {
            // The DKEK is not in the key catalogue; an id that is the DKEK's says so.
            PicoHsm.Devices.PicoDkek? dkek = null;
            try { if (session.IsLoggedIn) dkek = session.Device.GetDkek().FirstOrDefault(d => d.Present && d.Id is not null && ids.Contains(d.Id)); }
            catch (PicoHsmException) { } // the message is only the better for it; the error is KeyNotFound either way
            string why = dkek is null ? "List the keys with Get-PicoKey."
                : $"Id {dkek.Id} is the token's DKEK (KCV {dkek.KeyCheckValue}), which Get-PicoDkek shows; keys are never restored or generated there.";
            WriteError(NewError("KeyNotFound", ErrorCategory.ObjectNotFound,
                $"No key with id {string.Join(", ", ids)} on '{session.TokenLabel}'. {why}", string.Join(",", ids)));
        }
    }

    private static bool IsHexId(string id)
    {
        string hex = id.Replace(":", "").Replace(" ", "").Replace("0x", "", StringComparison.OrdinalIgnoreCase);
        return hex.Length > 0 && hex.All(Uri.IsHexDigit);
    }

    internal static string NormalizeId(string id)
    {
        string hex = id.Replace(":", "").Replace(" ", "").Replace("0x", "", StringComparison.OrdinalIgnoreCase).ToLowerInvariant();
        if (hex.Length % 2 == 1) hex = "0" + hex;
        return hex;
    }
}
