# Packaging as PowerShell users install modules: build.ps1 -Task Package writes a .nupkg,
# Install-PSResource installs it from a local file repository, a fresh pwsh imports it and lists
# tokens. Everything (HOME, the repository list, the install scope) lives in a temporary folder,
# and no network is used.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:Root = Join-Path ([IO.Path]::GetTempPath()) "picohsm-package-$([guid]::NewGuid().ToString('n').Substring(0, 8))"
    $script:Repo = Join-Path $Root 'repo'
    $script:Home_ = Join-Path $Root 'home'
    # .NET's LocalApplicationData is "" (and PSResourceGet then writes into the current folder)
    # unless $HOME/.local/share exists, so it is made here.
    New-Item -ItemType Directory -Force $Repo, (Join-Path $Home_ '.local/share'), (Join-Path $Home_ '.config') | Out-Null
    $script:Pwsh = Get-PwshCommand
    # pwsh is a local dotnet tool: with another HOME, dotnet must still find its package folder.
    $script:NuGetPackages = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { ((dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim() }
    $script:RepoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).ProviderPath
    function Invoke-Child([string] $Command) {
        # A fresh pwsh whose HOME (and so PSResourceGet's repository list and CurrentUser scope)
        # and module path are under the temporary folder.
        $saved = @{ HOME = $env:HOME; XDG_DATA_HOME = $env:XDG_DATA_HOME; XDG_CONFIG_HOME = $env:XDG_CONFIG_HOME; PSModulePath = $env:PSModulePath; NUGET_PACKAGES = $env:NUGET_PACKAGES; DOTNET_CLI_HOME = $env:DOTNET_CLI_HOME }
        try {
            $env:NUGET_PACKAGES = $NuGetPackages; $env:DOTNET_CLI_HOME = $saved.HOME
            $env:HOME = $Home_; $env:XDG_DATA_HOME = Join-Path $Home_ '.local/share'; $env:XDG_CONFIG_HOME = Join-Path $Home_ '.config'
            $env:PSModulePath = $null
            # From the temporary folder, so anything written relative to it stays there.
            Push-Location $Root
            $out = & $Pwsh[0] @($Pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -Command $Command 2>&1
            [pscustomobject]@{ Output = ($out | Out-String); ExitCode = $LASTEXITCODE }
        }
        finally {
            Pop-Location
            foreach ($k in $saved.Keys) { if ($null -eq $saved[$k]) { Remove-Item "env:$k" -ErrorAction Ignore } else { Set-Item "env:$k" $saved[$k] } }
        }
    }
}
AfterAll { if (Test-Path $Root) { Remove-Item $Root -Recurse -Force } }

Describe 'build.ps1 -Task Package and Install-PSResource' {
    It 'writes a .nupkg with the manifest metadata PSResourceGet shows' {
        $r = Invoke-Child "& '$RepoRoot/build.ps1' -Task Package -NoBuild -PackageDirectory '$Repo'; exit `$LASTEXITCODE"
        $r.ExitCode | Should -Be 0 -Because $r.Output
        $pkg = Get-ChildItem $Repo -Filter 'PicoHsm.*.nupkg'
        $pkg.Name | Should -Be "PicoHsm.$((Import-PowerShellDataFile "$RepoRoot/PicoHsm.psd1").ModuleVersion).nupkg"
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $zip = [IO.Compression.ZipFile]::OpenRead($pkg.FullName)
        try {
            $names = $zip.Entries.FullName
            foreach ($f in 'PicoHsm.psd1', 'PicoHsm.format.ps1xml', 'LICENSE', 'CHANGELOG.md', 'PicoHsm.psm1', 'bin/Core/PicoHsm.dll', 'bin/Desktop/PicoHsm.dll', 'en-US/PicoHsm.dll-Help.xml', 'en-US/about_PicoHsm.help.txt') { $names | Should -Contain $f }
            $nuspec = [xml]([IO.StreamReader]::new(($zip.Entries | Where-Object FullName -eq 'PicoHsm.nuspec').Open()).ReadToEnd())
            # The module has no public home yet: no made-up project link (README, "Install").
            $nuspec.package.metadata.projectUrl | Should -BeNullOrEmpty
            $nuspec.package.metadata.licenseUrl | Should -Be 'https://spdx.org/licenses/MIT.html'
            $nuspec.package.metadata.releaseNotes | Should -Not -BeNullOrEmpty
            $nuspec.package.metadata.tags | Should -Match 'PKCS11'
        }
        finally { $zip.Dispose() }
    }

    It 'installs from a local repository into a temporary scope; a fresh pwsh imports it and lists tokens' {
        # CurrentUser scope on Linux/macOS is $HOME/.local/share/powershell/Modules: the temporary HOME.
        $install = Join-Path $Home_ '.local/share/powershell/Modules'
        $r = Invoke-Child @"
`$ErrorActionPreference = 'Stop'
Register-PSResourceRepository -Name PicoHsmLocal -Uri '$Repo' -Trusted
Install-PSResource -Name PicoHsm -Repository PicoHsmLocal -Scope CurrentUser -TrustRepository
(Get-PSResourceRepository -Name PicoHsmLocal).Uri.LocalPath
"@
        $r.ExitCode | Should -Be 0 -Because $r.Output
        Test-Path (Join-Path $install 'PicoHsm/*/PicoHsm.psd1') | Should -BeTrue
        # PSResourceGet wrote its repository list under the temporary HOME, not the real one.
        Test-Path (Join-Path $Home_ '.local/share/PSResourceGet/PSResourceRepository.xml') | Should -BeTrue
        $r = Invoke-Child @"
`$ErrorActionPreference = 'Stop'
Import-Module PicoHsm
(Get-Module PicoHsm).ModuleBase
Get-PicoHsmToken -ModulePath '$SoftHsm' | Where-Object Initialized | ForEach-Object Label
"@
        $r.ExitCode | Should -Be 0 -Because $r.Output
        $r.Output | Should -Match ([regex]::Escape($install))
        $r.Output | Should -Match 'pico-test-a'
    }
}
