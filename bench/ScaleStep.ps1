<#
.SYNOPSIS
    One measured step of the scale benchmark, in a fresh pwsh (SOFTHSM2_CONF is set by the caller).
    Prints one JSON line: the step's seconds (the cmdlet alone, after import and connect), the
    object count and the process's peak resident memory (VmHWM, Linux), at the end and right after
    Connect-PicoHsm (before the step).
#>
param(
    [Parameter(Mandatory)] [ValidateSet('Ceremony', 'ImportDkek', 'Backup', 'ExportPipe', 'Restore', 'List')] [string] $Step,
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Token,
    [string] $Directory,
    [string] $SharesDirectory
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
$pin = ConvertTo-SecureString '648219' -AsPlainText -Force
$module = '/usr/lib/softhsm/libsofthsm2.so'
$passwords = 1..2 | ForEach-Object { ConvertTo-SecureString "bench-share-password-$_" -AsPlainText -Force }
$null = Connect-PicoHsm -ModulePath $module -TokenLabel $Token -Pin $pin
# The peak so far: PowerShell, the module and the token as SoftHSM2 loaded it at C_Initialize (every
# object of the token in this process), before the step does anything.
function Get-PeakKiB { if (Test-Path /proc/self/status) { [long]((Select-String -Path /proc/self/status -Pattern '^VmHWM:\s+(\d+)').Matches[0].Groups[1].Value) } else { 0 } }
$connectedKiB = Get-PeakKiB
$count = 0
$sw = [Diagnostics.Stopwatch]::StartNew()
switch ($Step) {
    'Ceremony' { $null = New-PicoDkek -ShareCount 2 -Threshold 2 -OutputDirectory $SharesDirectory -SharePassword $passwords -Id 'ddddddd0' -Confirm:$false }
    'ImportDkek' { $null = Import-PicoDkek -Path (Get-ChildItem $SharesDirectory -Filter *.dkekshare).FullName -SharePassword $passwords -Id 'ddddddd0' -Confirm:$false }
    'Backup' { $set = Backup-PicoHsm -Directory $Directory -Confirm:$false; $count = $set.Backups.Count }
    'ExportPipe' { $count = @(Get-PicoKey | Export-PicoWrappedKey -Directory $Directory).Count }
    'Restore' { $count = @(Restore-PicoHsm -Directory $Directory -Confirm:$false).Count }
    'List' { $count = @(Get-PicoKey).Count }
}
$sw.Stop()
$dkek = @(Get-PicoDkek)[0]
$hwm = Get-PeakKiB
Disconnect-PicoHsm -All
[pscustomobject]@{ Step = $Step; Seconds = $sw.Elapsed.TotalSeconds; Count = $count; PeakKiB = $hwm; ConnectedKiB = $connectedKiB; DkekId = $dkek.Id; DkekKcv = $dkek.KeyCheckValue } | ConvertTo-Json -Compress
