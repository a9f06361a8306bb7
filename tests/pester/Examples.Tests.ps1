# Every script in examples/ runs here against SoftHSM2 tokens, so none goes stale. The scheduled
# task scripts run as a scheduler runs them: a fresh pwsh -NonInteractive, judged by exit code
# and the one log line.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:Examples = (Resolve-Path (Join-Path $PSScriptRoot '../../examples')).ProviderPath
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "picohsm-examples-$([guid]::NewGuid().ToString('n').Substring(0, 8))"
    New-Item -ItemType Directory -Force $Dir | Out-Null
    $script:Pwsh = Get-PwshCommand
    Disconnect-PicoHsm -All
    foreach ($t in 'pico-test-e', 'pico-test-f') { Remove-TestObjects -Token $t }
    # pico-test-e: the production token of the nightly job, with a DKEK and two keys.
    $s = Connect-TestToken -Token 'pico-test-e'
    New-PicoKey -Session $s -KeyType Ec -Curve P-256 -Id 0e01 -Label web-tls | Out-Null
    New-PicoKey -Session $s -KeyType Rsa -Size 2048 -Id 0e02 -Label ca-rsa | Out-Null
    $script:Kcv = (New-PicoDkek -Session $s -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $Dir 'e-shares') -SharePassword (New-TestPasswords 2) -Confirm:$false).KeyCheckValue
    Disconnect-PicoHsm -All
    function Invoke-Scheduled([string[]] $Arguments) {
        # As a scheduler starts it: -NonInteractive (a unit's ExecStart has it already).
        if ($Arguments -notcontains '-NonInteractive') { $Arguments = @('-NoProfile', '-NonInteractive') + $Arguments }
        $out = & $Pwsh[0] @($Pwsh | Select-Object -Skip 1) @Arguments 2>&1
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = @($out | ForEach-Object { "$_" }) }
    }
    function Get-UnitExecArgs([string] $Unit) {
        # The unit's own ExecStart, with the script and paths moved into the test folder.
        $exec = (Get-Content $Unit | Where-Object { $_ -like 'ExecStart=*' }) -replace '^ExecStart=\S+\s+', ''
        $a = [System.Management.Automation.PSParser]::Tokenize($exec, [ref]$null) | ForEach-Object Content
        @($a)
    }
}
AfterAll {
    Disconnect-PicoHsm -All
    foreach ($t in 'pico-test-e', 'pico-test-f') { Remove-TestObjects -Token $t }
    if (Test-Path $Dir) { Remove-Item $Dir -Recurse -Force }
}

Describe 'examples/ parse' {
    It '<_> parses without errors' -ForEach @(Get-ChildItem (Join-Path $PSScriptRoot '../../examples') -Recurse -Filter *.ps1 | ForEach-Object Name) {
        $file = Get-ChildItem $Examples -Recurse -Filter $_ | Select-Object -First 1
        $errors = $null
        [System.Management.Automation.Language.Parser]::ParseFile($file.FullName, [ref]$null, [ref]$errors) | Out-Null
        $errors | Should -BeNullOrEmpty
    }
}

