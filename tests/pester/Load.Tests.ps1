# Issue 10, "Load and concurrency": many keys through one session from parallel runspaces, two
# processes on one token at once, two restores racing for the same ids, and a soak of backup and
# restore cycles with memory and handle counts read at the start and at the end.
#
# Every PicoHsm call runs in child pwsh processes on a SoftHSM2 environment of their own (SoftHSM2
# reads SOFTHSM2_CONF when a process first loads it), so two processes can share one token the way
# two admins' scripts would. PICOHSM_LOAD_KEYS sets the key count: 500 by default, which keeps the
# CI run within its time; the issue's 1,000 is `PICOHSM_LOAD_KEYS=1000` (docs/reliability.md has both run
# times). One CI run at 1,000 found 999 keys after the parallel restore with no error: PKCS#11 templates
# freed by the GC while SoftHSM2 read them (see Pkcs11KeepAliveSession; xUnit Pkcs11OneSessionLoadTests
# reproduces it in seconds). The failure message names the missing ids, and any key under another id.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:KeyCount = if ($env:PICOHSM_LOAD_KEYS) { [int] $env:PICOHSM_LOAD_KEYS } else { 500 }
    $script:Work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-load-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))
    $script:Conf = New-SoftHsmEnvironment -TokenLabel 'load-src', 'load-par', 'load-race', 'load-soak'
    $script:Shares = Join-Path $Work 'shares'
    $script:Prelude = "`$ErrorActionPreference = 'Stop'; `$ProgressPreference = 'SilentlyContinue'; Import-Module '$ModuleUnderTest'; " +
        "`$pin = ConvertTo-SecureString '$PinText' -AsPlainText -Force; " +
        "function Connect-Load([string] `$t) { Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel `$t -Pin `$pin }; " +
        "`$pw = 1..2 | ForEach-Object { ConvertTo-SecureString ""load-password-`$_"" -AsPlainText -Force }; "

    function Invoke-Child([string] $Command) {
        $r = Invoke-FreshPwsh -Environment @{ SOFTHSM2_CONF = $Conf } -Command ($Prelude + $Command)
        $r
    }

    function Start-Child([string] $Command) {
        # A child pwsh left running, so that two can work on one token at once.
        $cmd = Get-PwshCommand
        $psi = [Diagnostics.ProcessStartInfo]::new($cmd[0])
        foreach ($a in @($cmd | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-Command', ($Prelude + $Command))) { $psi.ArgumentList.Add($a) }
        $psi.Environment['SOFTHSM2_CONF'] = $Conf
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $p = [Diagnostics.Process]::Start($psi)
        [pscustomobject]@{ Process = $p; Out = $p.StandardOutput.ReadToEndAsync(); Err = $p.StandardError.ReadToEndAsync() }
    }

    function Wait-Child($Child) {
        $Child.Process.WaitForExit()
        [pscustomobject]@{ ExitCode = $Child.Process.ExitCode; Output = @(($Child.Out.Result + $Child.Err.Result) -split "`r?`n" | Where-Object { $_ }) }
    }

    function Get-Ids([string] $Token) {
        # The id of every secret key on a token, read by OpenSC's pkcs11-tool (outside the module).
        $saved = $env:SOFTHSM2_CONF
        try { $env:SOFTHSM2_CONF = $Conf; $list = & pkcs11-tool --module $SoftHsm --token-label $Token --login --pin $PinText --list-objects --type secrkey 2>$null }
        finally { $env:SOFTHSM2_CONF = $saved }
        @($list | Where-Object { $_ -match '^\s+ID:\s+([0-9a-f]+)' } | ForEach-Object { ($_ -replace '^\s+ID:\s+', '').Trim() })
    }

    # One DKEK for every token (the same two shares), and the key set on the source token.
    $setup = "`$s = Connect-Load load-src; " +
        "New-PicoDkek -Session `$s -ShareCount 2 -Threshold 2 -OutputDirectory '$Shares' -SharePassword `$pw -Confirm:`$false | Out-Null; " +
        "foreach (`$t in 'load-par', 'load-race', 'load-soak') { `$d = Connect-Load `$t; Import-PicoDkek -Session `$d -Path '$Shares/*.dkekshare' -SharePassword `$pw -Confirm:`$false | Out-Null; Disconnect-PicoHsm -Session `$d -WarningAction SilentlyContinue }; " +
        "for (`$i = 0; `$i -lt $KeyCount; `$i++) { New-PicoKey -Session `$s -KeyType Aes -Size 128 -Id ('7a{0:x4}' -f `$i) -Label ""load-`$i"" -Confirm:`$false | Out-Null }; " +
        "'KEYS:' + @(Get-PicoKey -Session `$s -KeyType Aes | Where-Object Label -like 'load-*').Count"
    $r = Invoke-Child $setup
    if ($r.Output -notcontains "KEYS:$KeyCount") { throw "setup failed: $($r.Output -join "`n")" }
    $script:SourceIds = Get-Ids 'load-src' | Where-Object { $_ -like '7a*' } | Sort-Object
}
AfterAll {
    Remove-SoftHsmEnvironment -ConfigPath $Conf
    Remove-Item $Work -Recurse -Force -ErrorAction Ignore
}

Describe 'ForEach-Object -Parallel over one session' {
    BeforeAll {
        $dir = Join-Path $Work 'parallel'
        $script:Par = Invoke-Child ("`$s = Connect-Load load-src; `$d = Connect-Load load-par; `$m = '$ModuleUnderTest'; " +
            "`$e1 = Get-PicoKey -Session `$s -KeyType Aes | Where-Object Label -like 'load-*' | ForEach-Object -ThrottleLimit 4 -Parallel { " +
            "  Import-Module `$using:m; `$_ | Export-PicoWrappedKey -Session `$using:s -Directory '$dir' -ErrorAction Continue } 2>&1 | Where-Object { `$_ -is [Management.Automation.ErrorRecord] }; " +
            "'EXPORT-ERRORS:' + @(`$e1).Count; `$e1 | Select-Object -First 3 | ForEach-Object { 'E:' + `$_.FullyQualifiedErrorId + ' ' + `$_.Exception.Message }; " +
            "`$e2 = Get-ChildItem '$dir' -Filter *.pkb | ForEach-Object -ThrottleLimit 4 -Parallel { " +
            "  Import-Module `$using:m; Import-PicoWrappedKey -Session `$using:d -Path `$_.FullName -Confirm:`$false -ErrorAction Continue } 2>&1; " +
            "`$restored = @(`$e2 | Where-Object { `$_ -is [PicoHsm.Keys.PicoKey] }); `$e2 = @(`$e2 | Where-Object { `$_ -is [Management.Automation.ErrorRecord] }); " +
            "'IMPORTED:' + `$restored.Count + ' distinct ' + @(`$restored.Id | Sort-Object -Unique).Count + '; module sees ' + @(Get-PicoKey -Session `$d -KeyType Aes | Where-Object Label -like 'load-*').Count; " +
            "'STRAY:' + ((@(`$restored | Where-Object { `$_.Id -notlike '7a*' -or `$_.Label -ne ('load-' + [Convert]::ToInt32(`$_.Id.Substring(2), 16)) }) | ForEach-Object { `$_.Id + '=' + `$_.Label }) -join ', '); " +
            "'IMPORT-ERRORS:' + @(`$e2).Count; `$e2 | Select-Object -First 3 | ForEach-Object { 'E:' + `$_.FullyQualifiedErrorId + ' ' + `$_.Exception.Message }; " +
            "`$bad = @(Get-ChildItem '$dir' -Filter *.pkb | Test-PicoKeyBackup -Session `$s | Where-Object { -not (`$_.Valid -and `$_.DkekMatch) }).Count; 'INVALID:' + `$bad")
        $script:ParFiles = @(Get-ChildItem $dir -Filter *.pkb)
    }

    It 'backs up every key from four runspaces: one valid file per key, no error from the module''s own state' {
        $Par.Output | Should -Contain 'EXPORT-ERRORS:0' -Because ($Par.Output -join "`n")
        $ParFiles.Count | Should -Be $KeyCount
        $Par.Output | Should -Contain 'INVALID:0' -Because ($Par.Output -join "`n")
    }

    It 'restores every file from four runspaces: every key once, none missing, none doubled' {
        $Par.Output | Should -Contain 'IMPORT-ERRORS:0' -Because ($Par.Output -join "`n")
        $all = @(Get-Ids 'load-par')
        $ids = $all | Where-Object { $_ -like '7a*' } | Sort-Object
        $missing = @($SourceIds | Where-Object { $ids -notcontains $_ })
        $ids.Count | Should -Be $KeyCount -Because "missing: $($missing -join ', '); $($Par.Output | Where-Object { $_ -like 'IMPORTED:*' -or $_ -like 'STRAY:*' })"
        # No key under another id (once seen: a template freed under the module while it read the id; see
        # Pkcs11KeepAliveSession): the token holds the restored keys and its DKEK, nothing else.
        $all.Count | Should -Be ($KeyCount + 1) -Because "ids not of the backup: $(@($all | Where-Object { $_ -notlike '7a*' }) -join ', ')"
        $Par.Output | Should -Contain 'STRAY:' -Because 'every restored key must come back with its own id and label'

        @($ids | Select-Object -Unique).Count | Should -Be $KeyCount -Because 'no key may be restored twice'
        Compare-Object $SourceIds $ids | Should -BeNullOrEmpty
    }
}

