<#
.SYNOPSIS
    Card-path benchmark (issue 9, item 6): per-key wrap and restore on a Pico HSM / SmartCard-HSM
    through the module's one session, against one sc-hsm-tool process per key, with the APDUs
    each sends per key. Figures and ratios side by side from one run.
.DESCRIPTION
    The card is the repository's simulator played through pcscd and vsmartcard's vpcd reader: every
    byte between OpenSC, sc-hsm-tool, the module and the card crosses the real PC/SC stack. The
    simulator answers in microseconds, so the figures are the host side's cost (process start, PC/SC
    round trips, OpenSC's card binding, the module's work), not a real card's crypto time, which
    both ways pay equally per APDU.

    Steps: a blank card is initialised with one DKEK share (Initialize-PicoHsm), a DKEK is made and
    imported (New-PicoDkek), -Count keys are generated with pkcs11-tool (EC P-256 and RSA-2048 in
    turn). Then:
      - wrap:    Export-PicoWrappedKey of the keys Get-PicoKey listed, in one process (timed after
                 import, connect and the listing; the listing has its own row, and the two together
                 one more) vs one `sc-hsm-tool --wrap-key` process per key, which is given the key
                 references;
      - restore: Import-PicoWrappedKey per file in one process, each to a new key reference and id,
                 vs one `sc-hsm-tool --unwrap-key` process per file (to other new references).
    APDUs: counted from the simulator's --verbose log (one "> " line per command): the module's
    during its timed step, sc-hsm-tool's over its whole processes (each selects the applet and
    verifies the PIN: what one process per key costs).

    Needs pcscd, vpcd, OpenSC and sc-hsm-tool (the Debian packages .ci/run installs) and the card
    simulator built (build.ps1 -Task Build). vpcd has one card slot machine-wide: run it alone.
.EXAMPLE
    dotnet pwsh ./bench/Invoke-CardBench.ps1 -ModulePath out/PicoHsm/PicoHsm.psd1 -Count 10
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [ValidateRange(2, 60)] [int] $Count = 20,
    # Copy the simulator's APDU log here before it is deleted (to see what each way sends).
    [string] $KeepApduLog
)
$ErrorActionPreference = 'Stop'
$ModulePath = (Resolve-Path $ModulePath).ProviderPath
Import-Module (Join-Path $PSScriptRoot '../tests/pester/TestEnvironment.psm1')
Import-Module $ModulePath
$pwsh = Get-PwshCommand
$openSc = Get-OpenScModulePath
if (-not $openSc) { throw 'OpenSC''s opensc-pkcs11.so is missing: apt-get install opensc (build.ps1 -Task Test installs it).' }
foreach ($c in 'sc-hsm-tool', 'pkcs11-tool', 'opensc-tool') { if (-not (Get-Command $c -ErrorAction Ignore)) { throw "$c is missing: apt-get install opensc." } }
$pinText = '648219'
$pin = ConvertTo-SecureString $pinText -AsPlainText -Force
$soPin = ConvertTo-SecureString '3537363231383830' -AsPlainText -Force
$work = (New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-cardbench-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))).FullName
function Get-LoadAverage { if (Test-Path /proc/loadavg) { [double]((Get-Content /proc/loadavg -Raw).Split(' ')[0]) } else { $null } }

