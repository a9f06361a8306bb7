<#
.SYNOPSIS
    The backup/restore drill on throwaway SoftHSM2 tokens (build.ps1 -Task Demo starts this with
    SOFTHSM2_CONF pointing at two fresh tokens, demo-a and demo-b).
    Token A gets a 3-of-5 DKEK and an RSA-2048, an EC P-256 and an AES-256 key; Backup-PicoHsm;
    token A is wiped; token B gets the DKEK from three other shares; Restore-PicoHsm; every key
    signs or encrypts, checked against the originals.
#>
param([Parameter(Mandatory)] [string] $ModulePath)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
Import-Module (Join-Path $PSScriptRoot '../tests/pester/TestEnvironment.psm1')
$softhsm = Get-SoftHsmModulePath
$pin = Get-TestPin
$work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-demo-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))

function Step([string] $text) { Write-Host "`n== $text" -ForegroundColor Cyan }
function Invoke-P11Tool([string] $Token, [string[]] $Arguments) {
    $o = & pkcs11-tool --module $softhsm --token-label $Token --login --pin 648219 @Arguments 2>&1
    if ($LASTEXITCODE -ne 0) { throw "pkcs11-tool $Arguments failed: $o" }
}

try {
    Step 'Tokens (no login)'
    Get-PicoHsmToken -ModulePath $softhsm | Where-Object Initialized | Format-Table | Out-Host

    Step "Token A: a 3-of-5 DKEK for five custodians"
    $a = Connect-PicoHsm -ModulePath $softhsm -TokenLabel 'demo-a' -Pin $pin
    $passwords = 1..5 | ForEach-Object { ConvertTo-SecureString "custodian-$_-demo-password" -AsPlainText -Force }
    $dkek = New-PicoDkek -ShareCount 5 -Threshold 3 -OutputDirectory (Join-Path $work 'shares') -SharePassword $passwords -Confirm:$false
    $dkek | Format-List KeyCheckValue, Threshold, ShareCount, ShareFiles | Out-Host

    Step 'Token A: an RSA-2048, an EC P-256 and an AES-256 key'
    $originals = @(
        New-PicoKey -KeyType Rsa -Size 2048 -Id 01a1 -Label 'ca-rsa' -Confirm:$false
        New-PicoKey -KeyType Ec -Curve P-256 -Id 01e1 -Label 'tls-ec' -Confirm:$false
        New-PicoKey -KeyType Aes -Size 256 -Id 01b1 -Label 'data-aes' -Confirm:$false
    )
    Get-PicoKey | Format-Table | Out-Host
    $block = Join-Path $work 'block.bin'; [IO.File]::WriteAllBytes($block, [byte[]](0..15))
    Invoke-P11Tool 'demo-a' @('--encrypt', '--id', '01b1', '-m', 'AES-ECB', '-i', $block, '-o', (Join-Path $work 'aes-a.bin'))

    Step 'Backup-PicoHsm'
    $set = Backup-PicoHsm -Directory (Join-Path $work 'backup')
    $set | Format-List Directory, Kcv, KeyCount, Complete | Out-Host
    Get-ChildItem $set.Directory | Test-PicoKeyBackup -ErrorAction SilentlyContinue | Where-Object { $_.Path -like '*.pkb' } | Format-Table Path, Valid, DkekMatch, Compatible | Out-Host

    Step 'Token A is lost (wiped)'
    Disconnect-PicoHsm
    Clear-SoftHsmToken -Token 'demo-a'
    $a = Connect-PicoHsm -ModulePath $softhsm -TokenLabel 'demo-a' -Pin $pin
    "Keys left on token A: $(@(Get-PicoKey).Count); DKEK present: $((Get-PicoDkek).Present)" | Out-Host
    Disconnect-PicoHsm

    Step 'Token B: the DKEK from shares 2, 4 and 5'
    $b = Connect-PicoHsm -ModulePath $softhsm -TokenLabel 'demo-b' -Pin $pin
    Import-PicoDkek -Path $dkek.ShareFiles[1], $dkek.ShareFiles[3], $dkek.ShareFiles[4] -SharePassword $passwords[1], $passwords[3], $passwords[4] -Confirm:$false |
        Format-List KeyCheckValue, KcvVerified, Status | Out-Host

    Step 'Restore-PicoHsm'
    Restore-PicoHsm -Directory $set.Directory -Confirm:$false | Format-Table | Out-Host

    Step 'Every key works as the original'
    $ok = $true
    foreach ($o in $originals | Where-Object Class -EQ 'PrivateKey') {
        $r = Get-PicoKey -Id $o.Id
        $same = $r.PublicKeyFingerprint -eq $o.PublicKeyFingerprint
        $test = Test-PicoKeyBackup -Path (Join-Path $set.Directory ("{0}-{1}.pkb" -f $o.Label, $o.Id)) -RestoreTest
        "{0,-9} {1,-9} same public key: {2}; sign/verify with the original public key: {3}" -f $o.Label, $o.Algorithm, $same, $test.Restorable | Out-Host
        $ok = $ok -and $same -and $test.Restorable
    }
    Invoke-P11Tool 'demo-b' @('--encrypt', '--id', '01b1', '-m', 'AES-ECB', '-i', $block, '-o', (Join-Path $work 'aes-b.bin'))
    $aesSame = [Convert]::ToHexString([IO.File]::ReadAllBytes((Join-Path $work 'aes-a.bin'))) -eq [Convert]::ToHexString([IO.File]::ReadAllBytes((Join-Path $work 'aes-b.bin')))
    "{0,-9} {1,-9} encrypts exactly as the original: {2}" -f 'data-aes', 'AES-256', $aesSame | Out-Host
    $ok = $ok -and $aesSame
    Disconnect-PicoHsm -All
    if (-not $ok) { Write-Host "`nDRILL FAILED" -ForegroundColor Red; exit 1 }
    Write-Host "`nDrill passed: every key is back on token B and works as before." -ForegroundColor Green
}
finally {
    Remove-Item $work -Recurse -Force -ErrorAction Ignore
}
