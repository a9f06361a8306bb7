# The Pico HSM / SmartCard-HSM path, end to end over the real PC/SC stack: pcscd with vsmartcard's
# vpcd reader, the card simulator as the card, OpenSC's opensc-pkcs11 beside the module's own card
# channel, and OpenSC's sc-hsm-tool for interoperability in both directions.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:Work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-card-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))
    $script:Vectors = Get-TestVectorsFolder
    $script:OpenSc = Get-OpenScModulePath
    $script:PcscdPid = Start-PcscDaemon
    $script:Sim = Start-CardSimulator -Port 35963 -Arguments '--blank'
    $script:Reader = $Sim.Reader
    $script:SoPin = ConvertTo-SecureString '3537363231383830' -AsPlainText -Force

    function Invoke-ScHsmTool {
        param([string[]] $Arguments)
        $o = & timeout 600 sc-hsm-tool --reader 0 @Arguments 2>&1
        [pscustomobject]@{ Output = ($o -join "`n"); ExitCode = $LASTEXITCODE }
    }
    function Reset-Card([int] $Shares) {
        Disconnect-PicoHsm -All
        Initialize-PicoHsm -Reader $Reader -SoPin $SoPin -Pin $Pin -DkekShareCount $Shares -Confirm:$false -WarningAction SilentlyContinue
    }
    function Get-SpkiHash([string] $DerPath) { (Get-FileHash -Algorithm SHA256 $DerPath).Hash.ToLowerInvariant() }
}
AfterAll {
    Disconnect-PicoHsm -All
    Stop-CardSimulator $Sim
    Stop-PcscDaemon $PcscdPid
    Remove-Item $Work -Recurse -Force -ErrorAction Ignore
}

