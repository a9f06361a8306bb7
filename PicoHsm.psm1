# Loads the build of PicoHsm.dll that fits this PowerShell:
#   bin/Core     net8.0, for PowerShell 7.4+ (Core edition)
#   bin/Desktop  netstandard2.0, for Windows PowerShell 5.1 (Desktop edition, .NET Framework 4.7.2+)
# $env:PICOHSM_BUILD = 'Desktop' (or 'Core') overrides the choice; the tests use it to run the
# Desktop build in PowerShell 7 (Windows PowerShell cannot load the Core build).
# Start-up matters (scheduled scripts start a fresh PowerShell each time), so this script calls no
# command it would have to find (Join-Path's module is not loaded yet in a fresh process) and no
# .NET method (the first method call of a process sets up PowerShell's binder): each cost ~25-50 ms
# here (docs/performance.md). "/" separates paths on Windows too. "-Cmdlet *": the manifest's
# CmdletsToExport names the cmdlets.
$build = if ($env:PICOHSM_BUILD -in 'Core', 'Desktop') { $env:PICOHSM_BUILD }
         elseif ($PSEdition -eq 'Core') { 'Core' }
         else { 'Desktop' }
if ($build -eq 'Core' -and $PSEdition -ne 'Core') {
    throw "The Core build of PicoHsm needs PowerShell 7.4 or later; unset PICOHSM_BUILD to load the Desktop build."
}
Import-Module "$PSScriptRoot/bin/$build/PicoHsm.dll"
Export-ModuleMember -Cmdlet *
