#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests and demonstrates the PicoHsm module.
.DESCRIPTION
    -Task Build  assembles a loadable module folder in out/PicoHsm (manifest, format file, DLLs).
    -Task Test   builds, runs the xUnit and Pester suites and ends with
                 "Tests: N passed, N failed, N skipped" (a skipped test shows its reason above).
    -Task Demo   runs the backup/restore drill on throwaway tokens.
    -Task Bench  prints benchmark figures: bench/Invoke-Bench.ps1 (per-operation costs),
                 bench/Invoke-CardBench.ps1 (the card path against sc-hsm-tool, Linux) and
                 bench/Invoke-ScaleBench.ps1 (backup, restore and listing of 100, 1,000 and 5,000
                 keys against the C limit and pkcs11-tool; start-up; memory). -Quick: 100 and 300 keys.
    -Task Fuzz   runs the parser fuzz tests with 80,000 inputs per parser (over 1,000,000 in all)
                 and prints the count per parser (the Test task runs them with 10,000 each).
    -Task Package builds and writes out/package/PicoHsm.<version>.nupkg, the package
                 Install-PSResource installs (Publish-PSResource into a local file repository;
                 no network). -Repository names another registered repository to publish to.
    System packages the tests need (SoftHSM2, OpenSC, pcscd, vpcd) are installed with apt-get
    when missing and this runs as root on Debian/Ubuntu; otherwise the script stops and prints
    the exact command to run.
.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 -Task Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Demo', 'Bench', 'Fuzz', 'Package')]
    [string] $Task = 'Build',

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # Pester only: run just these test files (paths or names under tests/pester).
    [string[]] $PesterPath,

    # Package only: a folder to write the .nupkg into (default out/package).
    [string] $PackageDirectory,

    # Package only: package the module already built in out/PicoHsm (the tests use this while
    # other tests have that module loaded).
    [switch] $NoBuild,

    # Bench only: a short run (100 and 300 keys).
    [switch] $Quick,

    # Test only: which build of the module the Pester suite loads: the Core build (net8.0, what
    # PowerShell 7 loads), the Desktop build (netstandard2.0, what Windows PowerShell 5.1 loads;
    # here loaded in PowerShell 7 through $env:PICOHSM_BUILD), or both, one run each (default).
    [ValidateSet('Both', 'Core', 'Desktop')]
    [string] $ModuleBuild = 'Both',

    # Test only: skip the xUnit runs (dotnet test and the Mono run); for a quick Pester-only pass.
    [switch] $SkipUnitTests,

    # Test only: the Mono run's hang guard: a test without a result after this many seconds, or
    # the whole run past MonoRunTimeout, stops the run and counts as failed.
    [int] $MonoTestTimeout = 1800,
    [int] $MonoRunTimeout = 3000,

    # Test only: inputs per fuzz test in the Mono run (PICOHSM_FUZZ_COUNT; 0 keeps the tests'
    # own 10,000).
    [int] $MonoFuzzCount = 1000,

    # Test only: in the Mono run, how many of DkekShareFileTests' byte changes that reach the KDF
    # (one 600,000-round PBKDF2 each) are decrypted (PICOHSM_KDF_FLIPS; every change is still read;
    # 0 decrypts all, as the .NET run does).
    [int] $MonoKdfFlips = 16,

    # Test only: Load.Tests' key count in the Desktop build's Pester run (PICOHSM_LOAD_KEYS);
    # 100 by default (the same code the Core run drives with 500 keys; keeps CI near 60 minutes);
    # 0 runs it as the Core run does (500).
    [int] $DesktopLoadKeys = 100
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$root = $PSScriptRoot
Import-Module (Join-Path $root 'tests/pester/TestEnvironment.psm1') -Force
$out = Join-Path $root 'out'
$moduleOut = Join-Path $out 'PicoHsm'

function Invoke-Native {
    param([string] $Exe, [string[]] $Arguments)
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "'$Exe $($Arguments -join ' ')' failed with exit code $LASTEXITCODE." }
}

