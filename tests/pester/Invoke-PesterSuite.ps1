<#
.SYNOPSIS
    Runs the Pester suite in this (fresh) process and writes the pass/fail counts to a file.
    build.ps1 starts it with SOFTHSM2_CONF already pointing at throwaway tokens.
#>
param(
    [Parameter(Mandatory)] [string] $PesterPath,
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $SummaryPath,
    [string] $TestPath
)
$ErrorActionPreference = 'Stop'
Import-Module $PesterPath -Force
$env:PICOHSM_TEST_MODULE = $ModulePath

$config = New-PesterConfiguration
$config.Run.Path = if ($TestPath) { $TestPath -split ',' | ForEach-Object { if (Test-Path $_) { $_ } else { Join-Path $PSScriptRoot $_ } } } else { $PSScriptRoot }
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Detailed'
$config.Output.RenderMode = 'Plaintext'
$result = Invoke-Pester -Configuration $config

# A failed BeforeAll or a file that does not parse fails its tests without counting them as
# failed tests; count those too, so a broken setup can never look green.
$failed = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
# The names of what failed go into the summary too: build.ps1 repeats them just above its last line,
# where a CI log cut to its tail still shows them.
$names = @($result.Failed | ForEach-Object { "$($_.ExpandedPath): $((($_.ErrorRecord | Select-Object -First 1).Exception.Message -split "`n")[0])" }) +
    @($result.FailedBlocks | ForEach-Object { "$($_.ExpandedPath) (setup)" }) +
    @($result.FailedContainers | ForEach-Object { "$($_.Item) (file)" })
[pscustomobject]@{ Passed = $result.PassedCount; Failed = $failed; Skipped = $result.SkippedCount; FailedNames = $names } |
    ConvertTo-Json | Set-Content -Path $SummaryPath -Encoding utf8
