BeforeDiscovery {
    Import-Module $(if ($env:PICOHSM_TEST_MODULE) { $env:PICOHSM_TEST_MODULE } else { Join-Path $PSScriptRoot '../../out/PicoHsm/PicoHsm.psd1' }) -Force
    $script:cmdlets = Get-Command -Module PicoHsm -CommandType Cmdlet | ForEach-Object { @{ Name = $_.Name } }
}
BeforeAll { . (Join-Path $PSScriptRoot 'Common.ps1') }

Describe 'Help for <Name>' -ForEach $cmdlets {
    It 'has a synopsis, a description and an example' {
        $h = Get-Help $Name -Full
        $h.Synopsis | Should -Not -BeNullOrEmpty
        $h.Synopsis | Should -Not -BeLike "*$Name*[[]*"   # not the generated syntax PowerShell shows when there is no help
        ($h.Description | Out-String).Trim() | Should -Not -BeNullOrEmpty
        @($h.Examples.Example).Count | Should -BeGreaterThan 0
    }

    It 'describes every parameter' {
        $common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
        foreach ($p in (Get-Command $Name).Parameters.Keys | Where-Object { $_ -notin $common }) {
            (Get-Help $Name -Parameter $p | Select-Object -ExpandProperty Description | Out-String).Trim() | Should -Not -BeNullOrEmpty -Because "-$p of $Name"
        }
    }

    It 'supports -WhatIf and -Confirm when it changes a device or writes a file' {
        $changes = 'New-PicoKey', 'New-PicoDkek', 'Import-PicoDkek', 'Update-PicoDkekShare', 'Export-PicoWrappedKey', 'Import-PicoWrappedKey', 'Backup-PicoHsm', 'Restore-PicoHsm', 'Initialize-PicoHsm'
        if ($Name -in $changes) {
            (Get-Command $Name).Parameters.Keys | Should -Contain 'WhatIf'
            (Get-Command $Name).Parameters.Keys | Should -Contain 'Confirm'
        }
    }
}

Describe 'The module manifest' {
    It 'exports exactly the cmdlets the assembly defines' {
        $exported = (Get-Module PicoHsm).ExportedCmdlets.Keys | Sort-Object
        $defined = [PicoHsm.Module.PicoCmdletBase].Assembly.GetTypes() | Where-Object { $_.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false) } |
            ForEach-Object { $a = $_.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)[0]; "$($a.VerbName)-$($a.NounName)" } | Sort-Object
        $exported | Should -Be $defined
    }
}
