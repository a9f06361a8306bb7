BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:Passwords = New-TestPasswords -Count 5
    Remove-TestObjects -Token 'pico-test-c'
    Remove-TestObjects -Token 'pico-test-d'
    Remove-TestObjects -Token 'pico-test-e'
    # TestDrive is emptied after each Describe; the shares must outlive the first one.
    $script:Work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-dkek-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))
}
AfterAll {
    Remove-Item $Work -Recurse -Force -ErrorAction Ignore
    Disconnect-PicoHsm -All
    'pico-test-c', 'pico-test-d', 'pico-test-e' | ForEach-Object { Remove-TestObjects -Token $_ }
}

Describe 'New-PicoDkek' {
    BeforeAll {
        $script:sc = Connect-TestToken 'pico-test-c'
        $script:shareDir = Join-Path $Work 'shares'
        $script:dkek = New-PicoDkek -Session $sc -ShareCount 5 -Threshold 3 -OutputDirectory $shareDir -SharePassword $Passwords -Confirm:$false
    }

    It 'returns a typed PicoDkek with the KCV, label, id, n, m and the share files' {
        $dkek | Should -BeOfType ([PicoHsm.Devices.PicoDkek])
        $dkek.KeyCheckValue | Should -Match '^[0-9a-f]{16}$'
        $dkek.Label | Should -Be 'dkek'
        $dkek.Id | Should -Be '646b656b'
        $dkek.Threshold | Should -Be 3
        $dkek.ShareCount | Should -Be 5
        $dkek.Present | Should -BeTrue
        $dkek.ShareFiles.Count | Should -Be 5
        $dkek.ShareFiles | ForEach-Object { Test-Path $_ | Should -BeTrue }
        Split-Path -Leaf $dkek.ShareFiles[1] | Should -Be 'dkek-share-2-of-5.dkekshare'
    }

    It 'writes share files readable by the owner only' -Skip:(-not $IsLinux) {
        foreach ($f in $dkek.ShareFiles) { (Get-Item $f).UnixFileMode | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite') }
    }

    It 'puts the DKEK on the token where Get-PicoDkek proves its KCV' {
        $d = Get-PicoDkek -Session $sc
        $d.Present | Should -BeTrue
        $d.KeyCheckValue | Should -Be $dkek.KeyCheckValue
        $d.KcvVerified | Should -BeTrue
        $d.Label | Should -Be 'dkek'
        $d.Id | Should -Be '646b656b'
        $d.Status | Should -Be 'Verified'
    }

    It 'makes the DKEK a sensitive, never-extractable wrap/unwrap-only AES-256 key' {
        $text = (& pkcs11-tool --module $SoftHsm --token-label 'pico-test-c' --login --pin $PinText --list-objects --type secrkey 2>&1) -join "`n"
        $text | Should -Match 'AES length 32'
        $text | Should -Match 'Usage:\s+wrap, unwrap\s*\n'
        # pkcs11-tool lists "extractable" under Access only when CKA_EXTRACTABLE is true.
        $text | Should -Match '(?m)^\s*Access:\s+sensitive\s*$'
    }

    It 'does not list the DKEK among the keys to back up' {
        @(Get-PicoKey -Session $sc | Where-Object Label -EQ 'dkek').Count | Should -Be 0
    }

    It 'refuses a second DKEK on a token that has one' {
        $e = { New-PicoDkek -Session $sc -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $TestDrive 'x') -SharePassword (New-TestPasswords 2) -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'NewPicoDkekDkekPresent,*'
        $e.CategoryInfo.Category | Should -Be 'ResourceExists'
        Test-Path (Join-Path $TestDrive 'x') | Should -BeFalse
    }

    It 'does nothing with -WhatIf' {
        $t = Connect-TestToken 'pico-test-e'
        $dir = Join-Path $TestDrive 'whatif'
        New-PicoDkek -Session $t -ShareCount 3 -Threshold 2 -OutputDirectory $dir -SharePassword (New-TestPasswords 3) -WhatIf
        Test-Path $dir | Should -BeFalse
        (Get-PicoDkek -Session $t).Present | Should -BeFalse
    }

    It 'writes only the shares with -NoImport' {
        $t = Connect-TestToken 'pico-test-e'
        $d = New-PicoDkek -Session $t -ShareCount 3 -Threshold 2 -OutputDirectory (Join-Path $Work 'offline') -SharePassword (New-TestPasswords 3) -NoImport -Confirm:$false
        $d.ShareFiles.Count | Should -Be 3
        $d.Present | Should -BeFalse
        (Get-PicoDkek -Session $t).Present | Should -BeFalse
    }

    It 'refuses to overwrite share files without -Force, before touching the token' {
        $t = Connect-TestToken 'pico-test-e'
        $e = { New-PicoDkek -Session $t -ShareCount 3 -Threshold 2 -OutputDirectory (Join-Path $Work 'offline') -SharePassword (New-TestPasswords 3 -Prefix other) -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'NewPicoDkekShareFileExists,*'
        (Get-PicoDkek -Session $t).Present | Should -BeFalse
    }

    It 'rejects a threshold above the share count, short passwords, and a wrong number of passwords' {
        $t = Connect-TestToken 'pico-test-e'
        $e = { New-PicoDkek -Session $t -ShareCount 2 -Threshold 3 -OutputDirectory (Join-Path $TestDrive 'bad') -SharePassword (New-TestPasswords 2) -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'NewPicoDkekThresholdTooLarge,*'
        $short = 1..3 | ForEach-Object { ConvertTo-SecureString "short$_" -AsPlainText -Force }
        $e = { New-PicoDkek -Session $t -ShareCount 3 -Threshold 2 -OutputDirectory (Join-Path $TestDrive 'bad') -SharePassword $short -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'NewPicoDkekWeakPassword,*'
        $e = { New-PicoDkek -Session $t -ShareCount 3 -Threshold 2 -OutputDirectory (Join-Path $TestDrive 'bad') -SharePassword (New-TestPasswords 2) -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'NewPicoDkekPasswordCountMismatch,*'
        Get-ChildItem (Join-Path $TestDrive 'bad') -ErrorAction Ignore | Should -BeNullOrEmpty
    }

    It 'fails at once without passwords in a non-interactive session' {
        $t = Connect-TestToken 'pico-test-e'
        $e = { New-PicoDkek -Session $t -ShareCount 3 -Threshold 2 -OutputDirectory (Join-Path $TestDrive 'nopw') -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'NewPicoDkekPasswordRequired,*'
        $e.Exception.Message | Should -BeLike '*-SharePassword*'
    }
}

Describe 'Import-PicoDkek' {
    BeforeAll {
        $script:files = (Get-ChildItem (Join-Path $Work 'shares') -Filter *.dkekshare | Sort-Object Name).FullName
        $script:kcv = (Get-PicoDkek -Session (Get-PicoHsmSession | Where-Object TokenLabel -EQ 'pico-test-c' | Select-Object -First 1)).KeyCheckValue
        $script:sd = Connect-TestToken 'pico-test-d'
    }

    It 'refuses fewer than n shares before asking for any password' {
        $e = { Import-PicoDkek -Session $sd -Path $files[0], $files[1] -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoDkekNotEnoughShares,*'
        $e.Exception.Message | Should -BeLike '*needs 3 of its 5*'
    }

    It 'refuses two files with one share index' {
        $copy = Join-Path $TestDrive 'copy-of-share-1.dkekshare'
        Copy-Item $files[0] $copy
        $e = { Import-PicoDkek -Session $sd -Path $files[0], $copy, $files[2] -SharePassword $Passwords[0], $Passwords[0], $Passwords[2] -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoDkekDuplicateShare,*'
    }

    It 'refuses shares of two different DKEKs' {
        $other = (Get-ChildItem (Join-Path $Work 'offline') -Filter *.dkekshare | Sort-Object Name).FullName
        $e = { Import-PicoDkek -Session $sd -Path $files[0], $files[1], $other[2] -SharePassword (New-TestPasswords 3) -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoDkekSharesOfDifferentDkeks,*'
    }

    It 'names the file whose password is wrong, and changes nothing' {
        $wrong = @($Passwords[0], (ConvertTo-SecureString 'not-the-right-password' -AsPlainText -Force), $Passwords[2])
        $e = { Import-PicoDkek -Session $sd -Path $files[0], $files[1], $files[2] -SharePassword $wrong -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoDkekShareFileWrongPasswordOrTampered,*'
        $e.CategoryInfo.Category | Should -Be 'AuthenticationError'
        $e.Exception.Message | Should -BeLike "*$(Split-Path -Leaf $files[1])*"
        $e.Exception.Message | Should -Not -BeLike '*not-the-right-password*'
        (Get-PicoDkek -Session $sd).Present | Should -BeFalse
    }

    It 'says an empty password is empty, and that one password share is not enough' {
        $empty = [securestring]::new()
        $e = { Import-PicoDkek -Session $sd -Path $files[0], $files[1], $files[2] -SharePassword $Passwords[0], $empty, $Passwords[2] -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoDkekPasswordEmpty,*'
        $e.Exception.Message | Should -BeLike '*share 2*'
        $vectors = Get-TestVectorsFolder
        $e = { Import-PicoDkek -Session $sd -Path (Join-Path $vectors 'dkek-share-threshold.pbe') -PasswordSharePrime 'c0:1b:aa:f3:4b:97:a7:03' -PasswordShare (ConvertTo-SecureString '1:3f:3e:fa:a8:51:77:40:0b' -AsPlainText -Force) -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoDkekPasswordSharesInvalid,*'
        $e.Exception.Message | Should -Not -BeLike '*3f:3e:fa*'
        (Get-PicoDkek -Session $sd).Present | Should -BeFalse
    }

    It 'detects a tampered share file' {
        $bad = Join-Path $TestDrive 'tampered.dkekshare'
        $bytes = [IO.File]::ReadAllBytes($files[3])
        $bytes[$bytes.Length - 5] = $bytes[$bytes.Length - 5] -bxor 0x01
        [IO.File]::WriteAllBytes($bad, $bytes)
        $e = { Import-PicoDkek -Session $sd -Path $files[0], $files[1], $bad -SharePassword $Passwords[0], $Passwords[1], $Passwords[3] -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoDkekShareFile*'
        $e.Exception.Message | Should -BeLike '*tampered.dkekshare*'
        (Get-PicoDkek -Session $sd).Present | Should -BeFalse
    }

    It 'rebuilds the DKEK from any three shares and imports it with the same KCV' {
        $d = Import-PicoDkek -Session $sd -Path $files[4], $files[1], $files[3] -SharePassword $Passwords[4], $Passwords[1], $Passwords[3] -Confirm:$false
        $d | Should -BeOfType ([PicoHsm.Devices.PicoDkek])
        $d.KeyCheckValue | Should -Be $kcv
        $d.KcvVerified | Should -BeTrue
        (Get-PicoDkek -Session $sd).KeyCheckValue | Should -Be $kcv
    }

    It 'is a no-op with a warning when the token already holds the same DKEK' {
        $w = $null
        $d = Import-PicoDkek -Session $sd -Path $files[0], $files[2], $files[4] -SharePassword $Passwords[0], $Passwords[2], $Passwords[4] -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue
        $w | Should -Not -BeNullOrEmpty
        "$w" | Should -BeLike '*already holds*'
        $d.Status | Should -Be 'Already present'
    }

    It 'refuses shares of another DKEK on a token that has one' {
        $other = (Get-ChildItem (Join-Path $Work 'offline') -Filter *.dkekshare | Sort-Object Name).FullName
        $e = { Import-PicoDkek -Session $sd -Path $other[0], $other[1] -SharePassword (New-TestPasswords 2) -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoDkekOtherDkekPresent,*'
        $e.CategoryInfo.Category | Should -Be 'ResourceExists'
    }
}

Describe 'The DKEK id and the ceremony on a token with keys 01-04' {
    BeforeAll {
        Remove-TestObjects -Token 'pico-test-e'
        $script:te = Connect-TestToken 'pico-test-e'
        foreach ($i in 1..4) { $null = New-PicoKey Ec -Session $te -Id "0$i" -Label "key $i" -Confirm:$false }
    }
    AfterAll {
        Remove-TestObjects -Token 'pico-test-e'
    }

    It 'refuses an explicit -Id a key has before any password is asked and before any share file exists' {
        $dir = Join-Path $TestDrive 'taken'
        # No -SharePassword in a non-interactive run: the id must be the error, not the missing passwords.
        $e = { New-PicoDkek -Session $te -ShareCount 5 -Threshold 3 -OutputDirectory $dir -Id 01 -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'NewPicoDkekIdInUse,*'
        $e.Exception.Message | Should -BeLike '*key 1*'
        Get-ChildItem $dir -ErrorAction Ignore | Should -BeNullOrEmpty
        (Get-PicoDkek -Session $te).Present | Should -BeFalse
    }

    It 'refuses a password repeated across custodians as one error naming both shares, writing nothing' {
        $dir = Join-Path $TestDrive 'repeat'
        $pw = New-TestPasswords 5
        $pw[3] = $pw[1]
        $e = { New-PicoDkek -Session $te -ShareCount 5 -Threshold 3 -OutputDirectory $dir -SharePassword $pw -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'NewPicoDkekDuplicatePassword,*'
        $e.Exception.Message | Should -BeLike '*share 4 of 5*share 2*'
        $e.Exception.Message | Should -Not -BeLike '*passwords*Parameter name*'
        Get-ChildItem $dir -ErrorAction Ignore | Should -BeNullOrEmpty
    }

    It 'removes the share files it wrote when the token refuses the import after them' {
        # A public key alone at id 05 is no key Get-PicoKey lists, so only the token's own check at
        # the import finds the clash, after the shares were written.
        $null = New-PicoKey Ec -Session $te -Id 05 -Label 'half a key' -Confirm:$false
        & pkcs11-tool --module $SoftHsm --token-label 'pico-test-e' --login --pin $PinText --delete-object --type privkey --id 05 2>&1 | Out-Null
        $dir = Join-Path $TestDrive 'refused'
        $w = $null
        $e = { New-PicoDkek -Session $te -ShareCount 3 -Threshold 2 -OutputDirectory $dir -Id 05 -SharePassword (New-TestPasswords 3) -Confirm:$false -ErrorAction Stop -WarningVariable w -WarningAction SilentlyContinue } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'NewPicoDkekIdInUse,*'
        Get-ChildItem $dir -Force | Should -BeNullOrEmpty
        (Get-PicoDkek -Session $te).Present | Should -BeFalse
        & pkcs11-tool --module $SoftHsm --token-label 'pico-test-e' --login --pin $PinText --delete-object --type pubkey --id 05 2>&1 | Out-Null
    }

    It 'creates the DKEK 3-of-5 at an id no object uses, leaving keys 01-04 as they were' {
        $dir = Join-Path $Work 'keys-token'
        $d = New-PicoDkek -Session $te -ShareCount 5 -Threshold 3 -OutputDirectory $dir -SharePassword (New-TestPasswords 5 -Prefix keys) -Confirm:$false
        $d.Id | Should -Be '646b656b'
        (Get-PicoDkek -Session $te).Id | Should -Be '646b656b'
        (Get-PicoDkek -Session $te).KcvVerified | Should -BeTrue
        (Get-PicoKey -Session $te).Id | Sort-Object | Should -Be @('01', '02', '03', '04')
        @(Get-ChildItem $dir -Filter *.dkekshare).Count | Should -Be 5
    }

    It 'recognises the DKEK the token holds from the share headers, without asking for any password' {
        $files = (Get-ChildItem (Join-Path $Work 'keys-token') -Filter *.dkekshare | Sort-Object Name).FullName
        $w = $null
        $d = Import-PicoDkek -Session $te -Path $files[0], $files[1], $files[2] -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue
        $d.Status | Should -Be 'Already present'
        "$w" | Should -BeLike '*already holds*no password*'
    }
}

Describe 'Update-PicoDkekShare' {
    It 're-splits the same DKEK for new custodians and says the old shares stay valid' {
        $files = (Get-ChildItem (Join-Path $Work 'shares') -Filter *.dkekshare | Sort-Object Name).FullName
        $kcv = (Get-DkekKcvFromFile $files[0])
        $new = New-TestPasswords 3 -Prefix newcustodian
        $w = $null
        $d = Update-PicoDkekShare -Path $files[0], $files[1], $files[2] -SharePassword $Passwords[0], $Passwords[1], $Passwords[2] -ShareCount 3 -Threshold 2 -OutputDirectory (Join-Path $TestDrive 'rotated') -NewSharePassword $new -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue
        $d.KeyCheckValue | Should -Be $kcv
        $d.ShareFiles.Count | Should -Be 3
        "$w" | Should -BeLike '*stay valid*destroy*'
        # the new shares rebuild the same DKEK on a fresh token
        $t = Connect-TestToken 'pico-test-e'
        (Import-PicoDkek -Session $t -Path $d.ShareFiles[0], $d.ShareFiles[2] -SharePassword $new[0], $new[2] -Confirm:$false).KeyCheckValue | Should -Be $kcv
    }
}
