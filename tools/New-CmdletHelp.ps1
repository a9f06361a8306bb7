<#
.SYNOPSIS
    Writes MAML help (PicoHsm.dll-Help.xml) for every cmdlet of the built module from
    docs/help/PicoHsm.help.psd1, taking parameter types, positions, pipeline input, wildcards,
    -WhatIf/-Confirm, INPUTS (the pipeline parameters' types) and OUTPUTS ([OutputType]) from the
    cmdlets themselves. Fails on any gap: a cmdlet or parameter without text, fewer than two
    examples, no related links, a link to nothing, or a parameter with a built-in default value
    and no text for it. Run by build.ps1.
#>
param([Parameter(Mandatory)] [string] $ModuleManifest, [Parameter(Mandatory)] [string] $HelpSource, [Parameter(Mandatory)] [string] $OutputFile)  # several paths separated by ';'
$ErrorActionPreference = 'Stop'
$module = Import-Module $ModuleManifest -PassThru
$help = Import-PowerShellDataFile $HelpSource
$aboutTopics = Get-ChildItem (Split-Path $HelpSource) -Filter 'about_*.help.txt' | ForEach-Object { $_.Name -replace '\.help\.txt$' }
# -WhatIf and -Confirm are shown like any parameter (SYNTAX and PARAMETERS); the rest of the
# common parameters are the usual [<CommonParameters>].
$common = [System.Management.Automation.Cmdlet]::CommonParameters + @('ErrorAction', 'WarningAction', 'InformationAction', 'ProgressAction') + [System.Management.Automation.Cmdlet]::OptionalCommonParameters | Where-Object { $_ -notin 'WhatIf', 'Confirm' }
$shouldProcessText = @{
    WhatIf  = 'Shows what would happen (which device, which files) without changing anything.'
    Confirm = 'Asks for confirmation first. Cmdlets with a high impact ask even without it; in a non-interactive session pass -Confirm:$false (after -WhatIf showed the right target).'
}
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
function Globbing($p) { ([bool]($p.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })).ToString().ToLower() }

