# Sessions and backup sets bind by pipeline where a user pipes them; the default session is
# chosen on purpose and said; a word that cannot be an id says to use -Label; one version.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Disconnect-PicoHsm -All
    foreach ($t in 'pico-test-e', 'pico-test-f') { Remove-TestObjects -Token $t }
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "picohsm-pipe-$([guid]::NewGuid().ToString('n').Substring(0, 8))"
    $script:E = Connect-TestToken -Token 'pico-test-e'
    New-PicoKey -Session $E -KeyType Ec -Curve P-256 -Id 0e01 -Label only-on-e | Out-Null
    $script:F = Connect-TestToken -Token 'pico-test-f'
    New-PicoKey -Session $F -KeyType Ec -Curve P-256 -Id 0f01 -Label only-on-f | Out-Null
    New-PicoDkek -Session $F -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $Dir 'shares') -SharePassword (New-TestPasswords 2) -Confirm:$false | Out-Null
    $script:Set = Backup-PicoHsm -Session $F -Directory (Join-Path $Dir 'backup') -Confirm:$false
}
AfterAll {
    Disconnect-PicoHsm -All
    foreach ($t in 'pico-test-e', 'pico-test-f') { Remove-TestObjects -Token $t }
    if (Test-Path $Dir) { Remove-Item $Dir -Recurse -Force }
}

Describe 'Pipeline binding' {
    It '$session | Get-PicoKey lists that session''s keys, not the default''s' {
        (Get-PicoHsmSession -Default).Id | Should -Be $F.Id
        @($E | Get-PicoKey).Label | Should -Be @('only-on-e')
    }

    It '$set | Test-PicoKeyBackup tests every backup of the set' {
        $r = @($Set | Test-PicoKeyBackup -Session $F)
        $r.Count | Should -Be $Set.KeyCount
        $r.Passed | Should -Not -Contain $false
    }

    It 'Restore-PicoHsm takes the folder from a backup set or Get-Item by pipeline' {
        $cmd = Get-Command Restore-PicoHsm
        $cmd.Parameters['Directory'].Attributes.Where({ $_ -is [System.Management.Automation.ParameterAttribute] }).ValueFromPipelineByPropertyName | Should -Contain $true
        # Onto its own token with -Force: every key is restored over itself.
        $restored = @($Set | Restore-PicoHsm -Session $F -Force -Confirm:$false)
        $restored.Id | Should -Be @('0f01')
        $again = @(Get-Item $Set.Directory | Restore-PicoHsm -Session $F -Force -Confirm:$false)
        $again.Id | Should -Be @('0f01')
    }
}

Describe 'The default session is chosen on purpose' {
    It 'a failed Connect-PicoHsm keeps the default and says which session it is' {
        $before = (Get-PicoHsmSession -Default).Id
        $err = $null
        try { Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'no-such-token' -Pin $Pin } catch { $err = $_ }
        $err | Should -Not -BeNullOrEmpty
        (Get-PicoHsmSession -Default).Id | Should -Be $before
        $err.ToString() | Should -Match "default session is still $before\b"
    }

    It 'Disconnect-PicoHsm of the default says which session is the default now' {
        $g = Connect-TestToken -Token 'pico-test-e'
        $w = $null
        Disconnect-PicoHsm -Session $g -WarningVariable w -WarningAction SilentlyContinue
        ($w -join ' ') | Should -Match "Session $($g.Id) was the default session\. The default session is now $($F.Id)\b"
    }

    It 'Disconnect-PicoHsm of the last session says there is no default session now' {
        $state = [powershell]::Create()
        try {
            $null = $state.AddScript({
                param($m, $module, $pin)
                Import-Module $m
                Connect-PicoHsm -ModulePath $module -TokenLabel 'pico-test-e' -Pin $pin | Out-Null
                Disconnect-PicoHsm 3>&1 | ForEach-Object { "$_" }
            }).AddArgument($ModuleUnderTest).AddArgument($SoftHsm).AddArgument($Pin)
            ($state.Invoke() -join ' ') | Should -Match 'There is now no default session'
        }
        finally { $state.Dispose() }
    }
}

Describe 'Positional values and versions' {
    It 'Get-PicoKey web says to use -Label, not "No key with id 0web"' {
        $err = $null
        try { Get-PicoKey -Session $E web } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -BeLike 'GetPicoKeyIdNotHex*'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err.ToString() | Should -Match "-Label 'web'"
        $err.ToString() | Should -Not -Match '0web'
    }

    It 'Directory.Build.props, the manifest and the backups name one version' {
        $props = [xml](Get-Content -Raw (Join-Path $PSScriptRoot '../../Directory.Build.props'))
        $version = ($props.Project.PropertyGroup.Version | Where-Object { $_ }) | Select-Object -First 1
        (Import-PowerShellDataFile (Join-Path $PSScriptRoot '../../PicoHsm.psd1')).ModuleVersion | Should -Be $version
        (Get-Module PicoHsm).Version.ToString() | Should -Be $version
        [PicoHsm.Common.ProductInfo]::ToolVersion | Should -Be "PicoHsm $version"
        $file = Get-ChildItem $Set.Directory -Filter *.pkb | Select-Object -First 1
        (Get-Content -Raw $file.FullName | ConvertFrom-Json).tool | Should -Be "PicoHsm $version"
        (Get-Content -Raw $Set.ManifestPath | ConvertFrom-Json).tool | Should -Be "PicoHsm $version"
    }
}