function Install-SystemPackage {
    # Each entry: a command or file that proves the package is there, and the Debian package.
    param([hashtable[]] $Need)
    $missing = foreach ($n in $Need) {
        $present = if ($n.ContainsKey('Command')) { Get-Command $n['Command'] -ErrorAction Ignore } else { Test-Path $n['File'] }
        if (-not $present) { $n.Package }
    }
    $missing = @($missing | Select-Object -Unique)
    if (-not $missing) { return }
    $cmd = "apt-get update && apt-get install -y $($missing -join ' ')"
    $isRoot = $IsLinux -and ((id -u) -eq '0')
    if ($isRoot -and (Get-Command apt-get -ErrorAction Ignore)) {
        Write-Host "Installing system packages: $($missing -join ', ')"
        $env:DEBIAN_FRONTEND = 'noninteractive'
        & bash -c "apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null && apt-get -o DPkg::Lock::Timeout=300 install -y -qq $($missing -join ' ') >/dev/null"
        if ($LASTEXITCODE -ne 0) { throw "Installing $($missing -join ', ') failed. Run: $cmd" }
        return
    }
    throw "Missing system packages: $($missing -join ', '). Install them and run again: sudo $cmd"
}

function Get-TestPrerequisites {
    if (-not $IsLinux) { return }
    Install-SystemPackage @(
        @{ Command = 'softhsm2-util'; Package = 'softhsm2' }
        @{ Command = 'pkcs11-tool'; Package = 'opensc' }
        @{ Command = 'sc-hsm-tool'; Package = 'opensc' }
        @{ Command = 'pcscd'; Package = 'pcscd' }
        @{ File = '/usr/lib/pcsc/drivers/serial/libifdvpcd.so'; Package = 'vsmartcard-vpcd' }
        @{ Command = 'openssl'; Package = 'openssl' }
        # The Mono run of the net472 unit tests (.NET Framework's class library on Linux).
        @{ Command = 'mono'; Package = 'mono-runtime' }
        @{ File = '/usr/lib/mono/4.5/System.Numerics.dll'; Package = 'mono-devel' }
        @{ File = '/usr/share/.mono/certs'; Package = 'ca-certificates-mono' }
    )
}

function Invoke-Build {
    Write-Host "Building PicoHsm ($Configuration)"
    if (Test-Path $moduleOut) { Remove-Item $moduleOut -Recurse -Force }
    # Two builds of the DLLs, one module folder: bin/Core (net8.0, PowerShell 7.4+) and
    # bin/Desktop (netstandard2.0, Windows PowerShell 5.1); PicoHsm.psm1 loads the one that fits.
    $bins = foreach ($b in @{ Name = 'Core'; Framework = 'net8.0' }, @{ Name = 'Desktop'; Framework = 'netstandard2.0' }) {
        $dir = Join-Path $moduleOut "bin/$($b.Name)"
        Invoke-Native dotnet @('publish', (Join-Path $root 'src/PicoHsm/PicoHsm.csproj'), '-c', $Configuration, '-f', $b.Framework, '-o', $dir, '--nologo', '-v', 'q') | Out-Host
        $dir
    }
    Copy-Item (Join-Path $root 'PicoHsm.psd1'), (Join-Path $root 'PicoHsm.psm1'), (Join-Path $root 'PicoHsm.format.ps1xml'), (Join-Path $root 'LICENSE'), (Join-Path $root 'CHANGELOG.md') $moduleOut
    # Conceptual help (Get-Help about_PicoHsm*): PowerShell looks for it in the module's culture folder.
    New-Item -ItemType Directory -Force (Join-Path $moduleOut 'en-US') | Out-Null
    Copy-Item (Join-Path $root 'docs/help/about_*.help.txt') (Join-Path $moduleOut 'en-US')
    # Help for every cmdlet (MAML), made from docs/help in a fresh process that loads the new DLL.
    $pwsh = Get-PwshCommand
    & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File (Join-Path $root 'tools/New-CmdletHelp.ps1') `
        -ModuleManifest (Join-Path $moduleOut 'PicoHsm.psd1') -HelpSource (Join-Path $root 'docs/help/PicoHsm.help.psd1') `
        -OutputFile ((@(Join-Path $moduleOut 'en-US/PicoHsm.dll-Help.xml') + @($bins | ForEach-Object { Join-Path $_ 'en-US/PicoHsm.dll-Help.xml' })) -join ';') | Out-Host
    if ($LASTEXITCODE -ne 0) { throw 'Writing the cmdlet help failed (see above).' }
    Invoke-Native dotnet @('build', (Join-Path $root 'tests/CardSimulator/CardSimulator.csproj'), '-c', $Configuration, '-o', (Join-Path $out 'CardSimulator'), '--nologo', '-v', 'q')
    Write-Host "Module: $moduleOut"
}

