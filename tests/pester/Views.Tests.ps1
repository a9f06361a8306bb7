# The table views at an 80-column terminal: nothing that matters is cut or dropped, every header
# is a property name (so Format-Table <header> shows the same column), Format-List shows all.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:Token = 'pico-test-f'
    Disconnect-PicoHsm -All
    Remove-TestObjects -Token $Token
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "picohsm-views-$([guid]::NewGuid().ToString('n').Substring(0, 8))"
    $script:Session = Connect-TestToken -Token $Token
    New-PicoKey -KeyType Rsa -Size 2048 -Id 01a1 -Label ca-rsa-issuing-2026 | Out-Null
    New-PicoKey -KeyType Ec -Curve P-256 -Id 02 -Label web-tls | Out-Null
    New-PicoDkek -ShareCount 3 -Threshold 2 -OutputDirectory (Join-Path $Dir 'shares') -SharePassword (New-TestPasswords 3) -Confirm:$false | Out-Null
    $script:Set = Backup-PicoHsm -Directory (Join-Path $Dir 'backup-with-a-long-folder-name') -Confirm:$false
    Set-Content (Join-Path $Dir 'backup-with-a-long-folder-name/damaged.pkb') 'not a backup'
    $script:Results = @(Test-PicoKeyBackup -Path (Join-Path $Dir 'backup-with-a-long-folder-name/*.pkb'))
    $script:Samples = [ordered]@{
        'PicoHsm.Devices.PicoHsmToken'        = @(Get-PicoHsmToken -ModulePath $SoftHsm)
        'PicoHsm.Session.PicoHsmSession'      = @(Get-PicoHsmSession)
        'PicoHsm.Keys.PicoKey'                = @(Get-PicoKey)
        'PicoHsm.Devices.PicoDkek'            = @(Get-PicoDkek)
        'PicoHsm.Backup.PicoKeyBackup'        = @(Get-PicoKeyBackup (Join-Path $Dir 'backup-with-a-long-folder-name/*-*.pkb'))
        'PicoHsm.Backup.PicoBackupTestResult' = $Results
        'PicoHsm.Backup.PicoHsmBackupSet'     = @($Set)
    }
    function Out80 { param([Parameter(ValueFromPipeline)] $InputObject) begin { $all = @() } process { $all += $InputObject } end { ($all | Out-String -Width 80) -split "`r?`n" } }
    $script:Format = [xml](Get-Content -Raw (Join-Path (Get-Module PicoHsm).ModuleBase 'PicoHsm.format.ps1xml'))
}
AfterAll {
    Disconnect-PicoHsm -All
    Remove-TestObjects -Token $Token
    if (Test-Path $Dir) { Remove-Item $Dir -Recurse -Force }
}

