# Issue 8, the restore side on SoftHSM2 tokens: the DKEK's id is never restored or generated onto,
# no restore makes a second object with an id another object holds, -WhatIf and Test-PicoKeyBackup
# report exactly the refusals of the real run, a rerun after an interrupted restore completes, and a
# restored AES-256 key is listed as AES-256.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:Work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-safety-restore-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))
    'pico-test-c', 'pico-test-d' | ForEach-Object { Remove-TestObjects -Token $_ }
    $script:src = Connect-TestToken 'pico-test-c'
    $script:pw = New-TestPasswords 3 -Prefix safety
    $script:dkek = New-PicoDkek -Session $src -ShareCount 3 -Threshold 2 -Id '7f' -OutputDirectory (Join-Path $Work 'shares') -SharePassword $pw -Confirm:$false
    New-PicoKey -Session $src -KeyType Ec -Id '01' -Label 'ec' -Confirm:$false | Out-Null
    New-PicoKey -Session $src -KeyType Rsa -Size 2048 -Id '02' -Label 'rsa' -Confirm:$false | Out-Null
    New-PicoKey -Session $src -KeyType Aes -Size 256 -Id '03' -Label 'aes256' -Confirm:$false | Out-Null
    $script:setDir = Join-Path $Work 'set'
    Backup-PicoHsm -Session $src -Directory $setDir -WarningAction SilentlyContinue | Out-Null
    $script:bk = @{}; Get-PicoKeyBackup -Path (Join-Path $setDir '*.pkb') | ForEach-Object { $bk[$_.Id] = $_ }
    $script:shareFiles = (Get-ChildItem (Join-Path $Work 'shares') | Sort-Object Name).FullName

    function Get-IdObjects {
        <# Every object on the token with that CKA_ID, as OpenSC lists them (outside this module). #>
        param([string] $Token, [string] $Id)
        $o = & pkcs11-tool --module $SoftHsm --token-label $Token --login --pin $PinText --list-objects 2>&1
        @($o | Where-Object { $_ -match "^\s*ID:\s*$Id\s*$" }).Count
    }
    function Reset-Target {
        <# The target token wiped, with the backup's DKEK at -DkekId; returns its new session. #>
        param([string] $DkekId = '7f')
        Get-PicoHsmSession | Where-Object TokenLabel -EQ 'pico-test-d' | ForEach-Object { Disconnect-PicoHsm -Session $_ }
        Remove-TestObjects -Token 'pico-test-d'
        $t = Connect-TestToken 'pico-test-d'
        Import-PicoDkek -Session $t -Path $shareFiles[0], $shareFiles[2] -SharePassword $pw[0], $pw[2] -Id $DkekId -Confirm:$false | Out-Null
        $t
    }
}
AfterAll {
    Disconnect-PicoHsm -All
    'pico-test-c', 'pico-test-d' | ForEach-Object { Remove-TestObjects -Token $_ }
    Remove-Item $Work -Recurse -Force -ErrorAction Ignore
}

