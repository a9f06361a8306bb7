#Requires -Version 7.4
<#
.SYNOPSIS
    The custodian ceremony: creates the DKEK on the connected token, splits it n-of-m into one
    password-protected share file per custodian, and writes a receipt (who holds which file,
    the DKEK's KCV, each file's SHA-256) for the custodians to sign.
.DESCRIPTION
    Interactive: each custodian types their own password at the prompt New-PicoDkek shows.
    Scripted (a rehearsal on a test token): pass -SharePassword. The share files are named
    dkek-share-<i>-of-<m>.dkekshare, in the order of -Custodian.

    Both device families: a PKCS#11 token gets the DKEK as a key object; a Pico HSM /
    SmartCard-HSM gets it whole as its one DKEK share, so initialise the card with
    Initialize-PicoHsm -DkekShareCount 1 first.
.EXAMPLE
    Connect-PicoHsm -TokenLabel ca-hsm -Pin (Read-Host -AsSecureString PIN)
    .\New-CustodianCeremony.ps1 -Custodian alice, bob, carol, dave, erin -Threshold 3 -OutputDirectory E:\ceremony
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string[]] $Custodian,
    [Parameter(Mandatory)] [int] $Threshold,
    [Parameter(Mandatory)] [string] $OutputDirectory,
    $Session,
    [securestring[]] $SharePassword
)
$ErrorActionPreference = 'Stop'
$dkekArgs = @{ ShareCount = $Custodian.Count; Threshold = $Threshold; OutputDirectory = $OutputDirectory; Confirm = $false }
if ($Session) { $dkekArgs.Session = $Session }
if ($SharePassword) { $dkekArgs.SharePassword = $SharePassword }
$dkek = New-PicoDkek @dkekArgs
$m = $Custodian.Count
$receipt = for ($i = 1; $i -le $m; $i++) {
    $file = Join-Path $OutputDirectory "dkek-share-$i-of-$m.dkekshare"
    [pscustomobject]@{ Share = $i; Custodian = $Custodian[$i - 1]; File = Split-Path -Leaf $file; Sha256 = (Get-FileHash $file -Algorithm SHA256).Hash.ToLower(); Kcv = $dkek.KeyCheckValue }
}
$receiptPath = Join-Path $OutputDirectory 'ceremony-receipt.csv'
$receipt | Export-Csv -Path $receiptPath -NoTypeInformation
$receipt
Write-Host "DKEK $($dkek.KeyCheckValue): any $Threshold of $m shares rebuild it. Receipt: $receiptPath"