Describe 'Table views at 80 columns' {
    It '<_> fits in 80 columns, with one header line' -ForEach @('PicoHsm.Devices.PicoHsmToken', 'PicoHsm.Session.PicoHsmSession', 'PicoHsm.Keys.PicoKey', 'PicoHsm.Devices.PicoDkek', 'PicoHsm.Backup.PicoKeyBackup', 'PicoHsm.Backup.PicoBackupTestResult', 'PicoHsm.Backup.PicoHsmBackupSet') {
        $lines = $Samples[$_] | Out80
        $lines | ForEach-Object { $_.Length | Should -BeLessOrEqual 80 -Because "'$_'" }
        $dashes = @($lines | Where-Object { $_ -match '^-+( +-+)*\s*$' })
        $dashes.Count | Should -Be 1
        # The header is the line right above the dashes; a wrapped header ("Initializ" / "ed") has a second line there.
        $i = [array]::IndexOf($lines, $dashes[0])
        $lines[$i - 2].Trim() | Should -BeNullOrEmpty -Because 'a header must not wrap onto two lines'
    }

    It 'every header of <_> is a property of the object, so Format-Table of that header is not blank' -ForEach @('PicoHsm.Devices.PicoHsmToken', 'PicoHsm.Session.PicoHsmSession', 'PicoHsm.Keys.PicoKey', 'PicoHsm.Devices.PicoDkek', 'PicoHsm.Backup.PicoKeyBackup', 'PicoHsm.Backup.PicoBackupTestResult', 'PicoHsm.Backup.PicoHsmBackupSet') {
        $type = $_
        $view = $Format.Configuration.ViewDefinitions.View | Where-Object { $_.ViewSelectedBy.TypeName -eq $type }
        $view | Should -Not -BeNullOrEmpty
        $sample = $Samples[$type][0]
        foreach ($label in $view.TableControl.TableHeaders.TableColumnHeader.Label) {
            $sample.PSObject.Properties.Name | Should -Contain $label -Because "the '$label' header of $type"
            $text = ($sample | Format-Table $label | Out-String).Trim() -split "`r?`n"
            $text.Count | Should -BeGreaterOrEqual 2 -Because "ft $label"
        }
    }

    It 'Format-List shows every property of <_>' -ForEach @('PicoHsm.Devices.PicoHsmToken', 'PicoHsm.Keys.PicoKey', 'PicoHsm.Backup.PicoKeyBackup', 'PicoHsm.Backup.PicoHsmBackupSet') {
        $sample = $Samples[$_][0]
        $text = $sample | Format-List | Out-String -Width 200
        foreach ($p in $sample.PSObject.Properties.Name) { $text | Should -Match "(?m)^$p\s+:" }
    }

    It 'Get-PicoHsmToken keeps PinState and the whole Initialized header' {
        $lines = $Samples['PicoHsm.Devices.PicoHsmToken'] | Out80
        ($lines -match '\bPinState\b').Count | Should -Be 1
        ($lines -match '\bInitialized\b').Count | Should -Be 1
        ($lines -match "\b$([regex]::Escape($Token))\b.*\bOK\b").Count | Should -Be 1
    }

    It 'Get-PicoHsmSession shows the whole serial and marks the default session' {
        $b = Connect-TestToken -Token 'pico-test-e'
        try {
            $lines = Get-PicoHsmSession | Out80
            ($lines -match [regex]::Escape($b.SerialNumber)).Count | Should -Be 1
            ($lines -match [regex]::Escape($Session.SerialNumber)).Count | Should -Be 1
            ($lines | Where-Object { $_ -match "^\s*$($b.Id)\s+True\s" }).Count | Should -Be 1
            ($lines | Where-Object { $_ -match "^\s*$($Session.Id)\s+False\s" }).Count | Should -Be 1
            (Get-PicoHsmSession | Where-Object IsDefault).Id | Should -Be $b.Id
        }
        finally { Disconnect-PicoHsm -Session $b -WarningAction SilentlyContinue }
    }

    It 'Test-PicoKeyBackup shows the whole problem, Get-PicoDkek the whole status, Get-PicoKeyBackup the file name, Backup-PicoHsm the time' {
        $bad = $Results | Where-Object { -not $_.Valid }
        # The last column wraps (at any character), so compare without white space.
        $flat = (($bad | Out80) -join '') -replace '\s+', ''
        $flat | Should -Match ([regex]::Escape((($bad.Problems -join '; ') -replace '\s+', '')))
        $flat | Should -Not -Match '…'
        $dkekText = ((Get-PicoDkek | Out80) -join ' ') -replace '\s+', ' '
        $dkekText | Should -Match ([regex]::Escape((Get-PicoDkek).Status))
        ($Samples['PicoHsm.Backup.PicoKeyBackup'] | Out80) -join "`n" | Should -Match ([regex]::Escape((Split-Path -Leaf $Samples['PicoHsm.Backup.PicoKeyBackup'][0].Path)))
        ($Set | Out80) -join "`n" | Should -Match ([regex]::Escape($Set.Created.ToString('yyyy-MM-dd HH:mm')))
        (($Set | Out80) -join '' -replace '\s', '') | Should -Match ([regex]::Escape(($Set.Directory -replace '\s', '')))
    }

    It 'shows SoftHSM2 firmware as softhsm2-util does (2.6, not 2.06)' {
        $shown = (& softhsm2-util --show-slots | Select-String 'Firmware version:\s*(\S+)' | Select-Object -First 1).Matches[0].Groups[1].Value
        $shown | Should -Not -BeNullOrEmpty
        (Get-PicoHsmToken -ModulePath $SoftHsm)[0].FirmwareVersion | Should -Be $shown
    }
}
