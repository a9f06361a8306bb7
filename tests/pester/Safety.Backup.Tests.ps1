# Issue 8, Seen 6: a Backup-PicoHsm killed with SIGKILL (kill -9) in the middle of its keys is
# recognised as an incomplete backup, and a rerun without -Force finishes it. Every PicoHsm call
# runs in a child pwsh on a SoftHSM2 environment of its own (SoftHSM2 reads SOFTHSM2_CONF when a
# process first loads it), so the kill cannot disturb the suite's tokens.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:Work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-kill-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))
    $script:Conf = New-SoftHsmEnvironment -TokenLabel 'kill-9'
    $script:KeyCount = 120
    $script:Target = Join-Path $Work 'backup'
    $script:Staging = Join-Path $Work '.backup.picohsm-staging'
    $script:Prelude = "`$ErrorActionPreference = 'Stop'; Import-Module '$ModuleUnderTest'; " +
        "`$s = Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel kill-9 -Pin (ConvertTo-SecureString '$PinText' -AsPlainText -Force); "
    $setup = $Prelude +
        "`$pw = 1..2 | ForEach-Object { ConvertTo-SecureString ""kill-nine-password-`$_"" -AsPlainText -Force }; " +
        "New-PicoDkek -Session `$s -ShareCount 2 -Threshold 2 -OutputDirectory '$(Join-Path $Work 'shares')' -SharePassword `$pw -Confirm:`$false | Out-Null; " +
        "for (`$i = 0; `$i -lt $KeyCount; `$i++) { New-PicoKey -Session `$s -KeyType Aes -Size 128 -Id ('5{0:x3}' -f `$i) -Label ""k`$i"" -Confirm:`$false | Out-Null }; " +
        "'KEYS:' + @(Get-PicoKey -Session `$s).Count"
    $r = Invoke-FreshPwsh -Environment @{ SOFTHSM2_CONF = $Conf } -Command $setup
    if ($r.Output -notcontains "KEYS:$KeyCount") { throw "setup failed: $($r.Output -join "`n")" }

    function Invoke-Child([string] $Command) {
        Invoke-FreshPwsh -Environment @{ SOFTHSM2_CONF = $Conf } -Command ($Prelude + $Command)
    }
}
AfterAll {
    Remove-SoftHsmEnvironment -ConfigPath $Conf
    Remove-Item $Work -Recurse -Force -ErrorAction Ignore
}

Describe 'Backup-PicoHsm killed with SIGKILL' {
    BeforeAll {
        # The backup in a child process, killed (SIGKILL) as soon as its first key files are staged.
        $cmd = Get-PwshCommand
        $psi = [Diagnostics.ProcessStartInfo]::new($cmd[0])
        foreach ($a in @($cmd | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-Command', ($Prelude + "Backup-PicoHsm -Session `$s -Directory '$Target' -Confirm:`$false | Out-Null; 'DONE'"))) { $psi.ArgumentList.Add($a) }
        $psi.Environment['SOFTHSM2_CONF'] = $Conf
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $child = [Diagnostics.Process]::Start($psi)
        $seen = 0
        while (-not $child.HasExited) {
            $seen = @(Get-ChildItem $Staging -Filter '*.pkb' -ErrorAction Ignore).Count
            if ($seen -ge 3) { $child.Kill(); break }   # .NET's Kill is SIGKILL on Unix: no cleanup runs
            Start-Sleep -Milliseconds 5
        }
        $child.WaitForExit()
        $script:KilledAt = $seen
        $script:ExitCode = $child.ExitCode
        $script:StagedBefore = @{}
        Get-ChildItem $Staging -File -ErrorAction Ignore | ForEach-Object { $StagedBefore[$_.Name] = (Get-FileHash $_.FullName -Algorithm SHA256).Hash }
    }

    It 'was killed in the middle of its keys, leaving whole key files in staging and no target' {
        $ExitCode | Should -Be 137 -Because 'the child must have been killed before it finished (SIGKILL: 128 + 9)'
        $KilledAt | Should -BeGreaterOrEqual 3
        Test-Path $Target | Should -BeFalse
        $StagedBefore.Count | Should -BeLessThan $KeyCount
        $StagedBefore.Keys | Where-Object { $_ -like '*.tmp' } | ForEach-Object {
            # A temp file of the key being written when the process died: never under a final name.
            $_ | Should -BeLike '.*.tmp'
        }
    }

    It 'is reported as an incomplete backup by Restore-PicoHsm and Get-PicoKeyBackup, on the target and on the staging folder' {
        $r = Invoke-Child ("foreach (`$d in '$Target', '$Staging') { " +
            "try { Restore-PicoHsm -Session `$s -Directory `$d -Confirm:`$false | Out-Null } catch { 'R:' + `$_.FullyQualifiedErrorId + ':' + `$_.Exception.Message }; " +
            "Get-PicoKeyBackup -Path `$d -ErrorAction SilentlyContinue -ErrorVariable e | Out-Null; 'G:' + `$e[0].FullyQualifiedErrorId }")
        $restore = @($r.Output | Where-Object { $_ -like 'R:*' })
        $restore.Count | Should -Be 2
        $restore | ForEach-Object {
            $_ | Should -BeLike 'R:RestorePicoHsmBackupIncomplete,*'
            $_ | Should -BeLike '*incomplete backup*Rerun Backup-PicoHsm*'
            $_ | Should -Not -BeLike '*not a folder written by Backup-PicoHsm*'
        }
        @($r.Output | Where-Object { $_ -like 'G:GetPicoKeyBackupBackupIncomplete,*' }).Count | Should -Be 2
    }

    It 'is finished by a rerun without -Force: a manifest of every key, the staged files kept' {
        $r = Invoke-Child ("`$set = Backup-PicoHsm -Session `$s -Directory '$Target' -Confirm:`$false -ErrorVariable e; " +
            "'COUNT:' + `$set.KeyCount; 'ERRORS:' + @(`$e).Count; " +
            "'VALID:' + @(Get-PicoKeyBackup -Path '$Target' | Test-PicoKeyBackup -Quiet | Where-Object { `$_ }).Count")
        $r.Output | Should -Contain "COUNT:$KeyCount"
        $r.Output | Should -Contain 'ERRORS:0'
        $r.Output | Should -Contain "VALID:$KeyCount"
        Test-Path $Staging | Should -BeFalse
        $manifest = Get-Content -Raw (Join-Path $Target 'manifest.json') | ConvertFrom-Json
        $manifest.entries.Count | Should -Be $KeyCount
        foreach ($name in $StagedBefore.Keys | Where-Object { $_ -like '*.pkb' }) {
            (Get-FileHash (Join-Path $Target $name) -Algorithm SHA256).Hash | Should -Be $StagedBefore[$name]
        }
        @(Get-ChildItem $Target -Force | Where-Object Name -like '*.tmp').Count | Should -Be 0
    }
}