Describe 'The DKEK is never restored or generated onto (issue 8, Seen 1)' {
    It 'Import-PicoWrappedKey -Id (the DKEK''s id) is refused, with -Force and with -WhatIf, naming the DKEK' {
        foreach ($extra in @{}, @{ Force = $true }, @{ WhatIf = $true }, @{ Force = $true; WhatIf = $true }) {
            $errs = $null
            $r = @(Import-PicoWrappedKey -Session $src -InputObject $bk['03'] -Id '7f' -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue @extra)
            $r.Count | Should -Be 0
            $errs.Count | Should -Be 1
            $errs[0].FullyQualifiedErrorId | Should -BeLike 'ImportPicoWrappedKeyIdIsDkek,*'
            $errs[0].CategoryInfo.Category | Should -Be 'ResourceExists'
            $errs[0].Exception.Message | Should -BeLike "*DKEK*$($dkek.KeyCheckValue)*KCV record*not even with -Force*"
        }
        Get-IdObjects -Token 'pico-test-c' -Id '7f' | Should -Be 1
        $d = Get-PicoDkek -Session $src
        $d.KcvVerified | Should -BeTrue
        $d.KeyCheckValue | Should -Be $dkek.KeyCheckValue
        # The DKEK is still usable: a backup runs.
        (Backup-PicoHsm -Session $src -Directory (Join-Path $Work 'after-refusal') -WarningAction SilentlyContinue).KeyCount | Should -Be 3
    }

    It 'New-PicoKey on the DKEK''s id or an occupied id is refused in -WhatIf exactly as in the real run' {
        foreach ($case in @{ Id = '7f'; Reason = 'IdIsDkek' }, @{ Id = '01'; Reason = 'IdInUse' }) {
            $seen = foreach ($whatIf in $true, $false) {
                $errs = $null
                New-PicoKey -Session $src -KeyType Aes -Size 128 -Id $case.Id -Label 'clash' -WhatIf:$whatIf -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue | Out-Null
                $errs.Count | Should -Be 1
                $errs[0].FullyQualifiedErrorId | Should -BeLike "NewPicoKey$($case.Reason),*"
                $errs[0].Exception.Message
            }
            $seen[0] | Should -Be $seen[1]
        }
        Get-IdObjects -Token 'pico-test-c' -Id '7f' | Should -Be 1
    }

    It 'Get-PicoKey -Id (the DKEK''s id) says it is the DKEK' {
        $errs = $null
        Get-PicoKey -Session $src -Id '7f' -ErrorVariable errs -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'GetPicoKeyKeyNotFound,*'
        $errs[0].Exception.Message | Should -BeLike '*DKEK*Get-PicoDkek*'
    }
}

Describe 'One pre-flight: -WhatIf and Test-PicoKeyBackup see what the real run refuses (issue 8, Seen 5)' {
    BeforeAll {
        $script:dst = Reset-Target
        # Every id of the backup taken by another key of the same class.
        New-PicoKey -Session $dst -KeyType Ec -Id '01' -Label 'other ec' -Confirm:$false | Out-Null
        New-PicoKey -Session $dst -KeyType Rsa -Size 2048 -Id '02' -Label 'other rsa' -Confirm:$false | Out-Null
        New-PicoKey -Session $dst -KeyType Aes -Size 128 -Id '03' -Label 'other aes' -Confirm:$false | Out-Null
        $script:before = (Get-PicoKey -Session $dst | ForEach-Object { "$($_.Id) $($_.Label) $($_.PublicKeyFingerprint)" }) -join ';'
    }

    It 'Restore-PicoHsm -WhatIf gives the same error records as the real run, and neither changes anything' {
        $runs = foreach ($whatIf in $true, $false) {
            $errs = $null
            $r = @(Restore-PicoHsm -Session $dst -Directory $setDir -WhatIf:$whatIf -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue -WarningAction SilentlyContinue)
            $r.Count | Should -Be 0
            $errs.Count | Should -Be 3
            foreach ($e in $errs) {
                $e.FullyQualifiedErrorId | Should -BeLike 'RestorePicoHsmIdInUse,*'
                # Restore-PicoHsm has no -Id: the advice is -Force, or a single file with Import-PicoWrappedKey -Id.
                $e.Exception.Message | Should -BeLike '*Import-PicoWrappedKey -Id*-Force*'
                $e.Exception.Message | Should -Not -BeLike '*Restore with -Id*'
            }
            ($errs | ForEach-Object { "$($_.FullyQualifiedErrorId)|$($_.Exception.Message)" }) -join "`n"
        }
        $runs[0] | Should -Be $runs[1]
        ((Get-PicoKey -Session $dst | ForEach-Object { "$($_.Id) $($_.Label) $($_.PublicKeyFingerprint)" }) -join ';') | Should -Be $before
    }

    It 'Import-PicoWrappedKey -WhatIf reports the refusal as an error record' {
        $errs = $null
        Import-PicoWrappedKey -Session $dst -InputObject $bk['01'] -WhatIf -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs.Count | Should -Be 1
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'ImportPicoWrappedKeyIdInUse,*'
        $errs[0].Exception.Message | Should -BeLike "*other ec*"
    }

    It 'Test-PicoKeyBackup -Session reports the refusal as a problem: not Compatible, not Passed' {
        foreach ($id in '01', '02', '03') {
            $t = Test-PicoKeyBackup -Session $dst -InputObject $bk[$id]
            $t.Compatible | Should -BeFalse
            $t.Passed | Should -BeFalse
            $t.DkekMatch | Should -BeTrue
            ($t.Problems -join ' ') | Should -BeLike "*Id $id is already used*"
        }
        # On the token the keys came from they are the very keys: compatible.
        (Test-PicoKeyBackup -Session $src -InputObject $bk['01']).Passed | Should -BeTrue
    }

    It '-Force replaces a key of the same class, and -WhatIf says so' {
        $errs = $null
        Restore-PicoHsm -Session $dst -Directory $setDir -Force -WhatIf -ErrorVariable errs -ErrorAction SilentlyContinue -WarningAction SilentlyContinue
        $errs.Count | Should -Be 0
        $r = @(Restore-PicoHsm -Session $dst -Directory $setDir -Force -Confirm:$false -WarningAction SilentlyContinue)
        $r.Count | Should -Be 3
        (Get-PicoKey -Session $dst -Id '01').PublicKeyFingerprint | Should -Be $bk['01'].PublicKeyFingerprint
        foreach ($id in '01', '02', '03') { Get-IdObjects -Token 'pico-test-d' -Id $id | Should -BeLessOrEqual 2 }
    }
}