Describe 'Nightly backup under a systemd timer' {
    BeforeAll {
        # A systemd credential: a file in an owner-only folder named by $CREDENTIALS_DIRECTORY.
        $script:Creds = Join-Path $Dir 'credentials'
        New-Item -ItemType Directory $Creds | Out-Null
        if ($IsLinux) { chmod 0700 $Creds }
        Set-Content -Path (Join-Path $Creds 'hsm-pin') -Value $PinText -NoNewline
        if ($IsLinux) { chmod 0400 (Join-Path $Creds 'hsm-pin') }
        $script:Log = Join-Path $Dir 'systemd.log'
        $unitArgs = Get-UnitExecArgs (Join-Path $Examples 'systemd/picohsm-backup.service')
        $script:Args_ = for ($i = 0; $i -lt $unitArgs.Count; $i++) {
            switch ($unitArgs[$i]) {
                { $_ -like '*/Invoke-NightlyBackup.ps1' } { Join-Path $Examples 'Invoke-NightlyBackup.ps1'; continue }
                '-TokenLabel' { $_; 'pico-test-e'; $i++; continue }
                '-BackupRoot' { $_; (Join-Path $Dir 'systemd-backups'); $i++; continue }
                '-LogPath' { $_; $Log; $i++; continue }
                default { $_ }
            }
        }
        $script:Args_ += @('-ModulePath', $SoftHsm, '-PicoHsmModule', $ModuleUnderTest)
        $script:Timer = Get-Content (Join-Path $Examples 'systemd/picohsm-backup.timer') -Raw
    }

    It 'the timer runs the service nightly and catches up after downtime' {
        $Timer | Should -Match '(?m)^OnCalendar=\*-\*-\* \d\d:\d\d'
        $Timer | Should -Match '(?m)^Persistent=true'
        Get-Content (Join-Path $Examples 'systemd/picohsm-backup.service') -Raw | Should -Match '(?m)^LoadCredential=hsm-pin:'
    }

    It 'backs up, restore-tests, exits 0 and writes one log line' {
        $old = $env:CREDENTIALS_DIRECTORY
        try {
            $env:CREDENTIALS_DIRECTORY = $Creds
            $r = Invoke-Scheduled $Args_
        }
        finally { $env:CREDENTIALS_DIRECTORY = $old }
        $r.ExitCode | Should -Be 0 -Because ($r.Output -join "`n")
        $lines = @(Get-Content $Log)
        $lines.Count | Should -Be 1
        $lines[0] | Should -Match "^\d{4}-\d\d-\d\dT\S+ OK 2 keys backed up .* \(KCV $Kcv\)$"
    }

    It 'exits 2 with one INCOMPLETE line when a key cannot be exported' {
        $s = Connect-TestToken -Token 'pico-test-e'
        New-PicoKey -Session $s -KeyType Ec -Curve P-256 -Id 0e03 -Label locked -NonExportable | Out-Null
        Disconnect-PicoHsm -Session $s -WarningAction SilentlyContinue
        $old = $env:CREDENTIALS_DIRECTORY
        try { $env:CREDENTIALS_DIRECTORY = $Creds; $r = Invoke-Scheduled $Args_ }
        finally { $env:CREDENTIALS_DIRECTORY = $old }
        $r.ExitCode | Should -Be 2 -Because ($r.Output -join "`n")
        (Get-Content $Log)[-1] | Should -Match ' INCOMPLETE .*0e03'
    }

    It 'exits 1 with one ERROR line naming the error id when there is no credential' {
        $before = @(Get-Content $Log).Count
        $old = $env:CREDENTIALS_DIRECTORY
        try { $env:CREDENTIALS_DIRECTORY = Join-Path $Dir 'empty'; New-Item -ItemType Directory -Force $env:CREDENTIALS_DIRECTORY | Out-Null; $r = Invoke-Scheduled $Args_ }
        finally { $env:CREDENTIALS_DIRECTORY = $old }
        $r.ExitCode | Should -Be 1
        @(Get-Content $Log).Count | Should -Be ($before + 1)
        (Get-Content $Log)[-1] | Should -Match ' ERROR '
    }

    It 'exits 1 with the module''s error id for a wrong PIN' {
        $bad = Join-Path $Dir 'bad-credentials'
        New-Item -ItemType Directory $bad | Out-Null
        Set-Content -Path (Join-Path $bad 'hsm-pin') -Value '000000' -NoNewline
        $old = $env:CREDENTIALS_DIRECTORY
        try { $env:CREDENTIALS_DIRECTORY = $bad; $r = Invoke-Scheduled $Args_ }
        finally { $env:CREDENTIALS_DIRECTORY = $old }
        $r.ExitCode | Should -Be 1
        (Get-Content $Log)[-1] | Should -Match ' ERROR ConnectPicoHsm\w+: '
    }
}

Describe 'A scheduled script without $ErrorActionPreference = ''Stop''' {
    It 'stops at a failed Connect-PicoHsm, so the next line cannot change the previous default token' {
        # README ("In a scheduled task"): a failed Connect-PicoHsm stops the script even without Stop.
        $scriptFile = Join-Path $Dir 'no-stop.ps1'
        @"
Import-Module '$ModuleUnderTest'
`$null = Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel pico-test-e -Pin (ConvertTo-SecureString '$PinText' -AsPlainText -Force)
`$null = Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel no-such-token -Pin (ConvertTo-SecureString '$PinText' -AsPlainText -Force)
'NEXT LINE RAN'
"@ | Set-Content $scriptFile
        $r = Invoke-Scheduled @('-File', $scriptFile)
        $r.Output | Should -Not -Contain 'NEXT LINE RAN'
        $r.ExitCode | Should -Not -Be 0
        ($r.Output -join "`n") | Should -Match 'default session is still'
    }
}

