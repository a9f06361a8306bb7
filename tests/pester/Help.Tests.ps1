BeforeDiscovery {
    Import-Module $(if ($env:PICOHSM_TEST_MODULE) { $env:PICOHSM_TEST_MODULE } else { Join-Path $PSScriptRoot '../../out/PicoHsm/PicoHsm.psd1' }) -Force
    $script:cmdlets = Get-Command -Module PicoHsm -CommandType Cmdlet | ForEach-Object { @{ Name = $_.Name } }
    # The cmdlets that change a device or write a file: exactly these offer -WhatIf and -Confirm.
    $script:changes = 'New-PicoKey', 'New-PicoDkek', 'Import-PicoDkek', 'Update-PicoDkekShare', 'Convert-PicoKeyBackup', 'Export-PicoWrappedKey', 'Import-PicoWrappedKey', 'Backup-PicoHsm', 'Restore-PicoHsm', 'Initialize-PicoHsm'
    foreach ($c in $cmdlets) { $c['Changes'] = $c['Name'] -in $changes }
}
BeforeAll { . (Join-Path $PSScriptRoot 'Common.ps1') }

Describe 'Help for <Name>' -ForEach $cmdlets {
    It 'has a synopsis, a description and an example' {
        $h = Get-Help $Name -Full
        $h.Synopsis | Should -Not -BeNullOrEmpty
        $h.Synopsis | Should -Not -BeLike "*$Name*[[]*"   # not the generated syntax PowerShell shows when there is no help
        ($h.Description | Out-String).Trim() | Should -Not -BeNullOrEmpty
        # Each example must have code: @($h.Examples.Example) alone counts 1 ($null) for a cmdlet without examples.
        $examples = @($h.Examples.Example | Where-Object { $_ -and ($_.Code | Out-String).Trim() })
        $examples.Count | Should -BeGreaterThan 0 -Because "$Name needs an example with code"
    }

    It 'describes every parameter' {
        $common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
        foreach ($p in (Get-Command $Name).Parameters.Keys | Where-Object { $_ -notin $common }) {
            (Get-Help $Name -Parameter $p | Select-Object -ExpandProperty Description | Out-String).Trim() | Should -Not -BeNullOrEmpty -Because "-$p of $Name"
        }
    }

    It 'supports -WhatIf and -Confirm exactly when it changes a device or writes a file' {
        $keys = (Get-Command $Name).Parameters.Keys
        ($keys -contains 'WhatIf') | Should -Be $Changes -Because "-WhatIf of $Name (changes something: $Changes)"
        ($keys -contains 'Confirm') | Should -Be $Changes -Because "-Confirm of $Name (changes something: $Changes)"
    }
}

Describe 'The module manifest' {
    It 'has the help tests above for every exported cmdlet' -TestCases @{ Checked = @($cmdlets | ForEach-Object { $_['Name'] }) } {
        $Checked.Count | Should -BeGreaterThan 0
        $Checked | Sort-Object | Should -Be ((Get-Module PicoHsm).ExportedCmdlets.Keys | Sort-Object)
    }

    It 'exports exactly the cmdlets the assembly defines' {
        $exported = (Get-Module PicoHsm).ExportedCmdlets.Keys | Sort-Object
        $defined = [PicoHsm.Module.PicoCmdletBase].Assembly.GetTypes() | Where-Object { $_.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false) } |
            ForEach-Object { $a = $_.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)[0]; "$($a.VerbName)-$($a.NounName)" } | Sort-Object
        $exported | Should -Be $defined
    }
}
