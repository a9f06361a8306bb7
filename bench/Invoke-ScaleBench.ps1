<#
.SYNOPSIS
    Scale benchmark (issue 9): backup, restore and listing of N keys on SoftHSM2 against the C limit
    and against one pkcs11-tool process per key; module start-up; peak memory. Figures and ratios
    side by side from one run (machines are noisy: compare the ratios).
.DESCRIPTION
    For each N, three fresh SoftHSM2 tokens: 'src' holds N keys (RSA-2048, EC P-256 and AES-256 in
    turn, made by C_CopyObject of three generated keys) and a DKEK made by New-PicoDkek; 'dst' and
    'dstc' get the same DKEK from its shares (Import-PicoDkek). Then:
      - backup:  p11limit wrap (C_WrapKey + temp/fsync/rename per key, one session) vs Backup-PicoHsm vs
                 Get-PicoKey | Export-PicoWrappedKey vs one `pkcs11-tool --wrap` process per AES key
                 (pkcs11-tool wraps secret keys only; it does not fsync; timed on up to 50 keys, per key);
      - restore: p11limit unwrap (onto dstc) vs Restore-PicoHsm (onto dst), and p11limit unwrappub (onto
                 dstp: the same plus the public-key object the module makes beside each private key);
      - listing: p11limit attrs (one C_GetAttributeValue per key) vs Get-PicoKey;
      - listing only (-ListCount N, no backup or restore): p11limit attrs vs Get-PicoKey on an N-key token;
      - start-up (the 1,000-key token, else the middle N): Import-Module + Connect-PicoHsm +
                 Get-PicoKey -Label key-1 over bare pwsh and over a pwsh that only makes the PIN
                 SecureString, with the C limit (p11limit label: load, initialise, log in, find key-1);
      - memory: peak resident set of the Backup-PicoHsm process, largest N over smallest, and the same
                 processes' peak right after Connect-PicoHsm (the token's objects in the process).
    Cmdlet figures are the cmdlet alone (after import and connect, in a fresh process each). The
    backup's three ways take turns for -Rounds rounds and each row is the median.
    The Pico HSM (card) path is not measured here yet.
.EXAMPLE
    # Arrays need -Command (with -File, "100,1000" is read as the number 1001000):
    dotnet pwsh -c '& ./bench/Invoke-ScaleBench.ps1 -ModulePath out/PicoHsm/PicoHsm.psd1 -Count 100,1000 -ListCount 5000'
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [int[]] $Count = @(100, 1000, 5000),
    # Listing only (no backup or restore) for these N: the C attribute read vs Get-PicoKey.
    [int[]] $ListCount = @(),
    # Peak memory only (a Backup-PicoHsm of N keys each): the smallest is compared with the largest N
    # (default with 5,000 in -Count: 500).
    [int[]] $MemoryCount = @(),
    # Only these parts (for profiling one of them; the full run measures all). Memory comes with Backup.
    [ValidateSet('Backup', 'Pipe', 'Tool', 'Restore', 'List', 'Startup')] [string[]] $Operations = @('Backup', 'Pipe', 'Tool', 'Restore', 'List', 'Startup'),
    # The backup's three ways (C limit, Backup-PicoHsm, the pipeline) are measured this many times, taking
    # turns, and each figure is the median: one backup of 1,000 keys is ~0.6 s, mostly fsync, and the
    # disk moves a single figure by a third between runs.
    [ValidateRange(1, 9)] [int] $Rounds = 3,
    [switch] $Quick
)
$ErrorActionPreference = 'Stop'
if ($Quick) { $Count = @(100, 300) }
# The memory target compares a 500-key backup with a 5,000-key one.
elseif (-not $PSBoundParameters.ContainsKey('MemoryCount') -and $Count -contains 5000 -and $Count -notcontains 500) { $MemoryCount = @(500) }
$ModulePath = (Resolve-Path $ModulePath).ProviderPath
Import-Module (Join-Path $PSScriptRoot '../tests/pester/TestEnvironment.psm1')
$pwsh = Get-PwshCommand
$module = Get-SoftHsmModulePath
$pinText = '648219'
$work = (New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-scale-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))).FullName

# The C limit, built from the PKCS#11 header of Debian's libp11-kit-dev.
$header = '/usr/include/p11-kit-1/p11-kit/pkcs11.h'
if (-not (Test-Path $header)) { throw "The C limit needs ${header}: apt-get install libp11-kit-dev (build.ps1 -Task Bench installs it)." }
$limit = Join-Path $work 'p11limit'
& gcc -O2 -o $limit (Join-Path $PSScriptRoot 'native/p11limit.c') -I/usr/include/p11-kit-1 -ldl
if ($LASTEXITCODE -ne 0) { throw 'gcc could not build bench/native/p11limit.c.' }