Describe 'Nightly backup under Windows Task Scheduler' {
    It 'registers the task with -WhatIf and builds the command line Task Scheduler runs' {
        # Task Scheduler and DPAPI exist only on Windows; -WhatIf runs the script's logic here.
        $cred = [pscredential]::new('hsm', $Pin)
        $r = & (Join-Path $Examples 'windows/Register-NightlyBackupTask.ps1') -TokenLabel pico-test-e -BackupRoot (Join-Path $Dir 'win') -CredentialPath (Join-Path $Dir 'pin.xml') -LogPath (Join-Path $Dir 'win.log') -Pin $cred -WhatIf
        $r.Arguments | Should -Match '-NonInteractive -File ".*Invoke-NightlyBackup\.ps1" -TokenLabel "pico-test-e" .* -PinFrom Clixml -CredentialPath '
        Test-Path (Join-Path $Dir 'pin.xml') | Should -BeFalse
    }

    It 'runs the backup with the PIN from an Export-Clixml credential (DPAPI on Windows; not encrypted here)' {
        [pscredential]::new('hsm', $Pin) | Export-Clixml (Join-Path $Dir 'pin.xml')
        $r = Invoke-Scheduled @('-File', (Join-Path $Examples 'Invoke-NightlyBackup.ps1'), '-TokenLabel', 'pico-test-e', '-BackupRoot', (Join-Path $Dir 'win'), '-PinFrom', 'Clixml', '-CredentialPath', (Join-Path $Dir 'pin.xml'), '-LogPath', (Join-Path $Dir 'win.log'), '-ModulePath', $SoftHsm, '-PicoHsmModule', $ModuleUnderTest)
        # pico-test-e holds a non-exportable key since the systemd tests: INCOMPLETE, exit 2.
        $r.ExitCode | Should -Be 2 -Because ($r.Output -join "`n")
        @(Get-Content (Join-Path $Dir 'win.log')).Count | Should -Be 1
    }
}

Describe 'Compliance.Tests.ps1' {
    It 'passes when every private key is backed up under the DKEK and the drill is recent, and fails when the drill is old' {
        $s = Connect-TestToken -Token 'pico-test-f'
        New-PicoKey -Session $s -KeyType Ec -Curve P-256 -Id 0f01 -Label signer | Out-Null
        $kcv = (New-PicoDkek -Session $s -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $Dir 'f-shares') -SharePassword (New-TestPasswords 2) -Confirm:$false).KeyCheckValue
        Backup-PicoHsm -Session $s -Directory (Join-Path $Dir 'f-backups/20261127') -Confirm:$false | Out-Null
        Disconnect-PicoHsm -Session $s -WarningAction SilentlyContinue
        "$((Get-Date).ToString('yyyy-MM-dd')) drill onto spare: 1 key restored" | Set-Content (Join-Path $Dir 'drill.log')
        # Pester cannot run inside a running Pester: the suite runs in a fresh pwsh, as in CI.
        $scriptFile = Join-Path $Dir 'run-compliance.ps1'
        @"
`$ErrorActionPreference = 'Stop'
Import-Module '$((Get-Module Pester).Path)'
Import-Module '$ModuleUnderTest'
`$s = Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel pico-test-f -Pin (ConvertTo-SecureString '$PinText' -AsPlainText -Force)
`$c = New-PesterContainer -Path '$Examples/Compliance.Tests.ps1' -Data @{ Session = `$s; BackupRoot = '$Dir/f-backups'; ExpectedKcv = '$kcv'; DrillLog = '$Dir/drill.log' }
`$r = Invoke-Pester -Container `$c -PassThru -Output None
"`$(`$r.PassedCount) passed, `$(`$r.FailedCount) failed"
"@ | Set-Content $scriptFile
        (Invoke-Scheduled @('-File', $scriptFile)).Output[-1] | Should -Be '5 passed, 0 failed'
        "$((Get-Date).AddDays(-200).ToString('yyyy-MM-dd')) drill onto spare" | Set-Content (Join-Path $Dir 'drill.log')
        (Invoke-Scheduled @('-File', $scriptFile)).Output[-1] | Should -Be '4 passed, 1 failed'
    }
}