Describe 'Two processes on one token at once' {
    BeforeAll {
        $a = Start-Child "`$s = Connect-Load load-src; `$set = Backup-PicoHsm -Session `$s -Directory '$Work/two-a' -Confirm:`$false; 'KEYS:' + `$set.KeyCount"
        $b = Start-Child "`$s = Connect-Load load-src; `$set = Backup-PicoHsm -Session `$s -Directory '$Work/two-b' -Confirm:`$false; 'KEYS:' + `$set.KeyCount"
        $script:TwoA = Wait-Child $a
        $script:TwoB = Wait-Child $b
        # Then the same backup restored by two processes racing for the same ids on one token.
        $c = Start-Child "`$s = Connect-Load load-race; Restore-PicoHsm -Session `$s -Directory '$Work/two-a' -Confirm:`$false -ErrorAction Continue -ErrorVariable e | ForEach-Object { 'R:' + `$_.Id }; `$e | ForEach-Object { 'E:' + `$_.FullyQualifiedErrorId }"
        $d = Start-Child "`$s = Connect-Load load-race; Restore-PicoHsm -Session `$s -Directory '$Work/two-a' -Confirm:`$false -ErrorAction Continue -ErrorVariable e | ForEach-Object { 'R:' + `$_.Id }; `$e | ForEach-Object { 'E:' + `$_.FullyQualifiedErrorId }"
        $script:RaceC = Wait-Child $c
        $script:RaceD = Wait-Child $d
    }

    It 'backs up the token from two processes at once: both backups whole and valid' {
        $TwoA.ExitCode | Should -Be 0 -Because ($TwoA.Output -join "`n")
        $TwoB.ExitCode | Should -Be 0 -Because ($TwoB.Output -join "`n")
        # The key set plus nothing else of the module's: both manifests name every key.
        ($TwoA.Output | Where-Object { $_ -like 'KEYS:*' }) | Should -Be "KEYS:$KeyCount"
        ($TwoB.Output | Where-Object { $_ -like 'KEYS:*' }) | Should -Be "KEYS:$KeyCount"
        $r = Invoke-Child ("`$s = Connect-Load load-src; foreach (`$d in '$Work/two-a', '$Work/two-b') { 'INVALID:' + @(Get-PicoKeyBackup -Path `$d | Test-PicoKeyBackup -Session `$s | Where-Object { -not (`$_.Valid -and `$_.DkekMatch) }).Count }")
        @($r.Output | Where-Object { $_ -eq 'INVALID:0' }).Count | Should -Be 2 -Because ($r.Output -join "`n")
    }

    It 'lets two racing restores of one backup win each id once: every key restored once, the other run reports it' {
        $ids = Get-Ids 'load-race' | Where-Object { $_ -like '7a*' } | Sort-Object
        @($ids | Group-Object | Where-Object Count -gt 1).Name | Should -BeNullOrEmpty -Because 'no id may be doubled'
        Compare-Object $SourceIds $ids | Should -BeNullOrEmpty
        foreach ($run in $RaceC, $RaceD) {
            # Each run accounts for every key: restored by it, found already present (restored by the
            # other run), or refused with an error record that names why.
            $keys = @($run.Output | Where-Object { $_ -like 'R:*' }).Count
            $errors = @($run.Output | Where-Object { $_ -like 'E:*' })
            ($keys + $errors.Count) | Should -Be $KeyCount -Because ($run.Output | Select-Object -First 20 | Out-String)
            $errors | Should -Not -Match 'Unexpected|Internal|NullReference|InvalidOperationException'
        }
    }
}

