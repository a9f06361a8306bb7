BeforeDiscovery {
    Import-Module $(if ($env:PICOHSM_TEST_MODULE) { $env:PICOHSM_TEST_MODULE } else { Join-Path $PSScriptRoot '../../out/PicoHsm/PicoHsm.psd1' }) -Force
    $script:cmdlets = Get-Command -Module PicoHsm -CommandType Cmdlet | ForEach-Object { @{ Name = $_.Name } }
    # The cmdlets that change a device or write a file: exactly these offer -WhatIf and -Confirm.
    $script:changes = 'New-PicoKey', 'New-PicoDkek', 'Import-PicoDkek', 'Update-PicoDkekShare', 'Convert-PicoKeyBackup', 'Export-PicoWrappedKey', 'Import-PicoWrappedKey', 'Backup-PicoHsm', 'Restore-PicoHsm', 'Initialize-PicoHsm', 'Remove-PicoKey'
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

Describe 'Help sections of <Name>' -ForEach $cmdlets {
    BeforeAll {
        $script:h = Get-Help $Name -Full
        $script:cmd = Get-Command $Name
        $script:common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
    }

    It 'has INPUTS naming the type of every pipeline parameter' {
        $inputs = @($h.inputTypes.inputType | ForEach-Object { $_.type.name })
        $inputs | Should -Not -BeNullOrEmpty
        $pipe = $cmd.Parameters.Values | Where-Object { $_.Name -notin $common -and ($_.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] -and ($_.ValueFromPipeline -or $_.ValueFromPipelineByPropertyName) }) }
        foreach ($p in $pipe) { $inputs | Should -Contain $p.ParameterType.FullName -Because "-$($p.Name) takes pipeline input" }
        if (-not $pipe) { $inputs | Should -Be @('None') }
    }

    It 'has OUTPUTS naming every [OutputType]' {
        $outputs = @($h.returnValues.returnValue | ForEach-Object { $_.type.name })
        $outputs | Should -Not -BeNullOrEmpty
        foreach ($t in $cmd.OutputType | Where-Object { $_.Type -ne [void] }) { $outputs | Should -Contain $t.Type.FullName }
    }

    It 'has at least two related links, each to a cmdlet of the module or an about topic' {
        $links = @($h.relatedLinks.navigationLink.linkText | Where-Object { $_ })
        $links.Count | Should -BeGreaterOrEqual 2
        foreach ($l in $links) { (Get-Command -Module PicoHsm -Name $l -ErrorAction Ignore) -or (Get-Help $l -ErrorAction Ignore | Where-Object Category -eq 'HelpFile') | Should -BeTrue -Because "link '$l'" }
    }

    It 'has at least two examples with code' {
        @($h.Examples.Example | Where-Object { $_ -and ($_.Code | Out-String).Trim() }).Count | Should -BeGreaterOrEqual 2
    }

    It 'gives a default value for every optional parameter and marks wildcards as the cmdlet does' {
        foreach ($p in $cmd.Parameters.Values | Where-Object { $_.Name -notin $common }) {
            $ph = Get-Help $Name -Parameter $p.Name
            $mandatory = [bool]($p.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] -and $_.Mandatory })
            if (-not $mandatory) { "$($ph.defaultValue)".Trim() | Should -Not -BeNullOrEmpty -Because "-$($p.Name) is optional" }
            $wild = [bool]($p.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
            "$($ph.globbing)" | Should -Be $wild.ToString().ToLower() -Because "wildcards of -$($p.Name)"
        }
    }

    It 'shows -WhatIf and -Confirm in SYNTAX when it supports them' {
        $syntax = ($h.syntax | Out-String -Width 400)
        $supports = $cmd.Parameters.ContainsKey('WhatIf')
        ($syntax -match '\[-WhatIf\]') | Should -Be $supports
        ($syntax -match '\[-Confirm\]') | Should -Be $supports
    }

    It 'calls a credential file DPAPI-protected only next to a Windows path' {
        foreach ($e in $h.Examples.Example) {
            $text = "$($e.Code) $(($e.Remarks | Out-String))"
            if ($text -match 'DPAPI-protected|protected it with DPAPI|protected the credential with DPAPI') { $e.Code | Should -Match '[A-Za-z]:\\' -Because "an example about DPAPI: $($e.Code)" }
        }
    }
}

Describe 'Defaults named in the issue' {
    It 'New-PicoDkek -<_> shows its default' -ForEach 'Threshold', 'Format', 'Label', 'Id' {
        (Get-Help New-PicoDkek -Parameter $_).defaultValue | Should -Not -Be 'None'
        (Get-Help New-PicoDkek -Parameter $_).defaultValue | Should -Not -BeNullOrEmpty
    }

    It 'New-PicoDkek shows the share file names the module writes' {
        (Get-Help New-PicoDkek -Full | Out-String) | Should -Match 'dkek-share-1-of-5\.dkekshare'
    }

    It 'Get-PicoKey -Label accepts wildcards' {
        (Get-Help Get-PicoKey -Parameter Label).globbing | Should -Be 'true'
    }
}

Describe 'Conceptual help' {
    It 'Get-Help about_PicoHsm* finds the topics' {
        $topics = @(Get-Help about_PicoHsm* | Where-Object Category -eq 'HelpFile').Name
        $topics | Should -Contain 'about_PicoHsm'
        $topics | Should -Contain 'about_PicoHsm_DisasterRecovery'
    }

    It 'about_PicoHsm explains <_>' -ForEach 'default session', 'DEVICE FAMILIES', 'MODULE DISCOVERY', 'PICOHSM_PKCS11_MODULE', '-Confirm:\$false' {
        (Get-Help about_PicoHsm | Out-String) | Should -Match $_
    }

    It 'about_PicoHsm_DisasterRecovery has the drill and how often to run it' {
        $t = Get-Help about_PicoHsm_DisasterRecovery | Out-String
        $t | Should -Match 'THE DRILL'
        $t | Should -Match 'HOW OFTEN'
        $t | Should -Match 'Restore-PicoHsm'
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