$pcscd = $null; $sim = $null
try {
    $pcscd = Start-PcscDaemon
    $sim = Start-CardSimulator -Port 35963 -Arguments '--blank', '--verbose'
    $apduLog = "$($sim.Log).err"
    function Get-ApduCount { @(Select-String -Path $apduLog -Pattern '^> ' -ErrorAction Ignore).Count }
    # The card's own time for APDUs From..From+Count-1 (1-based, as Get-ApduCount counts them): the
    # simulator logs each command's processing time ("= N us") after its answer.
    function Get-CardSeconds([int] $From, [int] $Count) {
        if ($Count -le 0) { return 0.0 }
        $us = @(Select-String -Path $apduLog -Pattern '^= (\d+) us' | ForEach-Object { [long] $_.Matches[0].Groups[1].Value })
        [double] ($us[($From - 1)..($From + $Count - 2)] | Measure-Object -Sum).Sum / 1e6
    }

    Write-Host "Preparing the card: initialise, DKEK, $Count keys ..."
    $null = Initialize-PicoHsm -Reader $sim.Reader -SoPin $soPin -Pin $pin -DkekShareCount 1 -Confirm:$false -WarningAction SilentlyContinue
    $null = Connect-PicoHsm -ModulePath $openSc -Pin $pin
    $passwords = 1..2 | ForEach-Object { ConvertTo-SecureString "card-bench-share-$_" -AsPlainText -Force }
    $null = New-PicoDkek -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $work 'shares') -SharePassword $passwords -Confirm:$false
    Disconnect-PicoHsm -All
    for ($i = 1; $i -le $Count; $i++) {
        $type = if ($i % 2) { 'EC:prime256v1' } else { 'rsa:2048' }
        $o = & timeout 600 pkcs11-tool --module $openSc --login --pin $pinText --keypairgen --key-type $type --id ('{0:x2}' -f $i) --label "bench-$i" 2>&1
        if ($LASTEXITCODE -ne 0) { throw "pkcs11-tool --keypairgen failed for key ${i}: $o" }
    }
    $null = Connect-PicoHsm -ModulePath $openSc -Pin $pin
    $refs = @(Get-PicoKey | Sort-Object KeyReference | ForEach-Object KeyReference)
    Disconnect-PicoHsm -All
    if ($refs.Count -ne $Count) { throw "The card lists $($refs.Count) keys, not $Count." }

    function Invoke-CardStep([string] $Step, [string] $Directory, [int] $FirstReference = 0x40) {
        $a = @('-NoProfile', '-NonInteractive', '-File', (Join-Path $PSScriptRoot 'CardStep.ps1'), '-Step', $Step, '-ModulePath', $ModulePath,
            '-OpenScModule', $openSc, '-ApduLog', $apduLog, '-Directory', $Directory, '-FirstReference', "$FirstReference")
        $o = & $pwsh[0] @($pwsh | Select-Object -Skip 1) @a 2>&1 | ForEach-Object { "$_" }
        if ($LASTEXITCODE -ne 0) { throw "$Step failed: $($o -join "`n")" }
        ($o | Where-Object { $_ -like '{*' } | Select-Object -Last 1) | ConvertFrom-Json
    }
    function Invoke-ToolPerKey([string[][]] $Calls) {
        $before = Get-ApduCount
        $sw = [Diagnostics.Stopwatch]::StartNew()
        foreach ($c in $Calls) {
            $o = & timeout 600 sc-hsm-tool --reader 0 @c 2>&1
            if ($LASTEXITCODE -ne 0) { throw "sc-hsm-tool $($c -join ' ') failed: $o" }
        }
        $s = $sw.Elapsed.TotalSeconds
        Start-Sleep -Milliseconds 300
        [pscustomobject]@{ Seconds = $s; Apdus = (Get-ApduCount) - $before; FromApdu = $before + 1 }
    }

    $rows = [Collections.Generic.List[object]]::new()
    # Each row: the whole time, the card's share of it (the simulator's processing, which a real card
    # replaces with its own, much slower crypto) and the host's (the rest: processes, PC/SC, OpenSC,
    # the module), each against sc-hsm-tool's.
    $add = { param($op, $way, $s, $apdus, $from, $base) $card = Get-CardSeconds $from $apdus; $hostS = $s - $card
        $rows.Add([pscustomobject]@{
                Operation = $op; Way = $way; Keys = $Count; Seconds = [math]::Round($s, 3); MsPerKey = [math]::Round(1000 * $s / $Count, 1)
                CardMsPerKey = [math]::Round(1000 * $card / $Count, 1); HostMsPerKey = [math]::Round(1000 * $hostS / $Count, 1)
                ApdusPerKey = [math]::Round($apdus / $Count, 1); FasterThanTool = if ($base) { [math]::Round($base.Seconds / $s, 1) } else { 1.0 }
                HostFasterThanTool = if ($base) { [math]::Round(($base.Seconds - $base.Card) / $hostS, 1) } else { 1.0 }; Load = Get-LoadAverage })
        [pscustomobject]@{ Seconds = $s; Card = $card } }

    # Wrap.
    $toolDir = New-Item -ItemType Directory (Join-Path $work 'tool-wky')
    $tool = Invoke-ToolPerKey @(foreach ($r in $refs) { , @('--wrap-key', (Join-Path $toolDir "ref-$r.wky"), '--key-reference', "$r", '--pin', $pinText) })
    $toolWrap = & $add 'wrap' 'sc-hsm-tool --wrap-key, one process per key' $tool.Seconds $tool.Apdus $tool.FromApdu $null
    $modDir = New-Item -ItemType Directory (Join-Path $work 'module-wky')
    $mod = Invoke-CardStep Wrap $modDir.FullName
    if ($KeepApduLog) { Write-Host "module wrap: APDUs $($mod.FromApdu) to $($mod.FromApdu + $mod.Apdus - 1) of the log" }
    if ($mod.Count -ne $Count) { throw "Export-PicoWrappedKey wrapped $($mod.Count) keys, not $Count." }
    $null = & $add 'wrap' 'Export-PicoWrappedKey of the listed keys, one session' $mod.Seconds $mod.Apdus $mod.FromApdu $toolWrap
    $null = & $add 'list' 'Get-PicoKey before it (sc-hsm-tool is given the references)' $mod.ListSeconds $mod.ListApdus ($mod.FromApdu - $mod.ListApdus) $null
    $null = & $add 'wrap' 'Get-PicoKey | Export-PicoWrappedKey (both)' ($mod.Seconds + $mod.ListSeconds) ($mod.Apdus + $mod.ListApdus) ($mod.FromApdu - $mod.ListApdus) $toolWrap

    # Restore: each way to its own free key references (the card's own keys use the low ones).
    $toolFiles = @(Get-ChildItem $toolDir -Filter *.wky | Sort-Object Name)
    $toolRestore = Invoke-ToolPerKey @(for ($i = 0; $i -lt $toolFiles.Count; $i++) { , @('--unwrap-key', $toolFiles[$i].FullName, '--key-reference', "$(0x40 + $i)", '--pin', $pinText, '--force') })
    $toolUnwrap = & $add 'restore' 'sc-hsm-tool --unwrap-key, one process per key' $toolRestore.Seconds $toolRestore.Apdus $toolRestore.FromApdu $null
    $modRestore = Invoke-CardStep Restore $modDir.FullName 0x80
    if ($KeepApduLog) { Write-Host "module restore: APDUs $($modRestore.FromApdu) to $($modRestore.FromApdu + $modRestore.Apdus - 1) of the log" }
    if ($modRestore.Count -ne $Count) { throw "Import-PicoWrappedKey restored $($modRestore.Count) keys, not $Count." }
    $null = & $add 'restore' 'Import-PicoWrappedKey per file, one session' $modRestore.Seconds $modRestore.Apdus $modRestore.FromApdu $toolUnwrap

    "Card benchmark on $([Environment]::ProcessorCount) cores: the card simulator through pcscd + vpcd, OpenSC $((& opensc-tool --info 2>&1 | Select-Object -First 1)), $(Get-Date -Format u)"
    $rows | Format-Table Operation, Way, Keys, Seconds, MsPerKey, CardMsPerKey, HostMsPerKey, ApdusPerKey, FasterThanTool, HostFasterThanTool, Load -AutoSize | Out-String -Width 250
    "FasterThanTool: sc-hsm-tool's time over this way's (the target is >= 5, with no more APDUs per key than sc-hsm-tool)."
    "CardMsPerKey: the simulator's own processing of the step's APDUs (its crypto and state file); HostMsPerKey the rest; HostFasterThanTool compares the host shares only."
}
finally {
    Disconnect-PicoHsm -All -ErrorAction Ignore
    Stop-CardSimulator $sim
    if ($KeepApduLog -and $sim) { Copy-Item "$($sim.Log).err" $KeepApduLog -ErrorAction Ignore }
    Stop-PcscDaemon $pcscd
    Remove-Item $work -Recurse -Force -ErrorAction Ignore
}
