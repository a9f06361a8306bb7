<#
.SYNOPSIS
    One measured step of the card benchmark, in a fresh pwsh: the module's wrap or restore of every
    key through its one session on the card, after Import-Module and Connect-PicoHsm.
    Prints one JSON line: the step's seconds, the key count and the APDUs the card received during
    the step (counted from the simulator's --verbose log, where each command is a line "> ..."); for
    Wrap also the Get-PicoKey listing before it, timed and counted apart.
#>
param(
    [Parameter(Mandatory)] [ValidateSet('Wrap', 'Restore')] [string] $Step,
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $OpenScModule,
    [Parameter(Mandatory)] [string] $ApduLog,
    [Parameter(Mandatory)] [string] $Directory,
    # Restore: the first free key reference; backup i goes to FirstReference + i with id f0<i>.
    [int] $FirstReference = 0x40
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
$pin = ConvertTo-SecureString '648219' -AsPlainText -Force
$null = Connect-PicoHsm -ModulePath $OpenScModule -Pin $pin
function Get-ApduCount { @(Select-String -Path $ApduLog -Pattern '^> ' -ErrorAction Ignore).Count }
$count = 0
# The listing apart: sc-hsm-tool is given the key references, so the wrap is timed on listed keys.
$listFrom = Get-ApduCount
$listWatch = [Diagnostics.Stopwatch]::StartNew()
$keys = if ($Step -eq 'Wrap') { @(Get-PicoKey) } else { @() }
$listWatch.Stop()
$before = Get-ApduCount
$sw = [Diagnostics.Stopwatch]::StartNew()
switch ($Step) {
    'Wrap' { $count = @($keys | Export-PicoWrappedKey -Directory $Directory).Count }
    'Restore' {
        $files = @(Get-ChildItem $Directory -Filter *.wky | Sort-Object Name)
        for ($i = 0; $i -lt $files.Count; $i++) {
            $null = Import-PicoWrappedKey -Path $files[$i].FullName -KeyReference ($FirstReference + $i) -Id ('f0{0:x2}' -f $i) -Label "bench-restored-$i" -Confirm:$false
            $count++
        }
    }
}
$sw.Stop()
# The simulator writes its log as each APDU is answered; give the last lines a moment to land.
Start-Sleep -Milliseconds 300
$apdus = (Get-ApduCount) - $before
Disconnect-PicoHsm -All
[pscustomobject]@{ Step = $Step; Seconds = $sw.Elapsed.TotalSeconds; Count = $count; Apdus = $apdus; FromApdu = $before + 1; ListSeconds = $listWatch.Elapsed.TotalSeconds; ListApdus = $before - $listFrom } | ConvertTo-Json -Compress
