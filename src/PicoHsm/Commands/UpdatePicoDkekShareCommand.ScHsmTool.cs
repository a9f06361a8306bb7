using System.Management.Automation;
using System.Security;
using System.Security.Cryptography;
using PicoHsm.Common;
using PicoHsm.Devices;
using PicoHsm.Devices.ScHsm.Shares;

namespace PicoHsm.Module.Commands;

/// <summary>Update-PicoDkekShare on an sc-hsm-tool share file: a new password, or new password shares.</summary>
public sealed partial class UpdatePicoDkekShareCommand
{
    /// <summary>The old file is a threshold file: the prime its custodians were shown (with -PasswordShare).</summary>
    [Parameter]
    public string? PasswordSharePrime { get; set; }

    /// <summary>The old file's password shares (at least its threshold); asked per custodian when not given.</summary>
    [Parameter]
    public PicoPasswordShare[]? PasswordShare { get; set; }

    /// <summary>sc-hsm-tool file: split a fresh random password into this many password shares (3 to 9) ...</summary>
    [Parameter]
    [ValidateRange(3, 9)]
    public int PasswordShareTotal { get; set; }

    /// <summary>... any this many of which open the file (2 or more).</summary>
    [Parameter]
    [ValidateRange(2, 9)]
    public int PasswordShareThreshold { get; set; }

    private static bool IsScHsmToolFile(string path)
    {
        try { return ScHsmDkekShares.LooksLikeShareFile(File.ReadAllBytes(path)); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return false; }
    }

