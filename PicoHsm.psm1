# Loads the build of PicoHsm.dll that fits this PowerShell:
#   bin/Core     net8.0, for PowerShell 7.4+ (Core edition)
#   bin/Desktop  netstandard2.0, for Windows PowerShell 5.1 (Desktop edition, .NET Framework 4.7.2+)
# $env:PICOHSM_BUILD = 'Desktop' (or 'Core') overrides the choice; the tests use it to run the
# Desktop build in PowerShell 7 (Windows PowerShell cannot load the Core build).
$build = if ($env:PICOHSM_BUILD -in 'Core', 'Desktop') { $env:PICOHSM_BUILD }
         elseif ($PSEdition -eq 'Core') { 'Core' }
         else { 'Desktop' }
if ($build -eq 'Core' -and $PSEdition -ne 'Core') {
    throw "The Core build of PicoHsm needs PowerShell 7.4 or later; unset PICOHSM_BUILD to load the Desktop build."
}
$binary = Import-Module (Join-Path (Join-Path (Join-Path $PSScriptRoot 'bin') $build) 'PicoHsm.dll') -PassThru
Export-ModuleMember -Cmdlet @($binary.ExportedCmdlets.Keys)
