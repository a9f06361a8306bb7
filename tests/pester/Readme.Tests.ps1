# README.md is correct: its tour runs (every ```powershell runnable block, in order, against
# SoftHSM2 tokens) and prints what the README shows; and the mistakes a new user met are gone.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:ReadmePath = (Resolve-Path (Join-Path $PSScriptRoot '../../README.md')).ProviderPath
    $script:Readme = Get-Content -Raw $ReadmePath
    function Get-Masked([string] $Text) {
        # What differs between runs: serials, KCVs, fingerprints, temp names (hex); slot ids, times (digits).
        @(($Text -replace '[0-9a-f]{8,}', 'H' -replace '\d+', 'N') -split "`r?`n" | ForEach-Object { ($_ -replace '\s+', ' ').Trim() } | Where-Object { $_ })
    }
}

Describe 'The README tour' {
    BeforeAll {
        # Its own tokens ca-hsm and ca-hsm-2 in a fresh pwsh (SoftHSM2 reads its configuration
        # at start), started in an empty folder whose name is as long as the one the README shows.
        $conf = New-SoftHsmEnvironment -TokenLabel 'ca-hsm', 'ca-hsm-2'
        $work = Join-Path ([IO.Path]::GetTempPath()) "picohsm-readme-$([guid]::NewGuid().ToString('n').Substring(0, 8))"
        New-Item -ItemType Directory $work | Out-Null
        $pwsh = Get-PwshCommand
        $saved = $env:SOFTHSM2_CONF
        Push-Location $work
        try {
            $env:SOFTHSM2_CONF = $conf
            $json = & $pwsh[0] @($pwsh | Select-Object -Skip 1) -NoProfile -NonInteractive -File (Join-Path $PSScriptRoot 'ReadmeRunner.ps1') -Readme $ReadmePath -ModuleManifest $ModuleUnderTest -SoftHsm $SoftHsm 2>&1
            $script:RunnerExit = $LASTEXITCODE
            $script:RunnerText = $json -join "`n"
        }
        finally {
            Pop-Location
            $env:SOFTHSM2_CONF = $saved
            Remove-SoftHsmEnvironment -ConfigPath $conf
            Remove-Item $work -Recurse -Force -ErrorAction Ignore
        }
        $script:Blocks = if ($RunnerExit -eq 0) { @($RunnerText | ConvertFrom-Json) } else { @() }
    }

    It 'runs every runnable block without an error' {
        $RunnerExit | Should -Be 0 -Because $RunnerText
        $Blocks.Count | Should -BeGreaterOrEqual 10
    }

    It 'shows, under each block, what it printed at 80 columns' {
        foreach ($b in $Blocks) {
            $b.HasShown | Should -BeTrue -Because "every tour step shows its output: $($b.Code)"
            # Sorted: SoftHSM2 lists its tokens in the order of their random slot ids.
            Get-Masked $b.Shown | Sort-Object | Should -Be (Get-Masked $b.Output | Sort-Object) -Because "the output of: $($b.Code)"
        }
    }

    It 'shows the five views, Get-Help -Full and the about topics' {
        $shown = ($Blocks.Shown -join "`n")
        foreach ($header in 'SlotId +Label +SerialNumber .*PinState', 'Id +IsDefault +TokenLabel +SerialNumber', 'Passed +Id +Label +Path +Problems', 'Present +KeyCheckValue .*Status', 'Id +Label +Algorithm +Kcv +Path', 'Created +KeyCount +Complete +Kcv') {
            $shown | Should -Match $header
        }
        $shown | Should -Match '(?m)^RELATED LINKS'
        $shown | Should -Match 'about_PicoHsm_DisasterRecovery'
    }
}

Describe 'README mistakes a new user met' {
    It 'has no control characters from broken escapes' {
        $Readme | Should -Not -Match '[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]'
    }

    It 'names share files as the module writes them' {
        $names = [regex]::Matches($Readme, '[\w.-]*\.dkekshare') | ForEach-Object Value | Where-Object { $_ -ne '.dkekshare' }
        $names | Should -Not -BeNullOrEmpty
        foreach ($n in $names) { $n | Should -Match '^dkek-share-\d+-of-\d+\.dkekshare$' }
    }

    It 'says what a scheduled task needs: -Confirm:$false for the cmdlets that ask, and $ErrorActionPreference = ''Stop''' {
        $section = ($Readme -split '(?m)^## ') | Where-Object { $_ -like 'In a scheduled task*' }
        $section | Should -Not -BeNullOrEmpty
        foreach ($c in 'New-PicoDkek', 'Import-PicoDkek', 'Restore-PicoHsm', '-Confirm:$false', "`$ErrorActionPreference = 'Stop'", 'NonInteractive') { $section | Should -Match ([regex]::Escape($c)) }
        # The cmdlets named as asking for confirmation are exactly those with ConfirmImpact High.
        foreach ($c in Get-Command -Module PicoHsm -CommandType Cmdlet) {
            $impact = ($c.ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false))[0].ConfirmImpact
            if ($impact -eq 'High') { $section | Should -Match ([regex]::Escape($c.Name)) -Because "$($c.Name) asks for confirmation" }
        }
    }

    It 'does not promise that the demo leaves devices alone when PICOHSM_DEMO_READER is set' {
        $Readme | Should -Not -Match 'nothing on your devices is touched'
        $Readme | Should -Match 'PICOHSM_DEMO_READER'
    }
}