    private void UpdateScHsmToolShare()
    {
        if (_paths.Count != 1)
            ThrowTerminatingError(NewError("OneScHsmToolFile", ErrorCategory.InvalidArgument,
                $"{_paths.Count} sc-hsm-tool share files were given; each belongs to one custodian (or one group of password-share holders). Update one file per call.", null));
        bool toThreshold = PasswordShareTotal != 0 || PasswordShareThreshold != 0;
        if (toThreshold && (PasswordShareTotal == 0 || PasswordShareThreshold == 0 || PasswordShareThreshold > PasswordShareTotal))
            ThrowTerminatingError(NewError("PasswordShareCounts", ErrorCategory.InvalidArgument,
                "Give both -PasswordShareThreshold and -PasswordShareTotal, the threshold no larger than the total (e.g. -PasswordShareThreshold 3 -PasswordShareTotal 5).", null));
        if (toThreshold && NewSharePassword is not null)
            ThrowTerminatingError(NewError("NewPasswordOrShares", ErrorCategory.InvalidArgument,
                "-NewSharePassword gives the file one new password; -PasswordShareThreshold/-PasswordShareTotal give it new password shares. Use one of them.", null));
        if (ShareCount != 0 || Threshold != 0)
            ThrowTerminatingError(NewError("ScHsmToolIsOneFile", ErrorCategory.InvalidArgument,
                "-ShareCount and -Threshold re-split PicoHsm share files; an sc-hsm-tool file keeps its one DKEK share. For password shares use -PasswordShareThreshold and -PasswordShareTotal.", null));

        string source = _paths[0];
        string dir = SessionState.Path.GetUnresolvedProviderPathFromPSPath(OutputDirectory);
        string target = System.IO.Path.Combine(dir, System.IO.Path.GetFileName(source));
        if (string.Equals(System.IO.Path.GetFullPath(target), System.IO.Path.GetFullPath(source), StringComparison.Ordinal))
            ThrowTerminatingError(NewError("WouldOverwriteInput", ErrorCategory.InvalidArgument,
                $"The new file '{target}' would replace the file being read. Choose another -OutputDirectory.", target));
        if (!Force && File.Exists(target))
            ThrowTerminatingError(NewError("ShareFileExists", ErrorCategory.ResourceExists,
                $"'{target}' already exists. Move it away, choose another -OutputDirectory, or use -Force.", target));
        string what = toThreshold ? $"{PasswordShareThreshold}-of-{PasswordShareTotal} new password shares" : "a new password";
        if (!ShouldProcess(target, $"Write the DKEK share of '{System.IO.Path.GetFileName(source)}' again under {what}"))
            return;

        byte[] oldFile = File.ReadAllBytes(source);
        byte[] oldPassword = OldPassword(source);
        ScHsmRotatedShareFile rotated;
        var progress = new ProgressRecord(1, "Update-PicoDkekShare", "Opening and writing the share file (10,000,000 MD5 rounds, three times)");
        WriteProgress(progress);
        try
        {
            if (toThreshold)
                rotated = Run(() => ScHsmShareRotation.WithPasswordShares(oldFile, oldPassword, PasswordShareThreshold, PasswordShareTotal), source);
            else
            {
                using var fresh = Run(() => SharePasswords.Get(this, NewSharePassword, [$"the new password of {System.IO.Path.GetFileName(target)}"], confirm: true, "-NewSharePassword"));
                if (!Dkek.DkekPasswordPolicy.TryValidate(fresh.Values[0], out string? problem))
                    ThrowTerminatingError(NewError("WeakPassword", ErrorCategory.InvalidArgument, $"The new password: {problem}", target));
                byte[] pw = System.Text.Encoding.UTF8.GetBytes(fresh.Values[0]);
                try { rotated = Run(() => ScHsmShareRotation.WithPassword(oldFile, oldPassword, pw), source); }
                finally { CryptographicOperations.ZeroMemory(pw); }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(oldPassword);
            progress.RecordType = ProgressRecordType.Completed;
            WriteProgress(progress);
        }

        Directory.CreateDirectory(dir);
        Run(() => { AtomicFile.WriteAllBytes(target, rotated.File, Force); return 0; }, target);
        WriteWarning($"'{source}' still opens with its old password (or old password shares) until every copy of it is destroyed; the DKEK share inside is the same. Have the leaving custodian destroy theirs.");
        if (rotated.PasswordShares is { } split)
        {
            try { ShowPasswordShares(split, target); }
            finally { foreach (var s in split.Shares) Array.Clear(s.Value); }
        }
        WriteObject(new PicoDkek
        {
            Present = false, ShareFiles = [target], DeviceFamily = null,
            Threshold = rotated.PasswordShares?.Threshold, ShareCount = rotated.PasswordShares?.Shares.Count,
            Status = $"sc-hsm-tool share written under {what}; DKEK share unchanged (share KCV {rotated.ShareKcv})",
        });
    }

    /// <summary>The old file's password: the rebuilt 8 bytes of a threshold file, else the typed password's UTF-8 bytes.</summary>
    private byte[] OldPassword(string source)
    {
        if (PasswordSharePrime is not null)
            return Run(() => PicoPasswordShare.RebuildPassword(this, PasswordSharePrime, PasswordShare, "-PasswordShare"));
        if (PasswordShare is not null)
            ThrowTerminatingError(NewError("PasswordSharePrimeMissing", ErrorCategory.InvalidArgument,
                "-PasswordShare needs -PasswordSharePrime, the prime the custodians were shown with their shares.", null));
        using var old = Run(() => SharePasswords.Get(this, SharePassword, [$"the current password of {System.IO.Path.GetFileName(source)}"], confirm: false, "-SharePassword"));
        return System.Text.Encoding.UTF8.GetBytes(old.Values[0]);
    }

    /// <summary>
    /// Each custodian's share the way sc-hsm-tool shows it (one screen per custodian: prime, share id, share
    /// value), confirmed by typing the value back; and written to the pipeline as objects holding SecureStrings,
    /// so a script can hand them on without a plain string.
    /// </summary>
    private void ShowPasswordShares(ScHsmPasswordSplit split, string target)
    {
        int total = split.Shares.Count;
        bool interactive = CanPrompt();
        foreach (var share in split.Shares)
        {
            var value = new SecureString();
            foreach (char c in share.ValueText) value.AppendChar(c);
            value.MakeReadOnly();
            while (interactive)
            {
                Host.UI.Write("\u001b[2J\u001b[H");
                Host.UI.Write($"Press <enter> to display key share {share.Id} of {total}");
                Host.UI.ReadLine();
                Host.UI.Write("\u001b[2J\u001b[H");
                Host.UI.WriteLine($"Share {share.Id} of {total}{Environment.NewLine}");
                Host.UI.WriteLine($"Prime       : {split.PrimeText}");
                Host.UI.WriteLine($"Share ID    : {share.Id}");
                Host.UI.WriteLine($"Share value : {share.ValueText}");
                Host.UI.Write($"{Environment.NewLine}{Environment.NewLine}Please note ALL values above and press <enter> when finished");
                Host.UI.ReadLine();
                Host.UI.Write("\u001b[2J\u001b[H");
                var typed = PromptSecret($"Custodian {share.Id}: type your share value back to confirm you noted it");
                if (typed is null) break;
                char[] back = SharePasswords.ToChars(typed);
                // Compared without building a string of the secret: hex digits only, case-insensitive.
                char[] typedDigits = back.Where(Uri.IsHexDigit).Select(char.ToLowerInvariant).ToArray();
                bool same = typedDigits.AsSpan().SequenceEqual(share.ValueText.Where(Uri.IsHexDigit).ToArray());
                Array.Clear(back);
                Array.Clear(typedDigits);
                if (same) break;
                Host.UI.WriteWarningLine("That is not the share value shown; it is shown again.");
            }
            WriteObject(new PicoPasswordShare(share.Id, value, split.PrimeText, split.Threshold, target));
        }
    }
}