Describe 'The custodian ceremony and the rotation of one custodian' {
    It 'New-CustodianCeremony writes one share per custodian and a receipt with the DKEK''s KCV' {
        Remove-TestObjects -Token 'pico-test-f'
        $s = Connect-TestToken -Token 'pico-test-f'
        try {
            $out = Join-Path $Dir 'ceremony'
            $receipt = & (Join-Path $Examples 'New-CustodianCeremony.ps1') -Session $s -Custodian alice, bob, carol -Threshold 2 -OutputDirectory $out -SharePassword (New-TestPasswords 3) 6>$null
            $receipt.File | Should -Be @('dkek-share-1-of-3.dkekshare', 'dkek-share-2-of-3.dkekshare', 'dkek-share-3-of-3.dkekshare')
            $receipt.Custodian | Should -Be @('alice', 'bob', 'carol')
            $kcv = (Get-PicoDkek -Session $s | Where-Object Present).KeyCheckValue
            $receipt.Kcv | Select-Object -Unique | Should -Be $kcv
            (Import-Csv (Join-Path $out 'ceremony-receipt.csv')).Sha256[0] | Should -Be (Get-FileHash (Join-Path $out 'dkek-share-1-of-3.dkekshare')).Hash.ToLower()
        }
        finally { Disconnect-PicoHsm -Session $s -WarningAction SilentlyContinue }
    }

    It 'Update-Custodian re-splits the same DKEK for the new custodians' {
        $out = Join-Path $Dir 'ceremony'
        $kcv = Get-DkekKcvFromFile (Join-Path $out 'dkek-share-1-of-3.dkekshare')
        $pw = New-TestPasswords 3
        $new = & (Join-Path $Examples 'Update-Custodian.ps1') -Path (Join-Path $out 'dkek-share-1-of-3.dkekshare'), (Join-Path $out 'dkek-share-3-of-3.dkekshare') -SharePassword $pw[0], $pw[2] -Custodian alice, carol, dave -Threshold 2 -OutputDirectory (Join-Path $Dir 'rotated') -NewSharePassword (New-TestPasswords 3 -Prefix rotated) 6>$null
        $new.Custodian | Should -Be @('alice', 'carol', 'dave')
        foreach ($f in $new.File) { Get-DkekKcvFromFile (Join-Path $Dir "rotated/$f") | Should -Be $kcv }
    }
}

