<#
.SYNOPSIS
    The drill on a Pico HSM: the card simulator as the card behind pcscd's vpcd reader (or a
    real Pico HSM / SmartCard-HSM / Nitrokey HSM 2 in -Reader, which is then WIPED), OpenSC's
    PKCS#11 module beside the module's own card channel.
    A 3-of-5 DKEK is imported whole into a device initialised with one share; an EC P-256 and an
    RSA-2048 key are generated with pkcs11-tool; Backup-PicoHsm; the device is wiped; the DKEK
    comes back from three other shares; Restore-PicoHsm; every key is proven to sign like before.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    # A real device's reader. Without it the simulator is started on "Virtual PCD 00 00".
    [string] $Reader
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
Import-Module (Join-Path $PSScriptRoot '../tests/pester/TestEnvironment.psm1')
$opensc = Get-OpenScModulePath
if (-not $opensc) { throw 'OpenSC''s PKCS#11 module is not installed (apt-get install opensc).' }
$pin = Get-TestPin
$soPin = ConvertTo-SecureString '3537363231383830' -AsPlainText -Force
$work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-picodemo-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))
function Step([string] $text) { Write-Host "`n== $text" -ForegroundColor Cyan }
$pcscd = $null; $sim = $null
try {
    if (-not $Reader) {
        Step 'Starting pcscd and the Pico HSM simulator (vpcd card)'
        $pcscd = Start-PcscDaemon
        $sim = Start-CardSimulator -Port 35963 -Arguments '--blank'
        $Reader = $sim.Reader
    }
    Step "Initialising the device in '$Reader' with one DKEK share"
    Initialize-PicoHsm -Reader $Reader -SoPin $soPin -Pin $pin -DkekShareCount 1 -Confirm:$false -WarningAction SilentlyContinue | Format-Table | Out-Host

    Step 'Connecting through OpenSC: the card channel is attached'
    Connect-PicoHsm -ModulePath $opensc -Reader $Reader -Pin $pin | Format-Table | Out-Host

    Step 'A 3-of-5 DKEK, imported whole as the device''s one share'
    $passwords = 1..5 | ForEach-Object { ConvertTo-SecureString "pico-custodian-$_-password" -AsPlainText -Force }
    $dkek = New-PicoDkek -ShareCount 5 -Threshold 3 -OutputDirectory (Join-Path $work 'shares') -SharePassword $passwords -Confirm:$false
    Get-PicoDkek | Format-Table | Out-Host

    Step 'Keys generated on the device with pkcs11-tool'
    foreach ($spec in @(@('EC:prime256v1', '01', 'pico-ec'), @('rsa:2048', '02', 'pico-rsa'))) {
        $o = & pkcs11-tool --module $opensc --login --pin 648219 --keypairgen --key-type $spec[0] --id $spec[1] --label $spec[2] 2>&1
        if ($LASTEXITCODE -ne 0) { throw "pkcs11-tool failed: $o" }
    }
    $originals = @(Get-PicoKey)
    $originals | Format-Table | Out-Host

    Step 'Backup-PicoHsm (sc-hsm-tool wrapped-key files + manifest)'
    $set = Backup-PicoHsm -Directory (Join-Path $work 'backup')
    $set | Format-List Directory, Kcv, KeyCount, Complete | Out-Host

    Step 'The device is lost: wiped, then given the DKEK from shares 1, 3 and 4'
    Disconnect-PicoHsm -All
    Initialize-PicoHsm -Reader $Reader -SoPin $soPin -Pin $pin -DkekShareCount 1 -Confirm:$false -WarningAction SilentlyContinue | Out-Null
    Connect-PicoHsm -ModulePath $opensc -Reader $Reader -Pin $pin | Out-Null
    "Keys on the device now: $(@(Get-PicoKey).Count)" | Out-Host
    Import-PicoDkek -Path $dkek.ShareFiles[0], $dkek.ShareFiles[2], $dkek.ShareFiles[3] -SharePassword $passwords[0], $passwords[2], $passwords[3] -Confirm:$false | Format-Table | Out-Host

    Step 'Restore-PicoHsm, then every key proves it signs like the original'
    Restore-PicoHsm -Directory $set.Directory -Confirm:$false | Format-Table | Out-Host
    $ok = $true
    foreach ($o in $originals) {
        $now = Get-PicoKey -Id $o.Id
        $test = Get-ChildItem $set.Directory -Filter "*-$($o.Id)-*.wky" | Test-PicoKeyBackup -RestoreTest
        $same = $now.PublicKeyFingerprint -eq $o.PublicKeyFingerprint
        "{0,-9} {1,-9} same public key: {2}; a restored copy signs and verifies: {3}" -f $o.Label, $o.Algorithm, $same, $test.Restorable | Out-Host
        $ok = $ok -and $same -and $test.Restorable
    }
    Disconnect-PicoHsm -All
    if (-not $ok) { Write-Host "`nPICO DRILL FAILED" -ForegroundColor Red; exit 1 }
    Write-Host "`nPico drill passed: every key is back on the device and works as before." -ForegroundColor Green
}
finally {
    Stop-CardSimulator $sim
    Stop-PcscDaemon $pcscd
    Remove-Item $work -Recurse -Force -ErrorAction Ignore
}
