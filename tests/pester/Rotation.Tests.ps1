# Custodians come and go (issue 13): sc-hsm-tool share files get new passwords or new password shares
# and OpenSC's own sc-hsm-tool imports every file written into the card simulator; a whole new group
# takes over by converting old backups to a new DKEK offline, restored on the simulator and on SoftHSM2,
# whose restored keys sign like the originals. Run under flock /tmp/picohsm-card.lock (pcscd/vpcd).
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:Work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-rotation-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))
    $script:Vectors = Get-TestVectorsFolder
    $script:OpenSc = Get-OpenScModulePath
    $script:PcscdPid = Start-PcscDaemon
    $script:Sim = Start-CardSimulator -Port 35963 -Arguments '--blank'
    $script:Reader = $Sim.Reader
    $script:SoPin = ConvertTo-SecureString '3537363231383830' -AsPlainText -Force
    function Secure([string] $Text) { ConvertTo-SecureString $Text -AsPlainText -Force }
    function Get-Plain([securestring] $s) { [Net.NetworkCredential]::new('', $s).Password }
    function Invoke-ScHsmTool {
        param([string[]] $Arguments, [string[]] $InputLines)
        $o = if ($InputLines) { $InputLines | & timeout 180 sc-hsm-tool --reader 0 @Arguments 2>&1 } else { & timeout 180 sc-hsm-tool --reader 0 @Arguments 2>&1 }
        [pscustomobject]@{ Output = ($o -join "`n"); ExitCode = $LASTEXITCODE }
    }
    function Reset-Card([int] $Shares) {
        Disconnect-PicoHsm -All
        Initialize-PicoHsm -Reader $Reader -SoPin $SoPin -Pin $Pin -DkekShareCount $Shares -Confirm:$false -WarningAction SilentlyContinue | Out-Null
    }
    function Get-CardKcv { Connect-PicoHsm -Reader $Reader -Pin $Pin | Out-Null; $k = (@(Get-PicoDkek))[0].KeyCheckValue; Disconnect-PicoHsm -All; $k }
    function Get-ShareKcv([string] $Hex) { [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData([Convert]::FromHexString($Hex))).Substring(0, 16).ToLowerInvariant() }
    function Test-SignsWith {
        <# Signs with a token key through pkcs11-tool and verifies against an original public key (SPKI DER). #>
        param([string[]] $Token, [string] $Id, [byte[]] $Spki, [string] $KeyType)
        $msg = Join-Path $Work 'msg.bin'; $sig = Join-Path $Work 'sig.bin'
        $data = [byte[]](1..64); $hash = [Security.Cryptography.SHA256]::HashData($data)
        [IO.File]::WriteAllBytes($msg, $(if ($KeyType -eq 'Rsa') { $data } else { $hash }))
        $mech = if ($KeyType -eq 'Rsa') { 'SHA256-RSA-PKCS' } else { 'ECDSA' }
        $o = & timeout 120 pkcs11-tool @Token --login --pin $PinText --sign --id $Id -m $mech -i $msg -o $sig 2>&1
        if ($LASTEXITCODE -ne 0) { throw "sign failed: $o" }
        $s = [IO.File]::ReadAllBytes($sig)
        if ($KeyType -eq 'Rsa') { $k = [Security.Cryptography.RSA]::Create(); $null = $k.ImportSubjectPublicKeyInfo($Spki, [ref]0); $k.VerifyData($data, $s, 'SHA256', [Security.Cryptography.RSASignaturePadding]::Pkcs1) }
        else { $k = [Security.Cryptography.ECDsa]::Create(); $null = $k.ImportSubjectPublicKeyInfo($Spki, [ref]0); $k.VerifyHash($hash, $s, 'IeeeP1363FixedFieldConcatenation') }
    }
    $script:ThresholdShare = 'e5d17f37c64896520115dd3b6eac65ed792089b9de7e1ea1472e97144af6c569'
}
AfterAll {
    Disconnect-PicoHsm -All
    Stop-CardSimulator $Sim
    Stop-PcscDaemon $PcscdPid
    'pico-test-b', 'pico-test-c' | ForEach-Object { Remove-TestObjects -Token $_ }
    Remove-Item $Work -Recurse -Force -ErrorAction Ignore
}