function Invoke-Limit([string[]] $Arguments) {
    $o = & $limit @Arguments 2>&1
    if ($LASTEXITCODE -ne 0) { throw "p11limit $($Arguments[0]) failed: $o" }
    [double](($o | Select-String '^seconds (.+)$').Matches[0].Groups[1].Value)
}

function Invoke-Step([string] $Step, [string] $Token, [string] $Directory, [string] $Shares) {
    $a = @('-NoProfile', '-NonInteractive', '-File', (Join-Path $PSScriptRoot 'ScaleStep.ps1'), '-Step', $Step, '-ModulePath', $ModulePath, '-Token', $Token)
    if ($Directory) { $a += @('-Directory', $Directory) }
    if ($Shares) { $a += @('-SharesDirectory', $Shares) }
    $o = & $pwsh[0] @($pwsh | Select-Object -Skip 1) @a 2>&1 | ForEach-Object { "$_" }
    if ($LASTEXITCODE -ne 0) { throw "$Step on $Token failed: $($o -join "`n")" }
    ($o | Where-Object { $_ -like '{*' } | Select-Object -Last 1) | ConvertFrom-Json
}

function Measure-Process([scriptblock] $Body, [int] $Times = 3) {
    $t = foreach ($i in 1..$Times) { $sw = [Diagnostics.Stopwatch]::StartNew(); & $Body | Out-Null; $sw.Elapsed.TotalSeconds }
    ($t | Sort-Object)[[int][math]::Floor($Times / 2)]  # the median
}

# Start-up: the module's import + connect + first listing over bare `pwsh -c exit`, and the token's
# own share as the C limit. The PIN costs a script something before PicoHsm is even imported:
# ConvertTo-SecureString loads Microsoft.PowerShell.Security, the process's first module import
# (~120 ms here). So the full command is timed twice: with a PIN made without any module load
# ([Net.NetworkCredential]::new('', pin).SecurePassword), over bare pwsh, which is the issue's
# figure; and with ConvertTo-SecureString, over a pwsh that only makes the PIN that way, as most
# scripts do. The C limit is a p11limit process that loads and initialises the module, logs in and
# finds key-1 by label, over a process that does nothing (/bin/true).
function Measure-Startup([int] $n, [int] $Rounds = 9) {
    $p = @($pwsh | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-c')
    $pinCmd = "`$pin = ConvertTo-SecureString '$pinText' -AsPlainText -Force"
    $plainPin = "`$pin = [Net.NetworkCredential]::new('', '$pinText').SecurePassword"
    $body = "Import-Module '$ModulePath'; `$null = Connect-PicoHsm -ModulePath '$module' -TokenLabel src -Pin `$pin; `$null = Get-PicoKey -Label key-1"
    # The five processes take turns, round after round, so that a busy minute on this noisy machine
    # weighs on all five alike instead of on whichever was timed in it; each figure is the median.
    # PowerShell's own floor: the first module import of a process sets up its module and script
    # machinery (~1,000 methods compiled), whatever the module; an empty script module shows it.
    $empty = New-Item -ItemType Directory (Join-Path $work 'EmptyModule') -Force
    Set-Content (Join-Path $empty 'EmptyModule.psm1') ''
    New-ModuleManifest (Join-Path $empty 'EmptyModule.psd1') -RootModule 'EmptyModule.psm1' -FunctionsToExport @() -CmdletsToExport @() -VariablesToExport @() -AliasesToExport @()
    $emptyCmd = "$plainPin; Import-Module '$(Join-Path $empty 'EmptyModule.psd1')'"
    $ways = [ordered]@{
        Bare = { & $pwsh[0] @p exit }; Empty = { & $pwsh[0] @p $emptyCmd }; Full = { & $pwsh[0] @p "$plainPin; $body" }
        Pin = { & $pwsh[0] @p $pinCmd }; FullPin = { & $pwsh[0] @p "$pinCmd; $body" }
    }
    $t = @{}; foreach ($k in $ways.Keys) { $t[$k] = [Collections.Generic.List[double]]::new() }
    foreach ($i in 1..$Rounds) {
        foreach ($k in $ways.Keys) { $sw = [Diagnostics.Stopwatch]::StartNew(); & $ways[$k] | Out-Null; $t[$k].Add($sw.Elapsed.TotalSeconds) }
    }
    $median = { param($xs) ($xs | Sort-Object)[[int][math]::Floor($xs.Count / 2)] }
    $bare = & $median $t.Bare; $emptyImport = & $median $t.Empty; $full = & $median $t.Full; $withPin = & $median $t.Pin; $fullPin = & $median $t.FullPin
    $true0 = Measure-Process { & /bin/true } 5
    $cStart = Measure-Process { & $limit label $module src $pinText key-1 } 5
    # What the token asks of a listing by label that also finds each key's public key and certificate
    # under any label (Get-PicoKey -Label): the label search, then a search of the key's id.
    $cStartCompanions = Measure-Process { & $limit labelid $module src $pinText key-1 } 5
    [pscustomobject]@{
        N = $n; Rounds = $Rounds; BarePwsh = [math]::Round($bare, 3); ImportConnectList = [math]::Round($full, 3)
        PwshWithPin = [math]::Round($withPin, 3); ImportConnectListPin = [math]::Round($fullPin, 3)
        EmptyModuleMs = [math]::Round(1000 * ($emptyImport - $bare)); AddedMs = [math]::Round(1000 * ($full - $bare)); AddedOverPinMs = [math]::Round(1000 * ($fullPin - $withPin))
        CLimitMs = [math]::Round(1000 * ($cStart - $true0)); CLimitCompanionsMs = [math]::Round(1000 * ($cStartCompanions - $true0))
    }
}

$rows = [Collections.Generic.List[object]]::new()
$memory = @{}
$memoryOnly = @{}
$samePub = @{}
# The machine's load (1-minute average) beside each figure: other work on the machine inflates every time.
function Get-Median([double[]] $Values) {
    $v = @($Values | Sort-Object)
    if ($v.Count % 2) { $v[[int][math]::Floor($v.Count / 2)] } else { ($v[$v.Count / 2 - 1] + $v[$v.Count / 2]) / 2 }
}
$perRound = [Collections.Generic.List[object]]::new()
# Before each timed backup: the files the step before wrote (and the folders a round deleted) are written
# back first, so no way pays for another's writeback in its own fsyncs (a C loop right after a backup of
# 5,000 files took twice as long as one after a quiet disk).
function Wait-DiskSettled { if (Get-Command sync -CommandType Application -ErrorAction Ignore) { & sync; Start-Sleep -Milliseconds 500 } }
$connected = @{}
$connectedOnly = @{}
function Get-LoadAverage { if (Test-Path /proc/loadavg) { [double]((Get-Content /proc/loadavg -Raw).Split(' ')[0]) } else { $null } }
$startup = $null
$saved = $env:SOFTHSM2_CONF
try {
    foreach ($n in $Count) {
        Write-Host "N = $n ..."
        $env:SOFTHSM2_CONF = New-SoftHsmEnvironment -TokenLabel 'src', 'dst', 'dstc', 'dstp' -Root (Join-Path $work "softhsm-$n")
        $null = Invoke-Limit @('populate', $module, 'src', $pinText, "$n")
        $shares = Join-Path $work "shares-$n"
        $c = Invoke-Step Ceremony src -Shares $shares
        $null = Invoke-Step ImportDkek dst -Shares $shares
        $null = Invoke-Step ImportDkek dstc -Shares $shares
        if ($Operations -contains 'Restore') { $null = Invoke-Step ImportDkek dstp -Shares $shares }
        $dkekId = $c.DkekId
        $load = Get-LoadAverage
        $perSec = { param($count, $s) if ($s -gt 0) { [math]::Round($count / $s, 1) } else { 0 } }
        $row = { param($op, $way, $s, $limitS, $keys) $rows.Add([pscustomobject]@{ N = $n; Operation = $op; Way = $way; Seconds = [math]::Round($s, 3); KeysPerSec = & $perSec $keys $s; OfLimit = if ($limitS) { [math]::Round($limitS / $s, 3) } else { 1.0 }; Load = $load }) }

        $cDir = New-Item -ItemType Directory (Join-Path $work "c-$n")
        # The backup's ways take turns for $Rounds rounds (a busy disk minute weighs on all of them alike);
        # each row is the median. Round 1's files are the ones restored below; later rounds' are deleted.
        $wantC = $Operations -contains 'Backup' -or $Operations -contains 'Restore' -or $Operations -contains 'Pipe' -or $Operations -contains 'Tool'
        $wantBackup = $Operations -contains 'Backup' -or $Operations -contains 'Restore'
        $times = @{ C = [Collections.Generic.List[double]]::new(); Backup = [Collections.Generic.List[double]]::new(); Pipe = [Collections.Generic.List[double]]::new() }
        $backupRounds = if ($Operations -contains 'Backup' -or $Operations -contains 'Pipe') { $Rounds } else { 1 }
        for ($round = 1; $round -le $backupRounds; $round++) {
            $suffix = if ($round -eq 1) { '' } else { "-round$round" }
            $made = @()
            if ($wantC) {
                $d = if ($round -eq 1) { $cDir } else { New-Item -ItemType Directory (Join-Path $work "c-$n$suffix") }
                Wait-DiskSettled
                $times.C.Add((Invoke-Limit @('wrap', $module, 'src', $pinText, $dkekId, $d.FullName)))
                if ($round -gt 1) { $made += $d.FullName }
            }
            if ($wantBackup) {
                $d = Join-Path $work "backup-$n$suffix"
                Wait-DiskSettled
                $backup = Invoke-Step Backup src -Directory $d
                $times.Backup.Add($backup.Seconds)
                if ($round -eq 1) { $memory[$n] = $backup.PeakKiB; $connected[$n] = $backup.ConnectedKiB } else { $made += $d }
            }
            if ($Operations -contains 'Pipe') {
                $d = (New-Item -ItemType Directory (Join-Path $work "pipe-$n$suffix")).FullName
                Wait-DiskSettled
                $times.Pipe.Add((Invoke-Step ExportPipe src -Directory $d).Seconds)
                $made += $d
            }
            foreach ($d in $made) { Remove-Item $d -Recurse -Force }
        }
        if ($wantC) {
            $cWrap = Get-Median $times.C
            & $row 'backup' 'C limit (C_WrapKey + durable write)' $cWrap $null $n
        }
        if ($wantBackup) {
            & $row 'backup' 'Backup-PicoHsm' (Get-Median $times.Backup) $cWrap $n
            $perRound.Add([pscustomobject]@{ Way = 'Backup-PicoHsm'; N = $n; Ratios = @(for ($i = 0; $i -lt $times.Backup.Count; $i++) { [math]::Round($times.C[$i] / $times.Backup[$i], 2) }) })
        }
        if ($Operations -contains 'Pipe') {
            & $row 'backup' 'Get-PicoKey | Export-PicoWrappedKey' (Get-Median $times.Pipe) $cWrap $n
            $perRound.Add([pscustomobject]@{ Way = 'Get-PicoKey | Export-PicoWrappedKey'; N = $n; Ratios = @(for ($i = 0; $i -lt $times.Pipe.Count; $i++) { [math]::Round($times.C[$i] / $times.Pipe[$i], 2) }) })
        }
        if ($Operations -contains 'Tool') {
            # One pkcs11-tool process per key, as admins script it today: AES keys only (ids 3, 6, 9, ...).
            $aesIds = @(for ($i = 3; $i -le $n; $i += 3) { $i })
            $sample = $aesIds | Select-Object -First 50
            $toolDir = New-Item -ItemType Directory (Join-Path $work "tool-$n")
            $sw = [Diagnostics.Stopwatch]::StartNew()
            foreach ($i in $sample) {
                & pkcs11-tool --module $module --token-label src --login --pin $pinText --wrap -m 0x210A --id $dkekId --application-id ('{0:x8}' -f $i) -o (Join-Path $toolDir "k$i.bin") 2>&1 | Out-Null
                if ($LASTEXITCODE -ne 0) { throw "pkcs11-tool --wrap failed for key $i." }
            }
            $toolPerKey = $sw.Elapsed.TotalSeconds / [math]::Max(1, $sample.Count)
            & $row 'backup' "pkcs11-tool per key (AES only, $($sample.Count) timed)" ($toolPerKey * $n) $cWrap $n
        }
        # Start-up on the 1,000-key token (the issue's), else on the middle N of the run.
        $startupN = if ($Count -contains 1000) { 1000 } else { $Count[[int][math]::Floor(($Count.Count - 1) / 2)] }
        if ($n -eq $startupN -and $Operations -contains 'Startup') {
            # Before the restore: SoftHSM2's C_Initialize loads every token of the configuration, and the
            # restore fills three more with N keys each (measured after it, the C limit alone took 3x as
            # long). The backup before leaves the disk writing back its files: settle that first.
            if (Get-Command sync -CommandType Application -ErrorAction Ignore) { & sync; Start-Sleep -Seconds 2 }
            $startup = Measure-Startup $n
        }
        if ($Operations -contains 'Restore') {
            $load = Get-LoadAverage
            $cUnwrap = Invoke-Limit @('unwrap', $module, 'dstc', $pinText, $dkekId, $cDir.FullName)
            & $row 'restore' 'C limit (C_UnwrapKey)' $cUnwrap $null $n
            # The same, plus the public-key object the module makes beside each private key (a second token object).
            $cUnwrapPub = Invoke-Limit @('unwrappub', $module, 'dstp', $pinText, $dkekId, $cDir.FullName)
            & $row 'restore' 'C limit + public-key objects (C_CreateObject)' $cUnwrapPub $cUnwrap $n
            $samePub[$n] = $cUnwrapPub
            $restore = Invoke-Step Restore dst -Directory (Join-Path $work "backup-$n")
            & $row 'restore' 'Restore-PicoHsm' $restore.Seconds $cUnwrap $n
        }
        if ($Operations -contains 'List') {
            $load = Get-LoadAverage
            $cList = Invoke-Limit @('attrs', $module, 'src', $pinText)
            & $row 'list' 'C limit (C_GetAttributeValue per key)' $cList $null $n
            $list = Invoke-Step List src
            & $row 'list' 'Get-PicoKey' $list.Seconds $cList $n
        }

        Remove-SoftHsmEnvironment -ConfigPath $env:SOFTHSM2_CONF
    }
    foreach ($n in $ListCount) {
        Write-Host "N = $n (listing only) ..."
        $env:SOFTHSM2_CONF = New-SoftHsmEnvironment -TokenLabel 'src' -Root (Join-Path $work "softhsm-list-$n")
        $null = Invoke-Limit @('populate', $module, 'src', $pinText, "$n")
        $c = Join-Path $work "shares-list-$n"
        $null = Invoke-Step Ceremony src -Shares $c
        $load = Get-LoadAverage
        $cList = Invoke-Limit @('attrs', $module, 'src', $pinText)
        $list = Invoke-Step List src
        $rows.Add([pscustomobject]@{ N = $n; Operation = 'list'; Way = 'C limit (C_GetAttributeValue per key)'; Seconds = [math]::Round($cList, 3); KeysPerSec = [math]::Round($n / $cList, 1); OfLimit = 1.0; Load = $load })
        $rows.Add([pscustomobject]@{ N = $n; Operation = 'list'; Way = 'Get-PicoKey'; Seconds = [math]::Round($list.Seconds, 3); KeysPerSec = [math]::Round($n / $list.Seconds, 1); OfLimit = [math]::Round($cList / $list.Seconds, 3); Load = $load })
        Remove-SoftHsmEnvironment -ConfigPath $env:SOFTHSM2_CONF
    }
    foreach ($n in $MemoryCount) {
        # Peak memory only: a Backup-PicoHsm of n keys in its own process (the target compares 500 with 5,000).
        Write-Host "N = $n (memory of a backup) ..."
        $env:SOFTHSM2_CONF = New-SoftHsmEnvironment -TokenLabel 'src' -Root (Join-Path $work "softhsm-mem-$n")
        $null = Invoke-Limit @('populate', $module, 'src', $pinText, "$n")
        $null = Invoke-Step Ceremony src -Shares (Join-Path $work "shares-mem-$n")
        $load = Get-LoadAverage
        $b = Invoke-Step Backup src -Directory (Join-Path $work "backup-mem-$n")
        $memoryOnly[$n] = $b.PeakKiB
        $connectedOnly[$n] = $b.ConnectedKiB
        $rows.Add([pscustomobject]@{ N = $n; Operation = 'backup (memory run)'; Way = 'Backup-PicoHsm'; Seconds = [math]::Round($b.Seconds, 3); KeysPerSec = [math]::Round($n / $b.Seconds, 1); OfLimit = $null; Load = $load })
        Remove-SoftHsmEnvironment -ConfigPath $env:SOFTHSM2_CONF
    }
}
finally {
    $env:SOFTHSM2_CONF = $saved
    Remove-Item $work -Recurse -Force -ErrorAction Ignore
}

"Scale benchmark on $([Environment]::ProcessorCount) cores, SoftHSM2 $((& softhsm2-util --version) 2>&1), $(Get-Date -Format u)"
$rows | Format-Table N, Operation, Way, Seconds, KeysPerSec, OfLimit, Load -AutoSize | Out-String -Width 200
"OfLimit: the C limit's time over this way's time (1.0 = as fast as the C loop; the target is >= 0.8)."
$flat = foreach ($way in 'Backup-PicoHsm', 'Restore-PicoHsm', 'Get-PicoKey') {
    $r = @($rows | Where-Object { $_.Way -eq $way -and $_.Operation -notlike '*memory*' })
    if ($r.Count -ge 2) { "{0}: ms per key {1} (N={2}) -> {3} (N={4}), growth {5:N2}x" -f $way, [math]::Round(1000 * $r[0].Seconds / $r[0].N, 2), $r[0].N, [math]::Round(1000 * $r[-1].Seconds / $r[-1].N, 2), $r[-1].N, (($r[-1].Seconds / $r[-1].N) / ($r[0].Seconds / $r[0].N)) }
}
$flat
foreach ($r in $perRound) {
    "{0} over the C limit (N={1}), round by round: {2} (the row: the medians' ratio)" -f $r.Way, $r.N, ($r.Ratios -join ' ')
}
foreach ($r in @($rows | Where-Object Way -EQ 'Restore-PicoHsm')) {
    if ($samePub[$r.N]) { "Restore-PicoHsm (N={0}) over the C limit that makes the same token objects (key + public key): {1:N2}" -f $r.N, ($samePub[$r.N] / $r.Seconds) }
}
$tool = $rows | Where-Object Way -Like 'pkcs11-tool*' | Select-Object -Last 1
$mod = $rows | Where-Object { $_.Way -eq 'Backup-PicoHsm' -and $_.Operation -eq 'backup' } | Select-Object -Last 1
if ($tool -and $mod) { "Backup-PicoHsm over one pkcs11-tool process per key (N={0}): {1:N1}x faster per key" -f $mod.N, ($mod.KeysPerSec / $tool.KeysPerSec) }
if ($startup) {
    "Start-up on the {0}-key token (medians of {1}, the five taking turns): bare pwsh {2} s; + Import-Module + Connect-PicoHsm + Get-PicoKey -Label key-1 (PIN from NetworkCredential) {3} s; pwsh making the PIN with ConvertTo-SecureString {4} s, + the same {5} s" -f $startup.N, $startup.Rounds, $startup.BarePwsh, $startup.ImportConnectList, $startup.PwshWithPin, $startup.ImportConnectListPin
    "  added: +{0} ms over bare pwsh, +{1} ms over pwsh with the ConvertTo-SecureString PIN (target <= 300 ms); the C limit (load + initialise the module, log in, find the key) alone: {2} ms, {3} ms with the second search that finds its public key and certificate; PowerShell's first module import (an empty script module) alone: +{4} ms" -f $startup.AddedMs, $startup.AddedOverPinMs, $startup.CLimitMs, $startup.CLimitCompanionsMs, $startup.EmptyModuleMs
}
# The smallest memory-only run (else the smallest N) against the largest N of either.
$small = [int](@(if ($memoryOnly.Count -gt 0) { $memoryOnly.Keys } else { $memory.Keys }) | Measure-Object -Minimum).Minimum
foreach ($k in @($memoryOnly.Keys)) { if (-not $memory.ContainsKey($k)) { $memory[$k] = $memoryOnly[$k] } }
$large = [int]($memory.Keys | Measure-Object -Maximum).Maximum
foreach ($k in @($connectedOnly.Keys)) { if (-not $connected.ContainsKey($k)) { $connected[$k] = $connectedOnly[$k] } }
if ($small -ne $large) {
    "Peak memory of Backup-PicoHsm: {0} MiB (N={1}) -> {2} MiB (N={3}): {4:N2}x (target <= 1.3x)" -f [math]::Round($memory[$small] / 1024), $small, [math]::Round($memory[$large] / 1024), $large, ($memory[$large] / $memory[$small])
    if ($connected[$small] -and $connected[$large]) {
        "  the same processes right after Connect-PicoHsm, before the backup (PowerShell, the module, and the token's objects SoftHSM2 loads into the process at C_Initialize): {0} MiB -> {1} MiB: {2:N2}x; the backup itself added {3} MiB (N={4}) and {5} MiB (N={6})" -f [math]::Round($connected[$small] / 1024), [math]::Round($connected[$large] / 1024), ($connected[$large] / $connected[$small]), [math]::Round(($memory[$small] - $connected[$small]) / 1024), $small, [math]::Round(($memory[$large] - $connected[$large]) / 1024), $large
    }
}