$missing = @()
$sb = [System.Text.StringBuilder]::new()
[void]$sb.AppendLine('<?xml version="1.0" encoding="utf-8"?>')
[void]$sb.AppendLine('<helpItems schema="maml" xmlns="http://msh">')
foreach ($cmd in Get-Command -Module $module.Name -CommandType Cmdlet | Sort-Object Name) {
    $h = $help[$cmd.Name]
    if (-not $h) { $missing += "$($cmd.Name): no help"; continue }
    $defaults = if ($h.Defaults) { $h.Defaults } else { @{} }
    $fresh = [Activator]::CreateInstance($cmd.ImplementingType)
    [void]$sb.AppendLine('<command:command xmlns:maml="http://schemas.microsoft.com/maml/2004/10" xmlns:command="http://schemas.microsoft.com/maml/dev/command/2004/10" xmlns:dev="http://schemas.microsoft.com/maml/dev/2004/10">')
    [void]$sb.AppendLine("<command:details><command:name>$($cmd.Name)</command:name><command:verb>$($cmd.Verb)</command:verb><command:noun>$($cmd.Noun)</command:noun><maml:description><maml:para>$(X $h.Synopsis)</maml:para></maml:description></command:details>")
    [void]$sb.AppendLine("<maml:description>$(@($h.Description -split "`n`n" | ForEach-Object { "<maml:para>$(X $_)</maml:para>" }) -join '')</maml:description>")
    $params = $cmd.Parameters.Values | Where-Object { $_.Name -notin $common }
    [void]$sb.AppendLine('<command:syntax>')
    foreach ($set in $cmd.ParameterSets) {
        [void]$sb.AppendLine("<command:syntaxItem><maml:name>$($cmd.Name)</maml:name>")
        foreach ($p in $set.Parameters | Where-Object { $_.Name -notin $common }) {
            $pos = if ($p.Position -ge 0) { $p.Position } else { 'named' }
            [void]$sb.AppendLine("<command:parameter required=`"$($p.IsMandatory.ToString().ToLower())`" globbing=`"$(Globbing $cmd.Parameters[$p.Name])`" position=`"$pos`"><maml:name>$($p.Name)</maml:name>$(ValueXml $p)</command:parameter>")
        }
        [void]$sb.AppendLine('</command:syntaxItem>')
    }
    [void]$sb.AppendLine('</command:syntax><command:parameters>')
    $inputs = @()
    foreach ($p in $params) {
        $text = if ($p.Name -in 'WhatIf', 'Confirm') { $shouldProcessText[$p.Name] } else { $h.Parameters[$p.Name] }
        if (-not $text) { $missing += "$($cmd.Name) -$($p.Name): no text"; continue }
        $attr = $p.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] }
        $required = [bool]($attr | Where-Object Mandatory)
        $pipe = @(if ($attr | Where-Object ValueFromPipeline) { 'ByValue' }; if ($attr | Where-Object ValueFromPipelineByPropertyName) { 'ByPropertyName' })
        $pipeText = if ($pipe) { "True ($($pipe -join ', '))" } else { 'False' }
        if ($pipe) { $inputs += [pscustomobject]@{ Type = $p.ParameterType; Parameter = $p.Name; How = $pipe; Aliases = $p.Aliases } }
        $position = ($attr | Where-Object { $_.Position -ge 0 } | Select-Object -First 1).Position
        $pos = if ($null -ne $position) { $position } else { 'named' }
        # A default the cmdlet has built in (a property initialiser) must be documented.
        $prop = $cmd.ImplementingType.GetProperty($p.Name)
        $builtIn = if ($prop -and $p.ParameterType -ne [System.Management.Automation.SwitchParameter]) { $prop.GetValue($fresh) }
        $hasBuiltIn = $null -ne $builtIn -and "$builtIn" -notin '', '0', 'False', 'Unknown'
        $default = if ($defaults.ContainsKey($p.Name)) { $defaults[$p.Name] }
            elseif ($hasBuiltIn) { $missing += "$($cmd.Name) -$($p.Name): default '$builtIn' has no text in Defaults"; '' }
            elseif ($required) { '' }
            elseif ($p.ParameterType -eq [System.Management.Automation.SwitchParameter]) { 'False' }
            else { 'None' }
        if ($hasBuiltIn -and $default -and $default -notlike "*$builtIn*") { $missing += "$($cmd.Name) -$($p.Name): Defaults text '$default' does not name the built-in default '$builtIn'" }
        [void]$sb.AppendLine("<command:parameter required=`"$($required.ToString().ToLower())`" globbing=`"$(Globbing $p)`" pipelineInput=`"$pipeText`" position=`"$pos`" aliases=`"$(if ($p.Aliases) { $p.Aliases -join ', ' } else { 'none' })`"><maml:name>$($p.Name)</maml:name><maml:description><maml:para>$(X $text)</maml:para></maml:description>$(ValueXml $p)<dev:type><maml:name>$($p.ParameterType.FullName)</maml:name></dev:type><dev:defaultValue>$(X $default)</dev:defaultValue></command:parameter>")
    }
    [void]$sb.AppendLine('</command:parameters><command:inputTypes>')
    if (-not $inputs) {
        [void]$sb.AppendLine('<command:inputType><dev:type><maml:name>None</maml:name></dev:type><maml:description><maml:para>This cmdlet takes no pipeline input.</maml:para></maml:description></command:inputType>')
    }
    foreach ($group in $inputs | Group-Object { $_.Type.FullName }) {
        $how = @($group.Group | ForEach-Object {
            $byName = if ('ByPropertyName' -in $_.How) { " (or an object with a $(@($_.Parameter) + @($_.Aliases) -join ' or ') property)" } else { '' }
            $byValue = if ('ByValue' -in $_.How) { 'by value' } else { 'by property name' }
            "-$($_.Parameter), $byValue$byName"
        }) -join '; '
        [void]$sb.AppendLine("<command:inputType><dev:type><maml:name>$(X $group.Name)</maml:name></dev:type><maml:description><maml:para>$(X "Bound to $how.")</maml:para></maml:description></command:inputType>")
    }
    [void]$sb.AppendLine('</command:inputTypes><command:returnValues>')
    $outputs = @($cmd.OutputType | Where-Object { $_.Type -ne [void] })
    if (-not $outputs) {
        [void]$sb.AppendLine('<command:returnValue><dev:type><maml:name>None</maml:name></dev:type><maml:description><maml:para>This cmdlet returns nothing.</maml:para></maml:description></command:returnValue>')
    }
    foreach ($o in $outputs) {
        $otext = if ($h.Outputs -and $h.Outputs[$o.Type.Name]) { $h.Outputs[$o.Type.Name] } else { '' }
        [void]$sb.AppendLine("<command:returnValue><dev:type><maml:name>$(X $o.Type.FullName)</maml:name></dev:type><maml:description><maml:para>$(X $otext)</maml:para></maml:description></command:returnValue>")
    }
    [void]$sb.AppendLine('</command:returnValues>')
    if ($h.Notes) { [void]$sb.AppendLine("<maml:alertSet><maml:alert><maml:para>$(X $h.Notes)</maml:para></maml:alert></maml:alertSet>") }
    [void]$sb.AppendLine('<command:examples>')
    $n = 0
    if (@($h.Examples).Count -lt 2) { $missing += "$($cmd.Name): fewer than two examples" }
    foreach ($e in $h.Examples) {
        $n++
        [void]$sb.AppendLine("<command:example><maml:title>-------------------------- Example $n --------------------------</maml:title><dev:code>$(X $e.Code)</dev:code><dev:remarks><maml:para>$(X $e.Remarks)</maml:para></dev:remarks></command:example>")
    }
    [void]$sb.AppendLine('</command:examples><maml:relatedLinks>')
    if (@($h.Links).Count -lt 2) { $missing += "$($cmd.Name): fewer than two related links" }
    foreach ($l in $h.Links) {
        if ($l -notin $aboutTopics -and -not (Get-Command -Module $module.Name -Name $l -ErrorAction Ignore)) { $missing += "$($cmd.Name): related link '$l' is neither a cmdlet of the module nor an about topic in $(Split-Path $HelpSource)" }
        [void]$sb.AppendLine("<maml:navigationLink><maml:linkText>$(X $l)</maml:linkText><maml:uri></maml:uri></maml:navigationLink>")
    }
    [void]$sb.AppendLine('</maml:relatedLinks></command:command>')
}
[void]$sb.AppendLine('</helpItems>')
if ($missing) { throw "Help is missing in $HelpSource`n$($missing -join "`n")" }
foreach ($f in $OutputFile -split ';') {
    New-Item -ItemType Directory -Force (Split-Path $f) | Out-Null
    [IO.File]::WriteAllText($f, $sb.ToString())
}
