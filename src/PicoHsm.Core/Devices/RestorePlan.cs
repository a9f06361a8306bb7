using PicoHsm.Common;
using PicoHsm.Keys;

namespace PicoHsm.Devices;

/// <summary>What a restore of one backup would do on a device.</summary>
public enum RestoreAction
{
    /// <summary>The target is free: a new key is made there.</summary>
    Create,

    /// <summary>The target holds another key and -Force was given: that key is replaced (named in <see cref="RestorePlan.Replaces"/>).</summary>
    Replace,

    /// <summary>The very key of the backup is already there (same id and public key, or for a secret key the same
    /// wrapped-under-DKEK proof): nothing to do, and not an error, so a rerun after a crash completes.</summary>
    AlreadyPresent,

    /// <summary>One or more checks refuse the restore (<see cref="RestorePlan.Refusals"/>); nothing is changed.</summary>
    Refused,
}

/// <summary>
/// The one pre-flight of a restore: everything <see cref="IDeviceBackend.Restore"/> would check, found
/// without changing anything. <c>-WhatIf</c> and <c>Test-PicoKeyBackup -Session</c> report exactly these
/// refusals; <see cref="IDeviceBackend.Restore"/> plans again itself (under the device's lock) and acts
/// on that plan, so what a dry run said is what the real run does.
/// </summary>
/// <param name="Action">What the restore would do.</param>
/// <param name="TargetId">The id (lower-case hex) the restored key would get.</param>
/// <param name="TargetLabel">The label the restored key would get.</param>
/// <param name="Target">Where, in words: "id 01 on 'token'", "key reference 3 on 'card'".</param>
/// <param name="Replaces">With <see cref="RestoreAction.Replace"/>: the key replaced, in words (id, label, key reference).</param>
/// <param name="Existing">With <see cref="RestoreAction.AlreadyPresent"/>: the key already on the device.</param>
/// <param name="Refusals">With <see cref="RestoreAction.Refused"/>: every reason, each a typed error with the fix in its message.</param>
public sealed record RestorePlan(
    RestoreAction Action,
    string TargetId,
    string? TargetLabel,
    string Target,
    string? Replaces = null,
    PicoKey? Existing = null,
    IReadOnlyList<PicoHsmException>? Refusals = null)
{
    public IReadOnlyList<PicoHsmException> Refusals { get; init; } = Refusals ?? Array.Empty<PicoHsmException>();

    public bool IsRefused => Action == RestoreAction.Refused;

    /// <summary>
    /// With <see cref="RestoreAction.AlreadyPresent"/>: what an interrupted earlier restore left out and this one
    /// adds beside the key ("its public key", "its certificate"); null when the key is complete.
    /// </summary>
    public string? Completes { get; init; }

    /// <summary>For ShouldProcess and -WhatIf: what would happen, in one sentence.</summary>
    public string Describe() => Action switch
    {
        RestoreAction.Create => $"restore as {Target}",
        RestoreAction.Replace => $"restore as {Target}, replacing {Replaces}",
        RestoreAction.AlreadyPresent => Completes is null
            ? $"nothing to do: the key is already {Target}"
            : $"the key is already {Target}; adding {Completes}, which an interrupted restore left out",
        _ => $"refused: {string.Join(" ", Refusals.Select(r => r.Message))}",
    };

    public static RestorePlan Refuse(string targetId, string? targetLabel, string target, params PicoHsmException[] refusals) =>
        new(RestoreAction.Refused, targetId, targetLabel, target, Refusals: refusals);
}