Describe 'A custodian leaves: sc-hsm-tool share files get a new password, the DKEK share unchanged' {
    It 'writes a plain-password file anew; sc-hsm-tool imports it with the other share: the same DKEK d5c1a339cd295797' {
        $old = Join-Path $Vectors 'dkek-share-1.pbe'
        $before = Get-FileHash $old
        $r = Update-PicoDkekShare -Path $old -SharePassword (Secure 'share-one-pass') -NewSharePassword (Secure 'arriving-custodian-pass') -OutputDirectory (Join-Path $Work 'plain') -Confirm:$false -WarningVariable warn -WarningAction SilentlyContinue
        $r.ShareFiles[0] | Should -Be (Join-Path $Work 'plain/dkek-share-1.pbe')
        $r.Status | Should -BeLike "*share KCV $(Get-ShareKcv '50996a884581fd3cb5d836f12f071a192ad4a18ccc42518f2da80ebafd3375e6')*"
        ($warn -join ' ') | Should -BeLike '*still opens with its old password*destroyed*'
        (Get-FileHash $old).Hash | Should -Be $before.Hash
        Reset-Card 2
        $a = Invoke-ScHsmTool @('--import-dkek-share', $r.ShareFiles[0], '--password', 'arriving-custodian-pass')
        $a.ExitCode | Should -Be 0 -Because $a.Output
        $b = Invoke-ScHsmTool @('--import-dkek-share', (Join-Path $Vectors 'dkek-share-2.pbe'), '--password', 'share-two-pass')
        $b.ExitCode | Should -Be 0 -Because $b.Output
        Get-CardKcv | Should -Be 'd5c1a339cd295797'
        # The leaving custodian's password no longer opens the new file (the old file it still opens: see the warning).
        Reset-Card 1
        # A .pbe file has no MAC: about one wrong password in 256 decrypts to valid padding, and
        # sc-hsm-tool then imports garbage and exits 0. Either way the share must not come out.
        $c = Invoke-ScHsmTool @('--import-dkek-share', $r.ShareFiles[0], '--password', 'share-one-pass')
        if ($c.ExitCode -eq 0) { Get-CardKcv | Should -Not -Be (Get-ShareKcv '50996a884581fd3cb5d836f12f071a192ad4a18ccc42518f2da80ebafd3375e6') }
        else { $c.Output | Should -Match 'Error decrypting DKEK share' }
    }

    It 're-splits a threshold file into new 3-of-5 password shares that sc-hsm-tool takes at its prompts' {
        $old = Join-Path $Vectors 'dkek-share-threshold.pbe'
        $given = (Secure '1:3f:3e:fa:a8:51:77:40:0b'), (Secure '3:82:ea:95:2e:f3:6a:71:8e')
        $out = @(Update-PicoDkekShare -Path $old -PasswordSharePrime 'c0:1b:aa:f3:4b:97:a7:03' -PasswordShare $given -PasswordShareThreshold 3 -PasswordShareTotal 5 -OutputDirectory (Join-Path $Work 'threshold') -Confirm:$false -WarningAction SilentlyContinue)
        $shares = @($out | Where-Object { $_ -is [PicoHsm.Module.Commands.PicoPasswordShare] })
        $dk = $out | Where-Object { $_ -is [PicoHsm.Devices.PicoDkek] }
        $shares.Count | Should -Be 5
        $shares.Id | Should -Be 1, 2, 3, 4, 5
        $shares | ForEach-Object { $_.Value | Should -BeOfType ([securestring]); $_.Threshold | Should -Be 3 }
        $prime = $shares[0].Prime
        $prime | Should -Match '^([0-9a-f]{2}:){7}[0-9a-f]{2}$'
        $prime | Should -Not -Be 'c0:1b:aa:f3:4b:97:a7:03'
        $dk.Status | Should -BeLike "*share KCV $(Get-ShareKcv $ThresholdShare)*"
        $script:thresholdFile = $dk.ShareFiles[0]
        $script:newShares = $shares
        # sc-hsm-tool, as three new custodians at its prompts (prime, then per share: Enter, id, value).
        Reset-Card 1
        $lines = @($prime) + (@($shares[4], $shares[1], $shares[2]) | ForEach-Object { ''; "$($_.Id)"; (Get-Plain $_.Value) })
        $t = Invoke-ScHsmTool -Arguments @('--import-dkek-share', $thresholdFile, '--pwd-shares-total', '3') -InputLines $lines
        $t.ExitCode | Should -Be 0 -Because $t.Output
        Get-CardKcv | Should -Be (Get-ShareKcv $ThresholdShare)
    }

    It 'turns the threshold file into a plain-password file that sc-hsm-tool imports' {
        $r = Update-PicoDkekShare -Path $thresholdFile -PasswordSharePrime $newShares[0].Prime -PasswordShare $newShares[0], $newShares[3], $newShares[4] -NewSharePassword (Secure 'now-one-custodian') -OutputDirectory (Join-Path $Work 'back-to-plain') -Confirm:$false -WarningAction SilentlyContinue
        Reset-Card 1
        $t = Invoke-ScHsmTool @('--import-dkek-share', $r.ShareFiles[0], '--password', 'now-one-custodian')
        $t.ExitCode | Should -Be 0 -Because $t.Output
        Get-CardKcv | Should -Be (Get-ShareKcv $ThresholdShare)
    }

    It 'refuses too few password shares and plain strings, and cannot prompt in a non-interactive session' {
        $e = { Update-PicoDkekShare -Path $thresholdFile -PasswordSharePrime $newShares[0].Prime -PasswordShare $newShares[0], $newShares[1] -NewSharePassword (Secure 'x-password-1') -OutputDirectory (Join-Path $Work 'few') -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'UpdatePicoDkekShare*'
        Test-Path (Join-Path $Work 'few') | Should -BeFalse
        { Import-PicoDkek -Path $thresholdFile -PasswordSharePrime 'c0:1b' -PasswordShare '1:3f:3e:fa:a8:51:77:40:0b' -Confirm:$false -ErrorAction Stop } | Should -Throw -ExceptionType ([System.Management.Automation.ParameterBindingException])
        $e = { Update-PicoDkekShare -Path $thresholdFile -PasswordSharePrime $newShares[0].Prime -PasswordShareThreshold 2 -PasswordShareTotal 3 -OutputDirectory (Join-Path $Work 'noprompt') -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'UpdatePicoDkekSharePasswordSharesMissing,*'
    }
}

Describe 'A whole new group takes over: old backups converted to a new DKEK, offline' {
    BeforeAll {
        $script:newDkek = New-PicoDkek -NoImport -ShareCount 3 -Threshold 2 -Label 'new-group' -OutputDirectory (Join-Path $Work 'new-shares') -SharePassword (New-TestPasswords 3 -Prefix newgroup) -Confirm:$false
        $script:newPw = New-TestPasswords 3 -Prefix newgroup
        $script:oldScHsm = (Join-Path $Vectors 'dkek-share-1.pbe'), (Join-Path $Vectors 'dkek-share-2.pbe')
        $script:oldScHsmPw = (Secure 'share-one-pass'), (Secure 'share-two-pass')
    }

    It 'converts the firmware''s backups; they pass offline under the new shares and the old shares no longer open them' {
        $src = 'rsa2048.wky', 'ec256.wky' | ForEach-Object { Join-Path $Vectors $_ }
        $r = @(Convert-PicoKeyBackup -Path $src -SharePath $oldScHsm -SharePassword $oldScHsmPw -NewSharePath $newDkek.ShareFiles[2], $newDkek.ShareFiles[0] -NewSharePassword $newPw[2], $newPw[0] -OutputDirectory (Join-Path $Work 'converted-card') -Confirm:$false -WarningVariable warn -WarningAction SilentlyContinue)
        ($warn -join ' ') | Should -BeLike '*in clear*air-gapped*'
        $r.Count | Should -Be 2
        $r | ForEach-Object { $_.Passed | Should -BeTrue -Because ($_.Problems -join '; '); $_.Kcv | Should -Be $newDkek.KeyCheckValue }
        $script:convertedCard = $r.Path
        $new = @(Test-PicoKeyBackup -Path $convertedCard -SharePath $newDkek.ShareFiles[1], $newDkek.ShareFiles[2] -SharePassword $newPw[1], $newPw[2])
        $new | ForEach-Object { $_.Passed | Should -BeTrue }
        $old = @(Test-PicoKeyBackup -Path $convertedCard -SharePath $oldScHsm -SharePassword $oldScHsmPw)
        $old | ForEach-Object { $_.Passed | Should -BeFalse; $_.DkekMatch | Should -BeFalse }
    }

    It 'restores them on a card holding the new DKEK, and the keys sign like the originals' {
        Reset-Card 1
        Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin | Out-Null
        (Import-PicoDkek -Path $newDkek.ShareFiles[0], $newDkek.ShareFiles[1] -SharePassword $newPw[0], $newPw[1] -Confirm:$false).KeyCheckValue | Should -Be $newDkek.KeyCheckValue
        foreach ($f in $convertedCard) { Import-PicoWrappedKey -Path $f -Confirm:$false | Out-Null }
        Disconnect-PicoHsm -All
        Test-SignsWith -Token '--module', $OpenSc -Id '01' -Spki ([IO.File]::ReadAllBytes((Join-Path $Vectors 'rsa2048.pub.der'))) -KeyType Rsa | Should -BeTrue
        Test-SignsWith -Token '--module', $OpenSc -Id '02' -Spki ([IO.File]::ReadAllBytes((Join-Path $Vectors 'ec256.pub.der'))) -KeyType Ec | Should -BeTrue
    }

    It 'moves SoftHSM2 backups (.pkb) to the new DKEK; restored on a token holding it, the keys sign like the originals' {
        'pico-test-b', 'pico-test-c' | ForEach-Object { Remove-TestObjects -Token $_ }
        $oldPw = New-TestPasswords 3 -Prefix oldgroup
        $a = Connect-TestToken 'pico-test-b'
        $oldDkek = New-PicoDkek -Session $a -ShareCount 3 -Threshold 2 -Label 'old-group' -OutputDirectory (Join-Path $Work 'old-shares') -SharePassword $oldPw -Confirm:$false
        New-PicoKey -Session $a -KeyType Rsa -Size 2048 -Id '51' -Label 'rot-rsa' -Confirm:$false | Out-Null
        New-PicoKey -Session $a -KeyType Ec -Curve 'P-256' -Id '52' -Label 'rot-ec' -Confirm:$false | Out-Null
        $originals = @{}; Get-PicoKey -Session $a | ForEach-Object { $originals[$_.Id] = $_ }
        $pkb = @(Get-PicoKey -Session $a | Export-PicoWrappedKey -Session $a -Directory (Join-Path $Work 'old-pkb'))
        $pkb.Count | Should -Be 2
        $r = @(Convert-PicoKeyBackup -Path $pkb.Path -SharePath $oldDkek.ShareFiles[0], $oldDkek.ShareFiles[2] -SharePassword $oldPw[0], $oldPw[2] -NewSharePath $newDkek.ShareFiles[1], $newDkek.ShareFiles[2] -NewSharePassword $newPw[1], $newPw[2] -OutputDirectory (Join-Path $Work 'converted-pkb') -Confirm:$false -WarningAction SilentlyContinue)
        $r | ForEach-Object { $_.Passed | Should -BeTrue -Because ($_.Problems -join '; ') }
        @(Test-PicoKeyBackup -Path $r.Path -SharePath $oldDkek.ShareFiles[0], $oldDkek.ShareFiles[1] -SharePassword $oldPw[0], $oldPw[1]) | ForEach-Object { $_.DkekMatch | Should -BeFalse }
        $b = Connect-TestToken 'pico-test-c'
        Import-PicoDkek -Session $b -Path $newDkek.ShareFiles[0], $newDkek.ShareFiles[2] -SharePassword $newPw[0], $newPw[2] -Confirm:$false | Out-Null
        # The token with the old DKEK refuses the converted backups (another DKEK).
        { Import-PicoWrappedKey -Session $a -Path $r[0].Path -Id '61' -Confirm:$false -ErrorAction Stop } | Should -Throw
        foreach ($f in $r.Path) { Import-PicoWrappedKey -Session $b -Path $f -Confirm:$false | Out-Null }
        foreach ($id in '51', '52') {
            Test-SignsWith -Token '--module', $SoftHsm, '--token-label', 'pico-test-c' -Id $id -Spki $originals[$id].PublicKeyInfo -KeyType $originals[$id].KeyType | Should -BeTrue -Because "key $id"
        }
    }
}
