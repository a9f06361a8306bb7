<#
.SYNOPSIS
    Benchmarks: prints figures, compares ratios within one run (machines are noisy).
    build.ps1 -Task Bench starts it with SOFTHSM2_CONF pointing at a throwaway token bench-a.
.NOTES
    - Share-file KDFs: PicoHsm's PBKDF2-HMAC-SHA256 (600,000) against sc-hsm-tool's EVP_BytesToKey
      (MD5, 10,000,000): what a custodian waits for, and what an attacker pays per guess; each
      created and opened, and the sc-hsm-tool format against `openssl speed -bytes 16 md5` as its limit.
    - Shamir split + combine of a DKEK.
    - Per-key wrap (export to a file), restore test (unwrap into a session object, sign, verify)
      and the DKEK proof, on SoftHSM2, for RSA-2048, EC P-256 and AES-256.
#>
param([Parameter(Mandatory)] [string] $ModulePath, [int] $Iterations = 20)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
Import-Module (Join-Path $PSScriptRoot '../tests/pester/TestEnvironment.psm1')
$work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-bench-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))

function Measure-Op([string] $Name, [int] $Count, [scriptblock] $Body) {
    & $Body | Out-Null  # warm-up
    $sw = [Diagnostics.Stopwatch]::StartNew()
    for ($i = 0; $i -lt $Count; $i++) { & $Body | Out-Null }
    $sw.Stop()
    [pscustomobject]@{ Operation = $Name; Count = $Count; MsPerOp = [math]::Round($sw.Elapsed.TotalMilliseconds / $Count, 3) }
}

try {
    $results = [Collections.Generic.List[object]]::new()
    $share = [byte[]]::new(32); [Security.Cryptography.RandomNumberGenerator]::Fill($share)
    $kcv = [PicoHsm.Common.KeyCheckValue]::Compute($share)
    $pw = 'benchmark-password'.ToCharArray()
    $file = [PicoHsm.Dkek.DkekShareFile]::Create($share, 1, 2, 3, $kcv, [guid]::NewGuid(), 'bench', $pw, $null, 600000)
    $results.Add((Measure-Op 'PicoHsm share file: create (PBKDF2 600k)' 3 { [PicoHsm.Dkek.DkekShareFile]::Create($share, 1, 2, 3, $kcv, [guid]::NewGuid(), 'bench', $pw, $null, 600000) }))
    $results.Add((Measure-Op 'PicoHsm share file: decrypt (PBKDF2 600k)' 3 { $file.Decrypt($pw).Dispose() }))
    $pwBytes = [Text.Encoding]::UTF8.GetBytes('benchmark-password')
    $results.Add((Measure-Op 'sc-hsm-tool share file: create (MD5 10M)' 2 { [PicoHsm.Devices.ScHsm.Shares.ScHsmShareFile]::Create($share, $pwBytes) }))
    $pbe = [PicoHsm.Devices.ScHsm.Shares.ScHsmShareFile]::Read([PicoHsm.Devices.ScHsm.Shares.ScHsmShareFile]::Create($share, $pwBytes))
    $results.Add((Measure-Op 'sc-hsm-tool share file: decrypt (MD5 10M)' 2 { $pbe.Decrypt($pwBytes).Dispose() }))
    $results.Add((Measure-Op 'Shamir 3-of-5 split + combine (32 bytes)' 2000 {
        $parts = [PicoHsm.Dkek.Shamir]::Split($share, 3, 5)
        [PicoHsm.Dkek.Shamir]::Combine([PicoHsm.Dkek.ShamirShare[]]@($parts[0], $parts[2], $parts[4])).Dispose()
        foreach ($p in $parts) { $p.Dispose() }
    }))

    $s = Connect-PicoHsm -ModulePath (Get-SoftHsmModulePath) -TokenLabel 'bench-a' -Pin (Get-TestPin)
    New-PicoDkek -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $work 'shares') -SharePassword (1..2 | ForEach-Object { ConvertTo-SecureString "bench-password-$_" -AsPlainText -Force }) -Confirm:$false | Out-Null
    $keys = @(
        New-PicoKey -KeyType Rsa -Size 2048 -Id b1 -Label bench-rsa -Confirm:$false
        New-PicoKey -KeyType Ec -Curve P-256 -Id b2 -Label bench-ec -Confirm:$false
        New-PicoKey -KeyType Aes -Size 256 -Id b3 -Label bench-aes -Confirm:$false
    )
    $results.Add((Measure-Op 'Get-PicoDkek (token wraps the probe key)' $Iterations { Get-PicoDkek }))
    foreach ($k in $keys) {
        $path = Join-Path $work "$($k.Label).pkb"
        $results.Add((Measure-Op "Export-PicoWrappedKey $($k.Algorithm)" $Iterations { $k | Export-PicoWrappedKey -Path $path -Force }))
        $results.Add((Measure-Op "Test-PicoKeyBackup -RestoreTest $($k.Algorithm)" $Iterations { Test-PicoKeyBackup -Path $path -RestoreTest }))
    }
    Disconnect-PicoHsm -All

    $base = ($results | Where-Object Operation -EQ 'Export-PicoWrappedKey AES-256').MsPerOp
    $results | ForEach-Object { $_ | Add-Member -NotePropertyName 'xAesExport' -NotePropertyValue ([math]::Round($_.MsPerOp / $base, 2)) -PassThru } |
        Format-Table -AutoSize | Out-String -Width 200 | Write-Output
    $kdf = ($results | Where-Object Operation -Like 'sc-hsm-tool share file: decrypt*').MsPerOp / ($results | Where-Object Operation -Like 'PicoHsm share file: decrypt*').MsPerOp
    "sc-hsm-tool share file / PicoHsm share file decrypt time: {0:N2}x" -f $kdf

    # The limit for the sc-hsm-tool format: OpenSSL's own MD5 of 16-byte inputs on this machine
    # (`openssl speed -bytes 16 md5`, digests per second). sc-hsm-tool's EVP_BytesToKey makes a 32-byte
    # AES key and a 16-byte IV, 3 MD5 outputs, each a chain of 10,000,000 MD5s: 30,000,000 digests.
    $speed = & openssl speed -seconds 3 -bytes 16 md5 2>$null | Select-String '^md5\s+([\d.]+)k'
    if ($speed) {
        $digestsPerSecond = [double]$speed.Matches[0].Groups[1].Value * 1000 / 16
        $limitMs = 3 * 10000000 / $digestsPerSecond * 1000
        ''
        "OpenSSL MD5 limit (openssl speed -bytes 16 md5): {0:N0} digests/s, so 30,000,000 digests (one sc-hsm-tool share file) take {1:N0} ms" -f $digestsPerSecond, $limitMs
        $results | Where-Object Operation -Like 'sc-hsm-tool share*' | ForEach-Object {
            [pscustomobject]@{ Operation = $_.Operation; MsPerOp = $_.MsPerOp; OpenSslLimitMs = [math]::Round($limitMs, 1); OfLimit = [math]::Round($_.MsPerOp / $limitMs, 2) }
        } | Format-Table -AutoSize | Out-String -Width 200 | Write-Output
        'OfLimit: our time over the OpenSSL MD5 limit (the target is <= 1.5).'
    }
    else { 'openssl speed is not available: no MD5 limit measured.' }
}
finally {
    Remove-Item $work -Recurse -Force -ErrorAction Ignore
}
