# Remove-PicoKey on a generic PKCS#11 token (SoftHSM2): the key with its public key; never the DKEK (issue 14).
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Disconnect-PicoHsm -All
    Remove-TestObjects -Token 'pico-test-e'
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "picohsm-remove-$([guid]::NewGuid().ToString('n').Substring(0, 8))"
    $script:E = Connect-TestToken -Token 'pico-test-e'
    New-PicoKey -Session $E -KeyType Ec -Curve P-256 -Id 0e11 -Label gone | Out-Null
    New-PicoKey -Session $E -KeyType Rsa -Size 2048 -Id 0e12 -Label stays | Out-Null
    New-PicoDkek -Session $E -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $Dir 'shares') -SharePassword (New-TestPasswords 2) -Confirm:$false | Out-Null
    function script:Objects([string] $Id) {
        # every object of the token, one block each ("... Object; ..." then its attributes), those with CKA_ID $Id
        $o = (& pkcs11-tool --module $script:SoftHsm --token-label pico-test-e --login --pin $script:PinText --list-objects 2>&1) -join "`n"
        @(($o -split '(?m)^(?=\S.*Object;)') | Where-Object { $_ -match "(?m)^\s+ID:\s+$Id\s*$" })
    }
}
AfterAll {
    Disconnect-PicoHsm -All
    Remove-TestObjects -Token 'pico-test-e'
    if (Test-Path $Dir) { Remove-Item $Dir -Recurse -Force }
}

Describe 'Remove-PicoKey on a PKCS#11 token' {
    It '-WhatIf names the key and removes nothing' {
        Remove-PicoKey -Session $E -Id 0e11 -WhatIf
        Get-PicoKey -Session $E -Id 0e11 | Should -Not -BeNullOrEmpty
    }

    It 'removes the key and its public key, and nothing else' {
        (Objects 0e11).Count | Should -BeGreaterOrEqual 2
        Get-PicoKey -Session $E -Id 0e11 | Remove-PicoKey -Session $E -Confirm:$false
        Get-PicoKey -Session $E -Id 0e11 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        (Objects 0e11).Count | Should -Be 0
        (Get-PicoKey -Session $E -Id 0e12).Label | Should -Be 'stays'
        (Get-PicoDkek -Session $E).Present | Should -BeTrue
    }

    It 'refuses the DKEK, naming it, and the DKEK stays' {
        $dkek = Get-PicoDkek -Session $E
        $before = @(Objects $dkek.Id).Count
        { Remove-PicoKey -Session $E -Id $dkek.Id -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'RemovePicoKeyDkekNotRemovable*'
        (Get-PicoDkek -Session $E).Present | Should -BeTrue
        (Get-PicoDkek -Session $E).KeyCheckValue | Should -Be $dkek.KeyCheckValue
        @(Objects $dkek.Id).Count | Should -Be $before
    }

    It 'a missing id is an error record naming it' {
        Remove-PicoKey -Session $E -Id 0e99 -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable err
        $err[0].FullyQualifiedErrorId | Should -BeLike 'RemovePicoKeyKeyNotFound*'
    }
}
