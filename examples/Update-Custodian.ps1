#Requires -Version 7.4
<#
.SYNOPSIS
    Rotates one custodian: rebuilds the DKEK from n current shares and splits the SAME DKEK
    (same KCV, so every backup stays valid) into a new set, one file for each of the new
    custodians. No device is touched.
.DESCRIPTION
    The old share files stay valid until every copy is destroyed: collect them from all old
    custodians, the leaving one first, and destroy them. Then run the recovery drill with the
    new shares (about_PicoHsm_DisasterRecovery).

    Both device families: the share files (PicoHsm format, .dkekshare) are the same whether the
    ceremony ran on a PKCS#11 token or on a Pico HSM / SmartCard-HSM. sc-hsm-tool share files
    (.pbe) hold one DKEK share each and cannot be re-split: give such a file a new password (or
    new password shares) with Update-PicoDkekShare instead.
.EXAMPLE
    .\Update-Custodian.ps1 -Path E:\ceremony\dkek-share-1-of-5.dkekshare, E:\ceremony\dkek-share-2-of-5.dkekshare, E:\ceremony\dkek-share-4-of-5.dkekshare -Custodian alice, bob, carol, dave, frank -Threshold 3 -OutputDirectory F:\rotated
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string[]] $Path,
    [Parameter(Mandatory)] [string[]] $Custodian,
    [Parameter(Mandatory)] [int] $Threshold,
    [Parameter(Mandatory)] [string] $OutputDirectory,
    [securestring[]] $SharePassword,
    [securestring[]] $NewSharePassword
)
$ErrorActionPreference = 'Stop'
$oldKcv = @($Path | ForEach-Object { [PicoHsm.Dkek.DkekShareFile]::Read([IO.File]::ReadAllBytes((Resolve-Path $_).ProviderPath), $_).KcvHex } | Select-Object -Unique)
$updateArgs = @{ Path = $Path; ShareCount = $Custodian.Count; Threshold = $Threshold; OutputDirectory = $OutputDirectory; Confirm = $false }
if ($SharePassword) { $updateArgs.SharePassword = $SharePassword }
if ($NewSharePassword) { $updateArgs.NewSharePassword = $NewSharePassword }
$result = Update-PicoDkekShare @updateArgs
if ($result.KeyCheckValue -ne $oldKcv[0]) { throw "The new shares hold DKEK $($result.KeyCheckValue), not $($oldKcv[0]): do not hand them out." }
$m = $Custodian.Count
for ($i = 1; $i -le $m; $i++) {
    [pscustomobject]@{ Share = $i; Custodian = $Custodian[$i - 1]; File = "dkek-share-$i-of-$m.dkekshare"; Kcv = $result.KeyCheckValue }
}
Write-Host "Same DKEK $($result.KeyCheckValue) in $m new shares ($Threshold needed). Now destroy every old share file."