# The same examples against a Pico HSM / SmartCard-HSM: the card simulator as the vpcd card behind
# pcscd, the scheduled jobs connecting by -Reader (PC/SC only, as on a host with no PKCS#11 module),
# keys made with OpenSC's pkcs11-tool. Not run on the card: the INCOMPLETE (exit 2) case, because
# every key a SmartCard-HSM holds in the DKEK's key domain is exportable (pkcs11-tool through OpenSC
# cannot make a non-exportable one), and Task Scheduler/DPAPI, which exist only on Windows (as above).
Describe 'The examples on the card simulator (pcscd, vpcd, OpenSC)' -Tag Card {
    BeforeAll {
        $script:OpenSc = Get-OpenScModulePath
        $script:PcscdPid = Start-PcscDaemon
        $script:Sim = Start-CardSimulator -Port 35963 -Arguments '--blank'
        $script:Reader = $Sim.Reader
        $script:SoPin = ConvertTo-SecureString (Get-TestSoPin) -AsPlainText -Force
        $script:CardDir = Join-Path $Dir 'card'
        New-Item -ItemType Directory $CardDir | Out-Null
        Disconnect-PicoHsm -All
        # A card holds the ceremony's DKEK whole, as its one DKEK share.
        Initialize-PicoHsm -Reader $Reader -SoPin $SoPin -Pin $Pin -DkekShareCount 1 -Confirm:$false -WarningAction SilentlyContinue | Out-Null
        $script:CardCreds = Join-Path $CardDir 'credentials'
        New-Item -ItemType Directory $CardCreds | Out-Null
        if ($IsLinux) { chmod 0700 $CardCreds }
        Set-Content -Path (Join-Path $CardCreds 'hsm-pin') -Value $PinText -NoNewline
        $script:CardLog = Join-Path $CardDir 'systemd.log'
        $unitArgs = Get-UnitExecArgs (Join-Path $Examples 'systemd/picohsm-backup.service')
        # The unit as its header comment says to change it for a card: -Reader instead of -TokenLabel.
        $script:CardArgs = for ($i = 0; $i -lt $unitArgs.Count; $i++) {
            switch ($unitArgs[$i]) {
                { $_ -like '*/Invoke-NightlyBackup.ps1' } { Join-Path $Examples 'Invoke-NightlyBackup.ps1'; continue }
                '-TokenLabel' { '-Reader'; $Reader; $i++; continue }
                '-BackupRoot' { $_; (Join-Path $CardDir 'backups'); $i++; continue }
                '-LogPath' { $_; $CardLog; $i++; continue }
                default { $_ }
            }
        }
        $script:CardArgs += @('-PicoHsmModule', $ModuleUnderTest)
        function Invoke-CardNightly([string] $CredentialsDirectory) {
            Disconnect-PicoHsm -All
            $old = $env:CREDENTIALS_DIRECTORY
            try { $env:CREDENTIALS_DIRECTORY = $CredentialsDirectory; Invoke-Scheduled $CardArgs }
            finally { $env:CREDENTIALS_DIRECTORY = $old }
        }
    }
    AfterAll {
        Disconnect-PicoHsm -All
        Stop-CardSimulator $Sim
        Stop-PcscDaemon $PcscdPid
    }

    It 'New-CustodianCeremony gives the card its DKEK and writes the receipt with the card''s KCV' {
        $c = Connect-PicoHsm -Reader $Reader -Pin $Pin
        try {
            $out = Join-Path $CardDir 'ceremony'
            $receipt = & (Join-Path $Examples 'New-CustodianCeremony.ps1') -Session $c -Custodian alice, bob, carol -Threshold 2 -OutputDirectory $out -SharePassword (New-TestPasswords 3 -Prefix card) 6>$null
            $receipt.File | Should -Be @('dkek-share-1-of-3.dkekshare', 'dkek-share-2-of-3.dkekshare', 'dkek-share-3-of-3.dkekshare')
            $script:CardKcv = (@(Get-PicoDkek -Session $c))[0].KeyCheckValue
            $CardKcv | Should -Match '^[0-9a-f]{16}$'
            $receipt.Kcv | Select-Object -Unique | Should -Be $CardKcv
            (Import-Csv (Join-Path $out 'ceremony-receipt.csv')).Sha256[2] | Should -Be (Get-FileHash (Join-Path $out 'dkek-share-3-of-3.dkekshare')).Hash.ToLower()
        }
        finally { Disconnect-PicoHsm -Session $c -WarningAction SilentlyContinue }
        foreach ($spec in @(@('EC:prime256v1', '51', 'card-web'), @('EC:prime256v1', '52', 'card-ca'))) {
            $o = & timeout 600 pkcs11-tool --module $OpenSc --login --pin $PinText --keypairgen --key-type $spec[0] --id $spec[1] --label $spec[2] 2>&1
            $LASTEXITCODE | Should -Be 0 -Because ($o -join "`n")
        }
    }

    It 'the systemd job backs the card up by -Reader, restore-tests, exits 0 and writes one log line' {
        $r = Invoke-CardNightly $CardCreds
        $r.ExitCode | Should -Be 0 -Because ($r.Output -join "`n")
        $lines = @(Get-Content $CardLog)
        $lines.Count | Should -Be 1
        $lines[0] | Should -Match "^\d{4}-\d\d-\d\dT\S+ OK 2 keys backed up .* \(KCV $CardKcv\)$"
    }

    It 'the systemd job exits 1 with the module''s error id for a wrong card PIN (one try spent, then reset)' {
        $bad = Join-Path $CardDir 'bad-credentials'
        New-Item -ItemType Directory $bad | Out-Null
        Set-Content -Path (Join-Path $bad 'hsm-pin') -Value '000000' -NoNewline
        $r = Invoke-CardNightly $bad
        $r.ExitCode | Should -Be 1
        (Get-Content $CardLog)[-1] | Should -Match ' ERROR ConnectPicoHsm\w+: '
        # The right PIN resets the card's try counter for the tests that follow.
        (Invoke-CardNightly $CardCreds).ExitCode | Should -Be 0
    }

    It 'the Task Scheduler script builds a -Reader command line, and that backup runs from a Clixml credential' {
        $cred = [pscredential]::new('hsm', $Pin)
        $w = & (Join-Path $Examples 'windows/Register-NightlyBackupTask.ps1') -Reader $Reader -BackupRoot (Join-Path $CardDir 'win') -CredentialPath (Join-Path $CardDir 'pin.xml') -LogPath (Join-Path $CardDir 'win.log') -Pin $cred -WhatIf
        $w.Arguments | Should -Match ('-NonInteractive -File ".*Invoke-NightlyBackup\.ps1" -Reader "' + [regex]::Escape($Reader) + '" .* -PinFrom Clixml ')
        $cred | Export-Clixml (Join-Path $CardDir 'pin.xml')
        Disconnect-PicoHsm -All
        $r = Invoke-Scheduled @('-File', (Join-Path $Examples 'Invoke-NightlyBackup.ps1'), '-Reader', $Reader, '-BackupRoot', (Join-Path $CardDir 'win'), '-PinFrom', 'Clixml', '-CredentialPath', (Join-Path $CardDir 'pin.xml'), '-LogPath', (Join-Path $CardDir 'win.log'), '-PicoHsmModule', $ModuleUnderTest)
        $r.ExitCode | Should -Be 0 -Because ($r.Output -join "`n")
        @(Get-Content (Join-Path $CardDir 'win.log')).Count | Should -Be 1
    }

    It 'Compliance.Tests.ps1 passes on the card with a recent drill and fails with an old one' {
        Disconnect-PicoHsm -All
        "$((Get-Date).ToString('yyyy-MM-dd')) drill onto spare card: 2 keys restored" | Set-Content (Join-Path $CardDir 'drill.log')
        $scriptFile = Join-Path $CardDir 'run-compliance.ps1'
        @"
`$ErrorActionPreference = 'Stop'
Import-Module '$((Get-Module Pester).Path)'
Import-Module '$ModuleUnderTest'
`$s = Connect-PicoHsm -Reader '$Reader' -Pin (ConvertTo-SecureString '$PinText' -AsPlainText -Force)
`$c = New-PesterContainer -Path '$Examples/Compliance.Tests.ps1' -Data @{ Session = `$s; BackupRoot = '$CardDir/backups'; ExpectedKcv = '$CardKcv'; DrillLog = '$CardDir/drill.log' }
`$r = Invoke-Pester -Container `$c -PassThru -Output None
"`$(`$r.PassedCount) passed, `$(`$r.FailedCount) failed"
"@ | Set-Content $scriptFile
        $r = Invoke-Scheduled @('-File', $scriptFile)
        $r.Output[-1] | Should -Be '5 passed, 0 failed' -Because ($r.Output -join "`n")
        "$((Get-Date).AddDays(-200).ToString('yyyy-MM-dd')) drill onto spare card" | Set-Content (Join-Path $CardDir 'drill.log')
        (Invoke-Scheduled @('-File', $scriptFile)).Output[-1] | Should -Be '4 passed, 1 failed'
    }

    It 'Update-Custodian re-splits the card''s DKEK, and two new shares give a re-initialised card the same KCV' {
        $out = Join-Path $CardDir 'ceremony'
        $pw = New-TestPasswords 3 -Prefix card
        $newPw = New-TestPasswords 3 -Prefix card-rotated
        $new = & (Join-Path $Examples 'Update-Custodian.ps1') -Path (Join-Path $out 'dkek-share-2-of-3.dkekshare'), (Join-Path $out 'dkek-share-3-of-3.dkekshare') -SharePassword $pw[1], $pw[2] -Custodian bob, carol, dave -Threshold 2 -OutputDirectory (Join-Path $CardDir 'rotated') -NewSharePassword $newPw 6>$null 3>$null
        $new.Custodian | Should -Be @('bob', 'carol', 'dave')
        $new.Kcv | Select-Object -Unique | Should -Be $CardKcv
        Disconnect-PicoHsm -All
        Initialize-PicoHsm -Reader $Reader -SoPin $SoPin -Pin $Pin -DkekShareCount 1 -Confirm:$false -WarningAction SilentlyContinue | Out-Null
        $c = Connect-PicoHsm -Reader $Reader -Pin $Pin
        try {
            $files = $new.File | ForEach-Object { Join-Path $CardDir "rotated/$_" }
            (Import-PicoDkek -Session $c -Path $files[0], $files[2] -SharePassword $newPw[0], $newPw[2] -Confirm:$false).KeyCheckValue | Should -Be $CardKcv
            # The night's backup restores onto the re-initialised card under the rotated shares.
            $set = Get-ChildItem (Join-Path $CardDir 'backups') -Directory | Sort-Object Name | Select-Object -First 1
            @(Restore-PicoHsm -Session $c -Directory $set.FullName -Confirm:$false).Count | Should -Be 2
        }
        finally { Disconnect-PicoHsm -Session $c -WarningAction SilentlyContinue }
    }
}