Describe 'A soak: 50 backup-and-restore cycles on one session' {
    BeforeAll {
        # Ten keys backed up, restored onto a second token and removed from it again, fifty times
        # in one process through the same two sessions; managed memory after a full collection and
        # the open file descriptors are read after the first cycle (start-up settled) and after the last.
        # Descriptors of loaded assemblies and libraries are left out: the runtime maps each once, on first
        # use (the Desktop build, through netstandard's forwarders, loaded five more framework assemblies over
        # the 50 cycles: 169 -> 179 descriptors, none of them a file, socket or pipe of ours).
        $script:Soak = Invoke-Child ("`$s = Connect-Load load-soak; `$t = Connect-Load load-par; " +
            "for (`$i = 0; `$i -lt 10; `$i++) { New-PicoKey -Session `$s -KeyType Aes -Size 128 -Id ('8{0:x3}' -f `$i) -Label ""soak-`$i"" -Confirm:`$false | Out-Null }; " +
            "function Measure-Now { [GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect(); " +
            "  [pscustomobject]@{ Managed = [GC]::GetTotalMemory(`$true); Handles = @(Get-ChildItem /proc/self/fd | Where-Object { `$_.LinkTarget -notmatch '\.(dll|so[.0-9]*)$' }).Count } }; " +
            "`$first = `$null; `$bad = 0; " +
            "for (`$c = 1; `$c -le 50; `$c++) { " +
            "  `$set = Backup-PicoHsm -Session `$s -Directory '$Work/soak' -Force -Confirm:`$false; " +
            "  `$r = @(Restore-PicoHsm -Session `$t -Directory '$Work/soak' -Confirm:`$false); " +
            "  `$gone = @(Get-PicoKey -Session `$t -Label 'soak-*' | Remove-PicoKey -Session `$t -Confirm:`$false); " +
            "  if (`$set.KeyCount -ne 10 -or `$r.Count -ne 10 -or @(Get-PicoKey -Session `$t -Label 'soak-*').Count -ne 0) { `$bad++ }; " +
            "  if (`$c -eq 1) { `$first = Measure-Now } }; " +
            "`$last = Measure-Now; " +
            "'BAD:' + `$bad; 'MANAGED:' + `$first.Managed + ':' + `$last.Managed; 'HANDLES:' + `$first.Handles + ':' + `$last.Handles")
    }

    It 'completes every cycle with every key: backed up, restored and removed again' {
        $Soak.Output | Should -Contain 'BAD:0' -Because ($Soak.Output -join "`n")
        @(Get-Ids 'load-soak' | Where-Object { $_ -like '8*' }).Count | Should -Be 10
        @(Get-Ids 'load-par' | Where-Object { $_ -like '8*' }).Count | Should -Be 0
    }

    It 'does not grow: managed memory and open handles at the end within noise of the start' {
        $m = ($Soak.Output | Where-Object { $_ -like 'MANAGED:*' }) -replace '^MANAGED:' -split ':' | ForEach-Object { [long] $_ }
        $h = ($Soak.Output | Where-Object { $_ -like 'HANDLES:*' }) -replace '^HANDLES:' -split ':' | ForEach-Object { [int] $_ }
        $m.Count | Should -Be 2 -Because ($Soak.Output -join "`n")
        Write-Host "    soak: managed $([math]::Round($m[0] / 1MB, 1)) MB -> $([math]::Round($m[1] / 1MB, 1)) MB, handles $($h[0]) -> $($h[1])"
        # Noise: a few MB of caches the runtime fills lazily, a couple of descriptors of its own.
        $m[1] | Should -BeLessOrEqual ([long]($m[0] * 1.25 + 4MB))
        $h[1] | Should -BeLessOrEqual ($h[0] + 3)
    }
}