Describe 'A Pico HSM behind OpenSC: DKEK, keys, backup and restore through the card channel' {
    It 'initialises the device, showing what will be lost, and sc-hsm-tool agrees' {
        $d = Reset-Card 1
        $d | Should -BeOfType ([PicoHsm.Devices.PicoDkek])
        $d.SharesTotal | Should -Be 1
        $d.SharesOutstanding | Should -Be 1
        $d.Present | Should -BeFalse
        $d.KeyCheckValue | Should -BeNullOrEmpty
        $r = Invoke-ScHsmTool @()
        $r.Output | Should -Match 'DKEK shares\s*:\s*1'
        $r.Output | Should -Match '1 share\(s\) still missing'
    }

    It 'connects through OpenSC and attaches the card channel of the same reader' {
        $script:s = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $s.DeviceFamily | Should -Be 'ScHsmCard'
        $s.ReaderName | Should -Be $Reader
        # OpenSC names the maker from the card: CardContact for a SmartCard-HSM, the author for a Pico HSM.
        $s.Manufacturer | Should -Match 'CardContact|Henarejos'
        $s.IsLoggedIn | Should -BeTrue
    }

    It 'creates a 2-of-3 DKEK, imports it whole as the device''s one share, and reports its KCV (never zeros)' {
        $script:dk = New-PicoDkek -ShareCount 3 -Threshold 2 -OutputDirectory (Join-Path $Work 'shares') -SharePassword (New-TestPasswords 3 -Prefix card) -Confirm:$false
        $dk.DeviceFamily | Should -Be 'ScHsmCard'
        $g = @(Get-PicoDkek)
        $g[0].Present | Should -BeTrue
        $g[0].KeyCheckValue | Should -Be $dk.KeyCheckValue
        $g[0].KeyCheckValue | Should -Not -Be '0000000000000000'
        $g[0].SharesOutstanding | Should -Be 0
        $g[0].KeyDomain | Should -Be 0
        # The card itself, asked with OpenSC's own tool after a PIN verify, gives the same KCV.
        $o = & opensc-tool --reader 0 -s '00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01' -s '00 20 00 81 06 36 34 38 32 31 39' -s '80 52 00 00' 2>&1
        # The answer: shares total (01), outstanding (00), KCV.
        ($o -join ' ') -replace '\s', '' | Should -Match ('0100' + $dk.KeyCheckValue.ToUpperInvariant())
    }

    It 'lists keys made with pkcs11-tool with their key reference and exportability' {
        foreach ($spec in @(@('EC:prime256v1', '21', 't-ec'), @('rsa:2048', '22', 't-rsa'))) {
            $o = & timeout 600 pkcs11-tool --module $OpenSc --login --pin $PinText --keypairgen --key-type $spec[0] --id $spec[1] --label $spec[2] 2>&1
            $LASTEXITCODE | Should -Be 0 -Because ($o -join "`n")
        }
        $keys = @(Get-PicoKey)
        $keys.Count | Should -Be 2
        $ec = $keys | Where-Object Id -EQ '21'
        $ec.Label | Should -Be 't-ec'
        $ec.KeyType | Should -Be 'Ec'
        $ec.KeyReference | Should -BeGreaterThan 0
        $ec.Exportable | Should -BeTrue
        $der = Join-Path $Work 'ec.pub.der'
        & pkcs11-tool --module $OpenSc --read-object --type pubkey --id 21 -o $der 2>&1 | Out-Null
        $ec.PublicKeyFingerprint | Should -Be (Get-SpkiHash $der)
        ($keys | Where-Object Id -EQ '22').Size | Should -Be 2048
    }

    It 'exports sc-hsm-tool files that sc-hsm-tool restores' {
        $script:exported = @(Get-PicoKey | Export-PicoWrappedKey -Directory (Join-Path $Work 'wky'))
        $exported.Count | Should -Be 2
        $exported | ForEach-Object { $_.Format | Should -Be 'ScHsmTool'; $_.Kcv | Should -Be $dk.KeyCheckValue; $_.Path | Should -BeLike '*.wky' }
        $ecFile = ($exported | Where-Object Id -EQ '21').Path
        $r = Invoke-ScHsmTool @('--unwrap-key', $ecFile, '--key-reference', '30', '--pin', $PinText, '--force')
        $r.ExitCode | Should -Be 0 -Because $r.Output
        (Get-PicoKey | Where-Object KeyReference -EQ 30).PublicKeyFingerprint | Should -Be ($exported | Where-Object Id -EQ '21').PublicKeyFingerprint
    }

    It 'restores what sc-hsm-tool wraps, to a chosen key reference and id' {
        $theirs = Join-Path $Work 'theirs.wky'
        $ref = (Get-PicoKey -Id '22').KeyReference
        $r = Invoke-ScHsmTool @('--wrap-key', $theirs, '--key-reference', "$ref", '--pin', $PinText)
        $r.ExitCode | Should -Be 0 -Because $r.Output
        $b = Get-PicoKeyBackup -Path $theirs
        $b.Kcv | Should -Be $dk.KeyCheckValue
        $b.Id | Should -Be '22'
        $k = Import-PicoWrappedKey -Path $theirs -KeyReference 40 -Id 'c2' -Label 'rsa-copy' -Confirm:$false
        $k.KeyReference | Should -Be 40
        $k.Id | Should -Be 'c2'
        $k.Label | Should -Be 'rsa-copy'
        $k.PublicKeyFingerprint | Should -Be (Get-PicoKey -Id '22').PublicKeyFingerprint
    }

    It 'refuses an occupied key reference or a used id unless told, before the card changes' {
        $theirs = Join-Path $Work 'theirs.wky'
        $before = @(Get-PicoKey).Count
        $e = { Import-PicoWrappedKey -Path $theirs -KeyReference 40 -Id 'c3' -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoWrappedKey*'
        $e.Exception.Message | Should -BeLike '*40*'
        $e.Exception.Message | Should -BeLike "*'rsa-copy'*-Force*"   # names the key it would destroy
        # another key (the EC key t-ec) holds id 21: refused, naming it and -Force
        $e = { Import-PicoWrappedKey -Path $theirs -Id 21 -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoWrappedKeyIdInUse,*'
        $e.Exception.Message | Should -BeLike '*21*-Force*'
        @(Get-PicoKey).Count | Should -Be $before
        # the very key at its own id: already present, nothing changes (a rerun after a crash completes)
        (Import-PicoWrappedKey -Path $theirs -Confirm:$false).KeyReference | Should -Be (Get-PicoKey -Id '22').KeyReference
        @(Get-PicoKey).Count | Should -Be $before
        (Import-PicoWrappedKey -Path $theirs -KeyReference 40 -Id 'c3' -Force -Confirm:$false).KeyReference | Should -Be 40
        @(Get-PicoKey).Count | Should -Be $before
    }

    It 'removes a key with its PRKD and certificate (Remove-PicoKey), freeing its key reference' {
        $theirs = Join-Path $Work 'theirs.wky'
        $before = @(Get-PicoKey).Count
        Get-PicoKey | Where-Object KeyReference -EQ 40 | Remove-PicoKey -WhatIf
        @(Get-PicoKey).Count | Should -Be $before
        Get-PicoKey | Where-Object KeyReference -EQ 40 | Remove-PicoKey -Confirm:$false
        @(Get-PicoKey).Count | Should -Be ($before - 1)
        @(Get-PicoKey | Where-Object KeyReference -EQ 40).Count | Should -Be 0
        (Import-PicoWrappedKey -Path $theirs -KeyReference 40 -Id 'c3' -Confirm:$false).KeyReference | Should -Be 40
        @(Get-PicoKey).Count | Should -Be $before
        @(Get-PicoKey | Where-Object IsOrphan).Count | Should -Be 0
    }

    It 'proves each backup restorable on the card, leaving no temporary key' {
        $before = @(Get-PicoKey).Count
        $results = @($exported | Test-PicoKeyBackup -RestoreTest)
        $results | ForEach-Object { $_.Restorable | Should -BeTrue -Because ($_.Problems -join '; '); $_.DkekMatch | Should -BeTrue }
        @(Get-PicoKey).Count | Should -Be $before
    }

    It 'backs the device up and restores it onto the re-initialised device from 2 of the 3 shares' {
        $set = Backup-PicoHsm -Directory (Join-Path $Work 'card-backup')
        $set.KeyCount | Should -Be @(Get-PicoKey).Count
        $prints = @{}; Get-PicoKey | ForEach-Object { $prints[$_.Id] = $_.PublicKeyFingerprint }
        Reset-Card 1 | Out-Null
        $script:s = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        @(Get-PicoKey).Count | Should -Be 0
        $files = $dk.ShareFiles
        $pw = New-TestPasswords 3 -Prefix card
        (Import-PicoDkek -Path $files[2], $files[0] -SharePassword $pw[2], $pw[0] -Confirm:$false).KeyCheckValue | Should -Be $dk.KeyCheckValue
        # sc-hsm-tool restored a second copy of key 21 with its description as it was (same id, same
        # public key): the module restores the first, and the second is the same key, already present.
        $errs = $null
        Restore-PicoHsm -Directory $set.Directory -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue | Out-Null
        $errs.Count | Should -Be 0 -Because ($errs | Out-String)
        @(Get-PicoKey).Count | Should -Be ($set.KeyCount - 1)
        foreach ($k in Get-PicoKey) { $k.PublicKeyFingerprint | Should -Be $prints[$k.Id] }
    }
}

Describe 'Files made by the real Pico HSM firmware and by sc-hsm-tool' {
    It 'imports the two sc-hsm-tool shares of the vectors into a 2-share device: KCV d5c1a339cd295797' {
        Reset-Card 2 | Out-Null
        $script:s = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $pw = 'share-one-pass', 'share-two-pass' | ForEach-Object { ConvertTo-SecureString $_ -AsPlainText -Force }
        $d = @(Import-PicoDkek -Path (Join-Path $Vectors 'dkek-share-1.pbe'), (Join-Path $Vectors 'dkek-share-2.pbe') -SharePassword $pw -Confirm:$false)
        $d[0].KeyCheckValue | Should -Be 'd5c1a339cd295797'
        $d[0].SharesOutstanding | Should -Be 0
    }

    It 'restores every vector key, and each matches its public key' {
        foreach ($v in @(@('rsa2048.wky', 'rsa2048.pub.der'), @('ec256.wky', 'ec256.pub.der'), @('offline-rsa2048-crt.wky', 'offline-rsa2048-crt.pub.der'))) {
            $id = 'e' + [array]::IndexOf(@('rsa2048.wky', 'ec256.wky', 'offline-rsa2048-crt.wky'), $v[0])
            $k = Import-PicoWrappedKey -Path (Join-Path $Vectors $v[0]) -Id $id -Label $v[0] -Confirm:$false
            $k.PublicKeyFingerprint | Should -Be (Get-SpkiHash (Join-Path $Vectors $v[1])) -Because $v[0]
        }
        $aes = Import-PicoWrappedKey -Path (Join-Path $Vectors 'aes256.wky') -Confirm:$false
        $aes.KeyType | Should -Be 'Aes'
    }

    It 'proves the vector backups restorable on the card' {
        $r = @(Get-ChildItem $Vectors -Filter *.wky | Test-PicoKeyBackup -RestoreTest)
        $r.Count | Should -Be 4
        $r | ForEach-Object { $_.Restorable | Should -BeTrue -Because "$($_.Path): $($_.Problems -join '; ')" }
    }

    It 'checks Pico backups offline from the shares alone, and catches a changed byte' {
        $pw = 'share-one-pass', 'share-two-pass' | ForEach-Object { ConvertTo-SecureString $_ -AsPlainText -Force }
        $bad = Join-Path $Work 'tampered.wky'
        $bytes = [IO.File]::ReadAllBytes((Join-Path $Vectors 'ec256.wky')); $bytes[100] = $bytes[100] -bxor 1; [IO.File]::WriteAllBytes($bad, $bytes)
        $files = @((Get-ChildItem $Vectors -Filter *.wky).FullName) + $bad
        $r = @(Test-PicoKeyBackup -Path $files -SharePath (Join-Path $Vectors 'dkek-share-1.pbe'), (Join-Path $Vectors 'dkek-share-2.pbe') -SharePassword $pw)
        $r.Count | Should -Be 5
        ($r | Where-Object Path -EQ $bad).Passed | Should -BeFalse
        $r | Where-Object Path -NE $bad | ForEach-Object { $_.Passed | Should -BeTrue -Because "$($_.Path): $($_.Problems -join '; ')" }
    }

    It 'opens the threshold-password share file with any two password shares' {
        Reset-Card 1 | Out-Null
        $script:s = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $d = @(Import-PicoDkek -Path (Join-Path $Vectors 'dkek-share-threshold.pbe') -PasswordSharePrime 'c0:1b:aa:f3:4b:97:a7:03' -PasswordShare ('1:3f:3e:fa:a8:51:77:40:0b', '3:82:ea:95:2e:f3:6a:71:8e' | ConvertTo-SecureString -AsPlainText -Force) -Confirm:$false)
        $share = [Convert]::FromHexString('e5d17f37c64896520115dd3b6eac65ed792089b9de7e1ea1472e97144af6c569')
        $d[0].KeyCheckValue | Should -Be ([Convert]::ToHexString([Security.Cryptography.SHA256]::HashData($share)).Substring(0, 16).ToLowerInvariant())
    }

    It 'imports a share sc-hsm-tool creates, and sc-hsm-tool imports the shares the module writes' {
        $pbe = Join-Path $Work 'tool-share.pbe'
        $r = & timeout 600 sc-hsm-tool --create-dkek-share $pbe --password 'tool-made-password' 2>&1
        $LASTEXITCODE | Should -Be 0 -Because ($r -join "`n")
        Reset-Card 1 | Out-Null
        $script:s = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $d = @(Import-PicoDkek -Path $pbe -SharePassword (ConvertTo-SecureString 'tool-made-password' -AsPlainText -Force) -Confirm:$false)
        $d[0].Present | Should -BeTrue
        # A device holding one share of another DKEK is not given a new one on top.
        Reset-Card 2 | Out-Null
        $r = Invoke-ScHsmTool @('--import-dkek-share', (Join-Path $Vectors 'dkek-share-1.pbe'), '--password', 'share-one-pass')
        $r.ExitCode | Should -Be 0 -Because $r.Output
        $script:s = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $e = { New-PicoDkek -Format ScHsmTool -ShareCount 2 -OutputDirectory (Join-Path $Work 'refused') -SharePassword (New-TestPasswords 2 -Prefix refused) -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'NewPicoDkekSharesPending,*'
        Test-Path (Join-Path $Work 'refused') | Should -BeFalse
        # The other way: the module writes sc-hsm-tool shares; sc-hsm-tool imports them into a 2-share device.
        Reset-Card 2 | Out-Null
        $pw = New-TestPasswords 2 -Prefix tool
        $made = New-PicoDkek -Format ScHsmTool -ShareCount 2 -OutputDirectory (Join-Path $Work 'tool-shares') -SharePassword $pw -NoImport -Confirm:$false
        $made.ShareFiles | ForEach-Object { $_ | Should -BeLike '*.pbe' }
        for ($i = 0; $i -lt 2; $i++) {
            $r = Invoke-ScHsmTool @('--import-dkek-share', $made.ShareFiles[$i], '--password', "tool-password-$($i + 1)")
            $r.ExitCode | Should -Be 0 -Because $r.Output
        }
        $script:s = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        (@(Get-PicoDkek))[0].KeyCheckValue | Should -Be $made.KeyCheckValue
    }
}

Describe 'A card-only session (pcscd, no PKCS#11 module)' {
    It 'connects with -Reader alone and does the DKEK work' {
        Disconnect-PicoHsm -All
        $c = Connect-PicoHsm -Reader $Reader -Pin $Pin
        $c.DeviceFamily | Should -Be 'ScHsmCard'
        $c.HasPkcs11 | Should -BeFalse
        $c.IsLoggedIn | Should -BeTrue
        $c.SerialNumber | Should -Not -BeNullOrEmpty
        (@(Get-PicoDkek -Session $c))[0].KeyCheckValue | Should -Match '^[0-9a-f]{16}$'
        { Get-PicoKey -Session $c } | Should -Not -Throw
        Disconnect-PicoHsm -Session $c
        $c.IsOpen | Should -BeFalse
    }
}

Describe 'PIN tries and a card pulled out' {
    It 'refuses to spend the last PIN try without -Force, and a wrong PIN says tries are limited' {
        Disconnect-PicoHsm -All
        $bad = ConvertTo-SecureString '000000' -AsPlainText -Force
        foreach ($i in 1..2) {
            $e = { Connect-PicoHsm -Reader $Reader -Pin $bad -ErrorAction Stop } | Should -Throw -PassThru
            $e.CategoryInfo.Category | Should -Be 'AuthenticationError'
            $e.Exception.Message | Should -Not -BeLike '*000000*'
        }
        $e = { Connect-PicoHsm -Reader $Reader -Pin $Pin -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ConnectPicoHsmPinFinalTry,*'
        $e.Exception.Message | Should -BeLike '*-Force*'
        # The right PIN with -Force logs in and resets the counter.
        (Connect-PicoHsm -Reader $Reader -Pin $Pin -Force).IsLoggedIn | Should -BeTrue
        Disconnect-PicoHsm -All
        (Connect-PicoHsm -Reader $Reader -Pin $Pin).IsLoggedIn | Should -BeTrue
        Disconnect-PicoHsm -All
    }

    It 'reports a card that went away as a clear error, without hanging' {
        $c = Connect-PicoHsm -Reader $Reader -Pin $Pin
        Stop-CardSimulator $Sim
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $e = { Get-PicoDkek -Session $c -ErrorAction Stop } | Should -Throw -PassThru
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 60
        $e.FullyQualifiedErrorId | Should -BeLike 'GetPicoDkek*'
        $e.Exception.Message | Should -Match 'card|reader'
        Disconnect-PicoHsm -All
        # Back to a card for the tests that follow.
        $script:Sim = Start-CardSimulator -Port 35963 -Arguments '--blank'
    }
}

Describe 'OpenSC tools against the simulator' {
    It 'replays every recorded APDU of the real firmware' {
        $o = & bash (Join-Path $PSScriptRoot '../pcsc/replay-traces.sh') 2>&1
        $LASTEXITCODE | Should -Be 0 -Because ($o | Select-Object -Last 20 | Out-String)
    }

    It 'passes the OpenSC interoperability script (opensc-tool, sc-hsm-tool, pkcs11-tool, pkcs15-tool)' {
        $env:VPCD_PORT = '35964'
        try { $o = & bash (Join-Path $PSScriptRoot '../pcsc/opensc-interop.sh') 2>&1 }
        finally { Remove-Item Env:VPCD_PORT }
        $LASTEXITCODE | Should -Be 0 -Because ($o | Select-Object -Last 30 | Out-String)
    }
}
