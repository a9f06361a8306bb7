<#
.SYNOPSIS
    Runs every ```powershell runnable block of README.md, in order, in this (fresh) process, and
    returns each block's output as it prints at 80 columns. Readme.Tests.ps1 compares that with
    the ```text output blocks that follow; run with -Update to rewrite those blocks from a real run.
    The caller sets SOFTHSM2_CONF to tokens labelled ca-hsm and ca-hsm-2 (PIN 648219) and
    starts this in an empty working folder.
#>
param([Parameter(Mandatory)] [string] $Readme, [Parameter(Mandatory)] [string] $ModuleManifest, [string] $SoftHsm, [switch] $Update)
$ErrorActionPreference = 'Stop'
# A variable the README uses before it sets it (like $pin once was) is an error here.
Set-StrictMode -Version Latest
# What the admin types at the prompts: the user PIN, and one password per custodian.
function global:Read-Host {
    param([Parameter(Position = 0)] $Prompt, [switch] $AsSecureString)
    $text = if ("$Prompt" -match 'custodian (\d+)') { "custodian-password-$($Matches[1])" } else { '648219' }
    if ($AsSecureString) { ConvertTo-SecureString $text -AsPlainText -Force } else { $text }
}
$env:PICOHSM_PKCS11_MODULE = $SoftHsm
# "Import-Module PicoHsm" in the README means the module under test.
$env:PSModulePath = (Split-Path (Split-Path $ModuleManifest)) + [IO.Path]::PathSeparator + $env:PSModulePath
$text = Get-Content -Raw $Readme
$blocks = [regex]::Matches($text, '(?ms)^```powershell runnable\r?\n(.*?)^```\r?\n(?:\r?\n?```text output\r?\n(.*?)^```\r?\n)?')
$results = foreach ($b in $blocks) {
    $code = $b.Groups[1].Value
    # Dot-sourced: the blocks share variables, as they do typed into one console.
    $out = . ([scriptblock]::Create($code)) 3>&1 | Out-String -Width 80
    [pscustomobject]@{ Code = $code; Output = $out.TrimEnd() -replace '(?m)[ \t]+$', ''; Shown = if ($b.Groups[2].Success) { $b.Groups[2].Value.TrimEnd() } else { $null }; Index = $b.Index; Length = $b.Length; HasShown = $b.Groups[2].Success }
}
if ($Update) {
    $sb = [System.Text.StringBuilder]::new($text)
    foreach ($r in @($results) | Sort-Object Index -Descending) {
        if (-not $r.HasShown) { continue }
        $replacement = "``````powershell runnable`n$($r.Code)```````n`n``````text output`n$($r.Output)`n```````n"
        [void]$sb.Remove($r.Index, $r.Length).Insert($r.Index, $replacement)
    }
    [IO.File]::WriteAllText($Readme, $sb.ToString())
}
$results | Select-Object Code, Output, Shown, HasShown | ConvertTo-Json -Depth 3
