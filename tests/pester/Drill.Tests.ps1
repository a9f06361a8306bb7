# The disaster-recovery drill of issue 3: token A gets a 3-of-5 DKEK and an RSA-2048, an EC P-256
# and an AES-256 key; Backup-PicoHsm; token A is wiped; token B gets the DKEK from three other
# shares; Restore-PicoHsm; every key works as the original. Run for every choice of 3 shares of 5.
BeforeDiscovery {
    $script:choices = foreach ($a in 0..2) { foreach ($b in ($a + 1)..3) { foreach ($c in ($b + 1)..4) {
        @{ Idx = @($a, $b, $c); Names = "$($a + 1), $($b + 1) and $($c + 1)" } } } }
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:Work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-drill-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))
    'pico-test-c', 'pico-test-d' | ForEach-Object { Remove-TestObjects -Token $_ }
    $script:pw = New-TestPasswords 5 -Prefix drill
    $a = Connect-TestToken 'pico-test-c'
    $script:dkek = New-PicoDkek -Session $a -ShareCount 5 -Threshold 3 -OutputDirectory (Join-Path $Work 'shares') -SharePassword $pw -Confirm:$false
    $script:orig = @{
        rsa = New-PicoKey -Session $a -KeyType Rsa -Size 2048 -Id 'a1' -Label 'drill-rsa' -Confirm:$false
        ec  = New-PicoKey -Session $a -KeyType Ec -Curve P-256 -Id 'a2' -Label 'drill-ec' -Confirm:$false
        aes = New-PicoKey -Session $a -KeyType Aes -Size 256 -Id 'a3' -Label 'drill-aes' -Confirm:$false
    }
    $script:msg = Join-Path $Work 'msg.bin'
    [IO.File]::WriteAllBytes($msg, [byte[]](0..15))
    $enc = Join-Path $Work 'aes-original.bin'
    & pkcs11-tool --module $SoftHsm --token-label 'pico-test-c' --login --pin $PinText --encrypt --id 'a3' -m AES-ECB -i $msg -o $enc 2>&1 | Out-Null
    $script:aesOriginal = [Convert]::ToHexString([IO.File]::ReadAllBytes($enc))
    $script:set = Backup-PicoHsm -Session $a -Directory (Join-Path $Work 'backup')
    Disconnect-PicoHsm -Session $a
    # Token A is lost.
    Remove-TestObjects -Token 'pico-test-c'
    $script:shareFiles = $dkek.ShareFiles
}
AfterAll {
    Disconnect-PicoHsm -All
    'pico-test-c', 'pico-test-d' | ForEach-Object { Remove-TestObjects -Token $_ }
    Remove-Item $Work -Recurse -Force -ErrorAction Ignore
}

Describe 'Disaster-recovery drill' {
    It 'backed up the three keys under the 3-of-5 DKEK and wiped token A' {
        $set.KeyCount | Should -Be 3
        $set.Complete | Should -BeTrue
        $set.Kcv | Should -Be $dkek.KeyCheckValue
        $a = Connect-TestToken 'pico-test-c'
        @(Get-PicoKey -Session $a).Count | Should -Be 0
        (Get-PicoDkek -Session $a).Present | Should -BeFalse
        Disconnect-PicoHsm -Session $a
    }

    It 'restores every key on token B from shares <Names>' -ForEach $choices {
        $idx = $Idx
        Remove-TestObjects -Token 'pico-test-d'
        $b = Connect-TestToken 'pico-test-d'
        try {
            $d = Import-PicoDkek -Session $b -Path ($idx | ForEach-Object { $shareFiles[$_] }) -SharePassword ($idx | ForEach-Object { $pw[$_] }) -Confirm:$false
            $d.KeyCheckValue | Should -Be $dkek.KeyCheckValue
            $restored = @(Restore-PicoHsm -Session $b -Directory (Join-Path $Work 'backup') -Confirm:$false)
            $restored.Count | Should -Be 3
            ($restored | Where-Object Id -EQ 'a1').PublicKeyFingerprint | Should -Be $orig.rsa.PublicKeyFingerprint
            ($restored | Where-Object Id -EQ 'a2').PublicKeyFingerprint | Should -Be $orig.ec.PublicKeyFingerprint
            # RSA and EC: the restored token keys sign; the signatures verify with the original public keys.
            $sig = Join-Path $Work 'sig.bin'
            & pkcs11-tool --module $SoftHsm --token-label 'pico-test-d' --login --pin $PinText --sign --id 'a1' -m SHA256-RSA-PKCS -i $msg -o $sig 2>&1 | Out-Null
            $rsa = [Security.Cryptography.RSA]::Create(); $null = $rsa.ImportSubjectPublicKeyInfo($orig.rsa.PublicKeyInfo, [ref]0)
            $rsa.VerifyData([IO.File]::ReadAllBytes($msg), [IO.File]::ReadAllBytes($sig), 'SHA256', [Security.Cryptography.RSASignaturePadding]::Pkcs1) | Should -BeTrue
            $hash = Join-Path $Work 'hash.bin'
            [IO.File]::WriteAllBytes($hash, [Security.Cryptography.SHA256]::HashData([IO.File]::ReadAllBytes($msg)))
            & pkcs11-tool --module $SoftHsm --token-label 'pico-test-d' --login --pin $PinText --sign --id 'a2' -m ECDSA -i $hash -o $sig 2>&1 | Out-Null
            $ec = [Security.Cryptography.ECDsa]::Create(); $null = $ec.ImportSubjectPublicKeyInfo($orig.ec.PublicKeyInfo, [ref]0)
            $ec.VerifyHash([IO.File]::ReadAllBytes($hash), [IO.File]::ReadAllBytes($sig), 'IeeeP1363FixedFieldConcatenation') | Should -BeTrue
            # AES: the restored key encrypts exactly as the original did.
            $enc = Join-Path $Work 'aes-restored.bin'
            & pkcs11-tool --module $SoftHsm --token-label 'pico-test-d' --login --pin $PinText --encrypt --id 'a3' -m AES-ECB -i $msg -o $enc 2>&1 | Out-Null
            [Convert]::ToHexString([IO.File]::ReadAllBytes($enc)) | Should -Be $aesOriginal
        }
        finally { Disconnect-PicoHsm -Session $b }
    }
}