function Get-PesterModulePath {
    Invoke-Native dotnet @('restore', (Join-Path $root 'tools/Pester.csproj'), '--nologo', '-v', 'q') | Out-Host
    $packages = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else {
        ((dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim()
    }
    $psd1 = Join-Path $packages 'pester/6.2.0/tools/Pester.psd1'
    if (-not (Test-Path $psd1)) { throw "Pester was not restored to $psd1." }
    $psd1
}

function Invoke-UnitTests {
    $results = Join-Path $out 'test-results'
    New-Item -ItemType Directory -Force $results | Out-Null
    $passed = 0; $failed = 0; $skipped = 0; $names = [Collections.Generic.List[string]]::new()
    # The fuzz tests write how many inputs each parser took; printed after the run.
    $fuzzReport = Join-Path $results 'fuzz-counts.txt'
    if (Test-Path $fuzzReport) { Remove-Item $fuzzReport }
    $env:PICOHSM_FUZZ_REPORT = $fuzzReport
    foreach ($proj in 'tests/units/PicoHsm.Core.Tests/PicoHsm.Core.Tests.csproj', 'tests/units/PicoHsm.Module.Tests/PicoHsm.Module.Tests.csproj') {
        $name = [IO.Path]::GetFileNameWithoutExtension($proj)
        $trx = Join-Path $results "$name.trx"
        if (Test-Path $trx) { Remove-Item $trx }
        Write-Host "xUnit: $name"
        # net10.0 only: the net472 build of the core tests is the Mono run's (Invoke-MonoUnitTests).
        & dotnet test (Join-Path $root $proj) -c $Configuration -f net10.0 --nologo -v q --logger "trx;LogFileName=$trx" --logger 'console;verbosity=minimal' | Out-Host
        if (-not (Test-Path $trx)) {
            Write-Host "xUnit run of $name produced no results (build failure?)" -ForegroundColor Red
            $failed++
            $names.Add("$name (no results)")
            continue
        }
        $doc = [xml](Get-Content -Raw $trx)
        $counters = $doc.TestRun.ResultSummary.Counters
        $passed += [int]$counters.passed
        $failed += [int]$counters.failed + [int]$counters.error + [int]$counters.timeout + [int]$counters.aborted
        foreach ($r in $doc.SelectNodes("//*[local-name()='UnitTestResult'][@outcome='Failed']")) {
            $message = $r.SelectSingleNode(".//*[local-name()='Message']")
            $names.Add("$($r.testName): $(if ($message) { ($message.InnerText.Trim() -split "`n")[0] })")
        }
        # A skipped test is in no counter (not even notExecuted): count its result, outcome NotExecuted.
        foreach ($r in $doc.SelectNodes("//*[local-name()='UnitTestResult'][@outcome='NotExecuted']")) {
            $skipped++
            Write-Host "Skipped $($r.testName): $($r.InnerText.Trim())" -ForegroundColor Yellow
        }
    }
    $env:PICOHSM_FUZZ_REPORT = $null
    if (Test-Path $fuzzReport) { Write-Host 'Fuzz inputs per parser:'; Get-Content $fuzzReport | Sort-Object | ForEach-Object { Write-Host "  $_" } }
    [pscustomobject]@{ Passed = $passed; Failed = $failed; Skipped = $skipped; FailedNames = $names.ToArray() }
}

# Gaps of Mono that .NET Framework does not have: a test that fails on Mono only for one of these
# (recognised by its exception) is counted as skipped, with the reason, not as passed. Such tests
# run in the net10.0 run here and on .NET Framework in the Windows workflow.
$script:MonoGaps = @(
    @{ Match = '^System\.NotImplementedException'; Why = "Mono's ECDsa is a stub (NotImplementedException); .NET Framework has ECDsaCng" }
    @{ Match = 'CertificateRequest'; Why = 'Mono has no System.Security.Cryptography.X509Certificates.CertificateRequest (.NET Framework 4.7.2 has)' }
)

function Invoke-WithHangGuard {
    # Runs xunit.console -verbose and watches its [STARTING]/[FINISHED] lines: a test without a
    # result after -TestLimit seconds (or the run past -RunLimit) stops the run. xUnit 2's Timeout
    # covers async tests only, and a hung Mono must not hold CI until the job limit. Returns $null
    # when the run ended by itself, else the counts seen so far with the hung tests as failures.
    param([string] $FilePath, [string[]] $ArgumentList, [int] $TestLimit, [int] $RunLimit)
    $psi = [Diagnostics.ProcessStartInfo]::new($FilePath)
    foreach ($a in $ArgumentList) { $psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false; $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true
    $lines = [Collections.Concurrent.ConcurrentQueue[string]]::new()
    $p = [Diagnostics.Process]::new(); $p.StartInfo = $psi
    $handler = { if ($null -ne $EventArgs.Data) { $Event.MessageData.Enqueue($EventArgs.Data) } }
    $e1 = Register-ObjectEvent $p OutputDataReceived -Action $handler -MessageData $lines
    $e2 = Register-ObjectEvent $p ErrorDataReceived -Action $handler -MessageData $lines
    $started = [Collections.Generic.Dictionary[string, datetime]]::new()
    $finished = 0; $failedSeen = [Collections.Generic.List[string]]::new(); $skippedSeen = 0; $hung = @(); $stopped = $false
    $clock = [Diagnostics.Stopwatch]::StartNew()
    try {
        [void]$p.Start(); $p.BeginOutputReadLine(); $p.BeginErrorReadLine()
        while ($true) {
            $exited = $p.WaitForExit(1000)
            $line = $null
            while ($lines.TryDequeue([ref]$line)) {
                Write-Host $line
                if ($line -match '^\s+(\S+) \[STARTING\]$') { $started[$Matches[1]] = [datetime]::UtcNow }
                elseif ($line -match '^\s+(\S+) \[FINISHED\]') { [void]$started.Remove($Matches[1]); $finished++ }
                elseif ($line -match '^\s+(\S+) \[FAIL\]$') { $failedSeen.Add("[Mono] $($Matches[1])") }
                elseif ($line -match '^\s+(\S+) \[SKIP\]$') { $skippedSeen++ }
            }
            if ($exited) { $p.WaitForExit(); break }
            $now = [datetime]::UtcNow
            $hung = @($started.GetEnumerator() | Where-Object { ($now - $_.Value).TotalSeconds -gt $TestLimit } | ForEach-Object Key)
            if ($hung.Count -gt 0 -or $clock.Elapsed.TotalSeconds -gt $RunLimit) { $stopped = $true; break }
        }
    }
    finally {
        if (-not $p.HasExited) { $p.Kill($true); $p.WaitForExit() }
        Unregister-Event -SourceIdentifier $e1.Name; Unregister-Event -SourceIdentifier $e2.Name
    }
    Write-Host ("xUnit on Mono: {0:n0} s" -f $clock.Elapsed.TotalSeconds)
    if (-not $stopped) { return $null }
    $names = @($hung | ForEach-Object { "[Mono] ${_}: no result after $TestLimit s, the Mono run was stopped (hang guard)" })
    if (-not $names) { $names = @("[Mono] the run took over $RunLimit s and was stopped (hang guard); running: $(@($started.Keys) -join ', ')") }
    foreach ($n in $names) { Write-Host $n -ForegroundColor Red }
    # Counted from the verbose lines (no XML is written when the runner is killed).
    $names = @($failedSeen) + $names
    [pscustomobject]@{ Passed = $finished - $failedSeen.Count - $skippedSeen; Failed = $names.Count; Skipped = $skippedSeen; FailedNames = $names }
}

function Invoke-MonoUnitTests {
    # The core's xUnit tests built for net472 (.NET Framework's reference assemblies, the core's
    # netstandard2.0 build: the Desktop build's code) and run under Mono with xunit.runner.console.
    $none = [pscustomobject]@{ Passed = 0; Failed = 0; Skipped = 0; FailedNames = @() }
    if (-not $IsLinux) { Write-Host 'xUnit on Mono: not on Linux, left out (the Windows workflow runs the Desktop build on .NET Framework).'; return $none }
    $mono = Get-Command mono -ErrorAction Ignore
    if (-not $mono) {
        Write-Host 'xUnit on Mono: mono is not installed (apt-get install mono-runtime mono-devel)' -ForegroundColor Red
        return [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; FailedNames = @('xUnit on Mono (mono missing)') }
    }
    $proj = Join-Path $root 'tests/units/PicoHsm.Core.Tests/PicoHsm.Core.Tests.csproj'
    $bin = Join-Path $out 'mono-tests'
    Write-Host 'xUnit on Mono: PicoHsm.Core.Tests (net472)'
    & dotnet build $proj -c $Configuration -f net472 -o $bin --nologo -v q | Out-Host
    if ($LASTEXITCODE -ne 0) { return [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; FailedNames = @('xUnit on Mono (net472 build failed)') } }
    $packages = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { ((dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim() }
    $runner = Join-Path $packages 'xunit.runner.console/2.4.1/tools/net472/xunit.console.exe'
    $xml = Join-Path $out 'test-results/PicoHsm.Core.Tests.mono.xml'
    if (Test-Path $xml) { Remove-Item $xml }
    $runArgs = @($runner, (Join-Path $bin 'PicoHsm.Core.Tests.dll'), '-xml', $xml, '-noshadow', '-nologo', '-nocolor', '-verbose')
    # The fuzz tests' input count: Mono's JIT and managed crypto make each input several times
    # dearer (10,000 tampered .wky files took 404 s here, about 30 s on .NET 10); the .NET run
    # keeps 10,000, the Mono run checks the same code on .NET Framework's library with fewer.
    $savedFuzz = $env:PICOHSM_FUZZ_COUNT
    $savedFlips = $env:PICOHSM_KDF_FLIPS
    if ($MonoFuzzCount -gt 0) {
        $env:PICOHSM_FUZZ_COUNT = "$MonoFuzzCount"
        Write-Host "xUnit on Mono: fuzz tests with $MonoFuzzCount inputs each (-MonoFuzzCount; the .NET run uses 10,000)"
    }
    if ($MonoKdfFlips -gt 0) {
        # Each such change costs a full PBKDF2 (several seconds under Mono); the .NET run decrypts them all.
        $env:PICOHSM_KDF_FLIPS = "$MonoKdfFlips"
        Write-Host "xUnit on Mono: DkekShareFileTests decrypts $MonoKdfFlips of the byte changes that reach the KDF (-MonoKdfFlips; the .NET run: all)"
    }
    try { $hung = Invoke-WithHangGuard -FilePath $mono.Source -ArgumentList $runArgs -TestLimit $MonoTestTimeout -RunLimit $MonoRunTimeout }
    finally { $env:PICOHSM_FUZZ_COUNT = $savedFuzz; $env:PICOHSM_KDF_FLIPS = $savedFlips }
    if ($hung) { return $hung }
    if (-not (Test-Path $xml)) { return [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; FailedNames = @('xUnit on Mono (no results)') } }
    $doc = [xml](Get-Content -Raw $xml)
    $passed = @($doc.SelectNodes("//test[@result='Pass']")).Count
    $skipped = 0; $names = [Collections.Generic.List[string]]::new()
    foreach ($t in $doc.SelectNodes("//test[@result='Skip']")) { $skipped++; Write-Host "Skipped [Mono] $($t.name): $($t.reason.InnerText)" -ForegroundColor Yellow }
    foreach ($t in $doc.SelectNodes("//test[@result='Fail']")) {
        $type = "$($t.failure.'exception-type')"; $message = "$($t.failure.message.InnerText)"
        $gap = $script:MonoGaps | Where-Object { "$type $message" -match $_.Match -or $type -match $_.Match } | Select-Object -First 1
        if ($gap) { $skipped++; Write-Host "Skipped [Mono] $($t.name): $($gap.Why)" -ForegroundColor Yellow }
        else { $names.Add("[Mono] $($t.name): $(($message -split "`n")[0])") }
    }
    # A class whose set-up failed counts as an error of the assembly, not as a test.
    # (the attribute: xunit.console also writes an <errors> element, which $_.errors would return beside it)
    $errors = ($doc.assemblies.assembly | ForEach-Object { [int]$_.GetAttribute('errors') } | Measure-Object -Sum).Sum
    $errors = [math]::Max($errors, @($doc.SelectNodes('//errors/error')).Count)
    if ($errors -gt 0) { $names.Add("[Mono] $errors error(s) outside tests (see above)") }
    [pscustomobject]@{ Passed = $passed; Failed = $names.Count; Skipped = $skipped; FailedNames = $names.ToArray() }
}

function Invoke-PesterTests {
    param([ValidateSet('Core', 'Desktop')] [string] $Build = 'Core')
    $pester = Get-PesterModulePath
    $summary = Join-Path $out "test-results/pester-summary-$Build.json"
    if (Test-Path $summary) { Remove-Item $summary }
    # -SkipUnitTests leaves no xUnit run to make the folder.
    New-Item -ItemType Directory -Force (Split-Path $summary) | Out-Null
    $pwsh = Get-PwshCommand
    $runner = Join-Path $root 'tests/pester/Invoke-PesterSuite.ps1'
    $argsList = @('-NoProfile', '-NonInteractive', '-File', $runner, '-PesterPath', $pester, '-ModulePath', (Join-Path $moduleOut 'PicoHsm.psd1'), '-SummaryPath', $summary)
    if ($PesterPath) { $argsList += @('-TestPath', ($PesterPath -join ',')) }
    # A fresh process, so the module DLL just built is the one loaded, and SoftHSM2 reads this
    # throwaway configuration at its first PKCS#11 call (it must be in the environment before
    # the process starts: .NET does not pass later changes to native code).
    $conf = New-SoftHsmEnvironment -TokenLabel 'pico-test-a', 'pico-test-b', 'pico-test-c', 'pico-test-d', 'pico-test-e', 'pico-test-f'
    $savedConf = $env:SOFTHSM2_CONF
    $savedBuild = $env:PICOHSM_BUILD
    $savedLoad = $env:PICOHSM_LOAD_KEYS
    Write-Host "Pester: the $Build build of the module"
    $clock = [Diagnostics.Stopwatch]::StartNew()
    try {
        $env:SOFTHSM2_CONF = $conf
        # PicoHsm.psm1 loads bin/$Build in this process and every PowerShell it starts.
        $env:PICOHSM_BUILD = $Build
        if ($Build -eq 'Desktop' -and $DesktopLoadKeys -gt 0) {
            # Every file still runs; only Load.Tests' key count is smaller (the same code as the Core run's 500).
            $env:PICOHSM_LOAD_KEYS = "$DesktopLoadKeys"
            Write-Host "Pester (Desktop build): Load.Tests with $DesktopLoadKeys keys (-DesktopLoadKeys)"
        }
        & $pwsh[0] @($pwsh | Select-Object -Skip 1) @argsList | Out-Host
    }
    finally {
        $env:SOFTHSM2_CONF = $savedConf
        $env:PICOHSM_BUILD = $savedBuild
        $env:PICOHSM_LOAD_KEYS = $savedLoad
        Remove-SoftHsmEnvironment -ConfigPath $conf
    }
    Write-Host ("Pester ($Build build): {0:n0} s" -f $clock.Elapsed.TotalSeconds)
    if (-not (Test-Path $summary)) {
        Write-Host "Pester ($Build build) produced no summary (the runner failed before or while running)." -ForegroundColor Red
        return [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; FailedNames = @("Pester $Build build (no summary)") }
    }
    $result = Get-Content -Raw $summary | ConvertFrom-Json
    $result.FailedNames = @($result.FailedNames | ForEach-Object { "[$Build] $_" })
    $result
}

function Invoke-Package {
    # Publish-PSResource packs the module folder into a .nupkg and "publishes" it by copying it
    # into a repository; a local file repository registered for this one run makes that the
    # package file itself, without touching the network or the user's repository list for longer.
    $dir = if ($PackageDirectory) { $PackageDirectory } else { Join-Path $out 'package' }
    New-Item -ItemType Directory -Force $dir | Out-Null
    $dir = (Resolve-Path $dir).ProviderPath
    Import-Module Microsoft.PowerShell.PSResourceGet
    $name = 'PicoHsmPackage' + [guid]::NewGuid().ToString('n').Substring(0, 8)
    Register-PSResourceRepository -Name $name -Uri $dir -Trusted
    try {
        Get-ChildItem $dir -Filter 'PicoHsm.*.nupkg' | Remove-Item
        Publish-PSResource -Path $moduleOut -Repository $name -SkipDependenciesCheck
    }
    finally { Unregister-PSResourceRepository -Name $name }
    $pkg = Get-ChildItem $dir -Filter 'PicoHsm.*.nupkg' | Select-Object -First 1
    if (-not $pkg) { throw "Publish-PSResource wrote no PicoHsm package into $dir." }
    Write-Host "Package: $($pkg.FullName)"
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Package' {
        if (-not $NoBuild) { Invoke-Build }
        Invoke-Package
    }
    'Test' {
        Get-TestPrerequisites
        Invoke-Build
        $none = [pscustomobject]@{ Passed = 0; Failed = 0; Skipped = 0; FailedNames = @() }
        $unit = if ($SkipUnitTests) { $none } else { Invoke-UnitTests }
        $mono = if ($SkipUnitTests) { $none } else { Invoke-MonoUnitTests }
        $builds = if ($ModuleBuild -eq 'Both') { 'Core', 'Desktop' } else { @($ModuleBuild) }
        $pesterRuns = [ordered]@{}
        foreach ($b in $builds) { $pesterRuns[$b] = Invoke-PesterTests -Build $b }
        $all = @($unit, $mono) + @($pesterRuns.Values)
        $passed = ($all | Measure-Object -Property Passed -Sum).Sum
        $failed = ($all | Measure-Object -Property Failed -Sum).Sum
        $skipped = ($all | Measure-Object -Property Skipped -Sum).Sum
        # What failed, repeated where a log cut to its last lines still shows it.
        foreach ($n in $all | ForEach-Object { @($_.FailedNames) } | Where-Object { $_ }) { Write-Host "Failed: $n" -ForegroundColor Red }
        $parts = @("xUnit: $($unit.Passed) passed, $($unit.Failed) failed, $($unit.Skipped) skipped"
            "xUnit on Mono (net472): $($mono.Passed) passed, $($mono.Failed) failed, $($mono.Skipped) skipped") +
            @($pesterRuns.Keys | ForEach-Object { $r = $pesterRuns[$_]; "Pester ($_ build): $($r.Passed) passed, $($r.Failed) failed, $($r.Skipped) skipped" })
        Write-Host ($parts -join '; ')
        Write-Output "Tests: $passed passed, $failed failed, $skipped skipped"
        if ($failed -gt 0 -or $passed -eq 0) { exit 1 }
    }
    'Demo' {
        Get-TestPrerequisites
        Invoke-Build
        $pwsh = Get-PwshCommand
        $conf = New-SoftHsmEnvironment -TokenLabel 'demo-a', 'demo-b'
        $savedConf = $env:SOFTHSM2_CONF
        try {
            $env:SOFTHSM2_CONF = $conf
            & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File (Join-Path $root 'demo/Invoke-Demo.ps1') -ModulePath (Join-Path $moduleOut 'PicoHsm.psd1')
            $demoExit = $LASTEXITCODE
        }
        finally {
            $env:SOFTHSM2_CONF = $savedConf
            Remove-SoftHsmEnvironment -ConfigPath $conf
        }
        if ($demoExit -ne 0) { exit $demoExit }
        if ($IsLinux) {
            # The same drill on a Pico HSM: the card simulator behind pcscd's vpcd reader, or the
            # real device named by $env:PICOHSM_DEMO_READER (it is wiped!).
            $picoArgs = @('-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'demo/Invoke-PicoDemo.ps1'), '-ModulePath', (Join-Path $moduleOut 'PicoHsm.psd1'))
            if ($env:PICOHSM_DEMO_READER) { $picoArgs += @('-Reader', $env:PICOHSM_DEMO_READER) }
            & $pwsh[0] @($pwsh | Select-Object -Skip 1) @picoArgs
            if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
        }
    }
    'Fuzz' {
        Invoke-Build
        $report = Join-Path $out 'test-results/fuzz-counts.txt'
        New-Item -ItemType Directory -Force (Split-Path $report) | Out-Null
        if (Test-Path $report) { Remove-Item $report }
        $env:PICOHSM_FUZZ_COUNT = '80000'; $env:PICOHSM_FUZZ_REPORT = $report
        try {
            & dotnet test (Join-Path $root 'tests/units/PicoHsm.Core.Tests/PicoHsm.Core.Tests.csproj') -c $Configuration -f net10.0 --nologo -v q --filter 'FullyQualifiedName~PicoHsm.Core.Tests.Fuzz' | Out-Host
            $code = $LASTEXITCODE
        }
        finally { $env:PICOHSM_FUZZ_COUNT = $null; $env:PICOHSM_FUZZ_REPORT = $null }
        $lines = @(Get-Content $report -ErrorAction Ignore | Sort-Object)
        $lines | ForEach-Object { Write-Output $_ }
        $total = ($lines | ForEach-Object { if ($_ -match ': (\d+) (inputs|runs)') { [long]$Matches[1] } } | Measure-Object -Sum).Sum
        Write-Output "Fuzz: $total inputs in all, $(if ($code -eq 0) { 'none escaped' } else { 'FAILURES above' })"
        if ($code -ne 0) { exit $code }
    }
    'Bench' {
        Invoke-Build
        Get-TestPrerequisites
        # The scale benchmark's C limit is built from the PKCS#11 header of libp11-kit-dev.
        if ($IsLinux) { Install-SystemPackage @(@{ File = '/usr/include/p11-kit-1/p11-kit/pkcs11.h'; Package = 'libp11-kit-dev' }, @{ Command = 'gcc'; Package = 'gcc' }) }
        $pwsh = Get-PwshCommand
        $conf = New-SoftHsmEnvironment -TokenLabel 'bench-a'
        $savedConf = $env:SOFTHSM2_CONF
        try {
            $env:SOFTHSM2_CONF = $conf
            & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File (Join-Path $root 'bench/Invoke-Bench.ps1') -ModulePath (Join-Path $moduleOut 'PicoHsm.psd1')
        }
        finally {
            $env:SOFTHSM2_CONF = $savedConf
            Remove-SoftHsmEnvironment -ConfigPath $conf
        }
        $scale = @('-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'bench/Invoke-ScaleBench.ps1'), '-ModulePath', (Join-Path $moduleOut 'PicoHsm.psd1'))
        if ($Quick) { $scale += '-Quick' }
        & $pwsh[0] @($pwsh | Select-Object -Skip 1) @scale
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
        # The Pico path: the card simulator through pcscd + vpcd against one sc-hsm-tool process per key.
        if ($IsLinux) {
            & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File (Join-Path $root 'bench/Invoke-CardBench.ps1') -ModulePath (Join-Path $moduleOut 'PicoHsm.psd1') -Count ($Quick ? 10 : 20)
            if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
        }
    }
}
