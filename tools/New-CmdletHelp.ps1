<#
.SYNOPSIS
    Writes MAML help (PicoHsm.dll-Help.xml) for every cmdlet of the built module from
    docs/help/PicoHsm.help.psd1, taking parameter types, positions and pipeline input from the
    cmdlets themselves. Fails when a cmdlet or a parameter has no text. Run by build.ps1.
#>
param([Parameter(Mandatory)] [string] $ModuleManifest, [Parameter(Mandatory)] [string] $HelpSource, [Parameter(Mandatory)] [string] $OutputFile)  # several paths separated by ';'
$ErrorActionPreference = 'Stop'
$module = Import-Module $ModuleManifest -PassThru
$help = Import-PowerShellDataFile $HelpSource
$common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
function X([string] $s) { [System.Security.SecurityElement]::Escape($s) }
function TypeName([type] $t) {
    $u = [Nullable]::GetUnderlyingType($t)
    if ($u) { $t = $u }
    if ($t.IsArray) { return (TypeName $t.GetElementType()) + '[]' }
    $t.Name
}
function ValueXml($p) {
    if ($p.ParameterType -eq [System.Management.Automation.SwitchParameter]) { return '' }
    "<command:parameterValue required=`"true`">$(TypeName $p.ParameterType)</command:parameterValue>"
}

$missing = @()
$sb = [System.Text.StringBuilder]::new()
[void]$sb.AppendLine('<?xml version="1.0" encoding="utf-8"?>')
[void]$sb.AppendLine('<helpItems schema="maml" xmlns="http://msh">')
foreach ($cmd in Get-Command -Module $module.Name -CommandType Cmdlet | Sort-Object Name) {
    $h = $help[$cmd.Name]
    if (-not $h) { $missing += "$($cmd.Name): no help"; continue }
    [void]$sb.AppendLine('<command:command xmlns:maml="http://schemas.microsoft.com/maml/2004/10" xmlns:command="http://schemas.microsoft.com/maml/dev/command/2004/10" xmlns:dev="http://schemas.microsoft.com/maml/dev/2004/10">')
    [void]$sb.AppendLine("<command:details><command:name>$($cmd.Name)</command:name><command:verb>$($cmd.Verb)</command:verb><command:noun>$($cmd.Noun)</command:noun><maml:description><maml:para>$(X $h.Synopsis)</maml:para></maml:description></command:details>")
    [void]$sb.AppendLine("<maml:description><maml:para>$(X $h.Description)</maml:para></maml:description>")
    $params = $cmd.Parameters.Values | Where-Object { $_.Name -notin $common }
    [void]$sb.AppendLine('<command:syntax>')
    foreach ($set in $cmd.ParameterSets) {
        [void]$sb.AppendLine("<command:syntaxItem><maml:name>$($cmd.Name)</maml:name>")
        foreach ($p in $set.Parameters | Where-Object { $_.Name -notin $common }) {
            $pos = if ($p.Position -ge 0) { $p.Position } else { 'named' }
            [void]$sb.AppendLine("<command:parameter required=`"$($p.IsMandatory.ToString().ToLower())`" position=`"$pos`"><maml:name>$($p.Name)</maml:name>$(ValueXml $p)</command:parameter>")
        }
        [void]$sb.AppendLine('</command:syntaxItem>')
    }
    [void]$sb.AppendLine('</command:syntax><command:parameters>')
    foreach ($p in $params) {
        $text = $h.Parameters[$p.Name]
        if (-not $text) { $missing += "$($cmd.Name) -$($p.Name): no text"; continue }
        $attr = $p.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] }
        $required = [bool]($attr | Where-Object Mandatory)
        $pipe = @(if ($attr | Where-Object ValueFromPipeline) { 'ByValue' }; if ($attr | Where-Object ValueFromPipelineByPropertyName) { 'ByPropertyName' })
        $pipeText = if ($pipe) { "True ($($pipe -join ', '))" } else { 'False' }
        $position = ($attr | Where-Object { $_.Position -ge 0 } | Select-Object -First 1).Position
        $pos = if ($null -ne $position) { $position } else { 'named' }
        [void]$sb.AppendLine("<command:parameter required=`"$($required.ToString().ToLower())`" globbing=`"false`" pipelineInput=`"$pipeText`" position=`"$pos`"><maml:name>$($p.Name)</maml:name><maml:description><maml:para>$(X $text)</maml:para></maml:description>$(ValueXml $p)<dev:type><maml:name>$($p.ParameterType.FullName)</maml:name></dev:type></command:parameter>")
    }
    [void]$sb.AppendLine('</command:parameters><command:examples>')
    $n = 0
    foreach ($e in $h.Examples) {
        $n++
        [void]$sb.AppendLine("<command:example><maml:title>-------------------------- Example $n --------------------------</maml:title><dev:code>$(X $e.Code)</dev:code><dev:remarks><maml:para>$(X $e.Remarks)</maml:para></dev:remarks></command:example>")
    }
    [void]$sb.AppendLine('</command:examples></command:command>')
}
[void]$sb.AppendLine('</helpItems>')
if ($missing) { throw "Help is missing in $HelpSource`n$($missing -join "`n")" }
foreach ($f in $OutputFile -split ';') {
    New-Item -ItemType Directory -Force (Split-Path $f) | Out-Null
    [IO.File]::WriteAllText($f, $sb.ToString())
}
