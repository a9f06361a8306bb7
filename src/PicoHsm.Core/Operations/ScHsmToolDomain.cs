using PicoHsm.Common;
using PicoHsm.Devices;

namespace PicoHsm.Operations;

/// <summary>
/// The SmartCard-HSM key domain that sc-hsm-tool shares go to, as Import-PicoDkek sees it before any password:
/// how many shares it takes and still needs, and so whether the files given are the whole set (the host can then
/// compute the DKEK and check its KCV before anything is sent) or part of it (the DKEK is known only to the card,
/// once its last share is in). Issue 14: the same-DKEK warning, and a correct partial import not called wrong.
/// </summary>
internal sealed class ScHsmToolDomain
{
    private ScHsmToolDomain(PicoDkek dkek, int keyDomain, int given)
    {
        Dkek = dkek;
        KeyDomain = keyDomain;
        Given = given;
    }

    public PicoDkek Dkek { get; }
    public int KeyDomain { get; }
    public int Given { get; }
    public int Total => Dkek.SharesTotal ?? 0;
    public int Outstanding => Dkek.SharesOutstanding ?? 0;
    public bool Complete => Dkek.Present;

    /// <summary>Fewer shares than the domain takes, or some are on the card already: the host cannot know the DKEK.</summary>
    public bool Partial => !Complete && Dkek.SharesTotal is not null && Given <= Outstanding && !(Outstanding == Total && Given == Total);

    /// <summary>These shares are the last ones the domain needs (the first ones were imported in an earlier call).</summary>
    public bool Completes => Partial && Given == Outstanding;

    /// <summary>The domain's state, or null when the card reports none for it (the import then says why it cannot go there).</summary>
    public static ScHsmToolDomain? Read(IDeviceBackend device, int keyDomain, int given) =>
        device.GetDkek().FirstOrDefault(d => d.KeyDomain == keyDomain) is { } d ? new ScHsmToolDomain(d, keyDomain, given) : null;

    /// <summary>
    /// What is known before any password: the expected DKEK already on the card (a warning, nothing changed: the
    /// state is returned), another DKEK complete there (refused), or an expectation the host cannot check because
    /// these files are not the whole set and not the last shares (refused, naming the fix). Null: go on.
    /// </summary>
    public static IReadOnlyList<PicoDkek>? BeforePasswords(ScHsmToolDomain d, string? expected, string token, IOperationHost host)
    {
        if (expected is null) return null;
        if (d.Complete && d.Dkek.KcvVerified)
        {
            if (d.Dkek.KeyCheckValue == expected)
            {
                host.Warning(AlreadyHolds(token, expected, d, afterPasswords: false));
                return new[] { d.Dkek };
            }
            throw new PicoHsmException(PicoErrorKind.ResourceExists, "OtherDkekPresent",
                $"Key domain {d.KeyDomain} of '{token}' already holds DKEK {d.Dkek.KeyCheckValue}, not the expected {expected}; no shares are outstanding. " +
                "Backups cannot move between DKEKs: use a card without a DKEK, or re-initialise this one (Initialize-PicoHsm, this erases its keys). Nothing was sent.", token);
        }
        if (d.Partial && !d.Completes)
            throw new PicoHsmException(PicoErrorKind.InvalidArgument, "KcvNotCheckable",
                $"Key domain {d.KeyDomain} of '{token}' takes {d.Total} sc-hsm-tool shares ({d.Outstanding} outstanding) and {d.Given} were given: the DKEK, and so its KCV, " +
                $"is known only from all of them, so -ExpectedKcv / -BackupPath cannot be checked with these alone. Give all {d.Total} share files in one call " +
                "(the KCV is then checked in the host before anything is sent), or import these without -ExpectedKcv / -BackupPath and give it with the last share, " +
                "when the KCV the card reports is checked. Nothing was sent.", token);
        return null;
    }

    public static string AlreadyHolds(string token, string kcv, ScHsmToolDomain d, bool afterPasswords) =>
        $"The token '{token}' already holds DKEK {kcv} in key domain {d.KeyDomain} (the DKEK these shares are of); nothing was changed" +
        (afterPasswords ? "." : " and no password was needed.");

    public static string PartialWarning(ScHsmToolDomain d, string token) =>
        (d.Completes
            ? $"These {d.Given} share(s) complete key domain {d.KeyDomain} of '{token}' with the {d.Total - d.Outstanding} already imported ({d.Outstanding} of {d.Total} shares outstanding)"
            : $"These {d.Given} share(s) go to key domain {d.KeyDomain} of '{token}', leaving {d.Outstanding - d.Given} of {d.Total} shares outstanding") +
        ": the DKEK is known only once its last share is in, so its KCV cannot be shown or checked here. Give -ExpectedKcv (or -BackupPath) with the last share " +
        "to have the card's KCV checked, or compare the KCV Get-PicoDkek then shows with the one the ceremony recorded.";

    /// <summary>After the last share: the KCV the card reports for the completed domain must be the expected one.</summary>
    public static void CheckCompleted(PicoDkek after, string expected, string? expectedFrom, ScHsmToolDomain d, string token)
    {
        if (after.KeyCheckValue == expected) return;
        throw new PicoHsmException(PicoErrorKind.InvalidData, "KcvMismatch",
            $"Key domain {d.KeyDomain} of '{token}' is now complete with DKEK {after.KeyCheckValue ?? "(KCV not reported)"}, not the expected {expected}" +
            $"{(expectedFrom is null ? "" : $" (of '{expectedFrom}')")}: the shares imported earlier and these are not all shares of that DKEK (the host could not check them, " +
            $"as the earlier ones were sent in another call). No backup of DKEK {expected} opens on this card: re-initialise it (Initialize-PicoHsm, this erases its keys) " +
            $"and import all {d.Total} share files in one call with -ExpectedKcv, which checks them before anything is sent.", token);
    }
}