Describe 'A restore that was interrupted is finished by a rerun (issue 8, Seen 7 and Seen 4)' {
    It 'restores what is missing, reports what is there, and lists the AES-256 key as AES-256' {
        $t = Reset-Target
        # As Ctrl+C after two keys leaves it.
        Import-PicoWrappedKey -Session $t -InputObject $bk['01'], $bk['03'] -Confirm:$false | Out-Null
        $errs = $null; $warn = $null
        $r = @(Restore-PicoHsm -Session $t -Directory $setDir -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue -WarningVariable warn -WarningAction SilentlyContinue)
        $errs.Count | Should -Be 0
        $r.Count | Should -Be 3
        "$warn" | Should -BeLike '*2 of the 3 keys were already on*'
        $keys = @(Get-PicoKey -Session $t)
        $keys.Count | Should -Be 3 -Because (($keys | ForEach-Object { "$($_.Id) $($_.Class) $($_.Label)" }) -join '; ')
        ($keys | Where-Object Id -EQ '03').Size | Should -Be 256
        ($keys | Where-Object Id -EQ '02').PublicKeyFingerprint | Should -Be $bk['02'].PublicKeyFingerprint
        # Once more: everything is already present, nothing is an error.
        $errs = $null
        @(Restore-PicoHsm -Session $t -Directory $setDir -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue -WarningAction SilentlyContinue).Count | Should -Be 3
        $errs.Count | Should -Be 0
        @(Get-PicoKey -Session $t).Count | Should -Be 3
    }

    It 'Import-PicoWrappedKey of a key already there warns and returns it, without an error' {
        $t = Get-PicoHsmSession | Where-Object TokenLabel -EQ 'pico-test-d' | Select-Object -Last 1
        $errs = $null; $warn = $null
        $k = Import-PicoWrappedKey -Session $t -InputObject $bk['02'] -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue -WarningVariable warn -WarningAction SilentlyContinue
        $errs.Count | Should -Be 0
        "$warn" | Should -BeLike '*already*'
        $k.Id | Should -Be '02'
        Get-IdObjects -Token 'pico-test-d' -Id '02' | Should -Be 2   # the private key and its public key, once
    }
}

Describe 'No restore gives a key the id the DKEK holds (issue 8, Seen 2, restore half)' {
    It 'Restore-PicoHsm onto a token whose DKEK took id 01 refuses key 01 and restores the others' {
        $t = Reset-Target -DkekId '01'
        $errs = $null
        $r = @(Restore-PicoHsm -Session $t -Directory $setDir -Force -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue -WarningAction SilentlyContinue)
        $r.Count | Should -Be 2
        $errs.Count | Should -Be 1
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'RestorePicoHsmIdIsDkek,*'
        $errs[0].Exception.Message | Should -BeLike '*DKEK*Import-PicoWrappedKey -Id*'
        Get-IdObjects -Token 'pico-test-d' -Id '01' | Should -Be 1
        (Get-PicoDkek -Session $t).KcvVerified | Should -BeTrue
        # The refused key goes to a free id with Import-PicoWrappedKey -Id, as the message says.
        (Import-PicoWrappedKey -Session $t -InputObject $bk['01'] -Id '0101' -Confirm:$false).PublicKeyFingerprint | Should -Be $bk['01'].PublicKeyFingerprint
    }
}
