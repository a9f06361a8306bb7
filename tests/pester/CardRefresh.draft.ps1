# Issue 14, Seen 3 and 6: after Initialize-PicoHsm wipes the card over its card channel, OpenSC's
# PKCS#11 view (read once, at C_Initialize) is stale. The module reloads a PKCS#11 module no session
# uses before a connect or a token listing, so Connect-PicoHsm in the same process sees the card as it is.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:OpenSc = Get-OpenScModulePath
    $script:PcscdPid = Start-PcscDaemon
    $script:Sim = Start-CardSimulator -Port 35963 -Arguments '--blank'
    $script:Reader = $Sim.Reader
    $script:SoPin = ConvertTo-SecureString '3537363231383830' -AsPlainText -Force
}
AfterAll {
    Disconnect-PicoHsm -All
    Stop-CardSimulator $Sim
    Stop-PcscDaemon $PcscdPid
}

Describe 'The PKCS#11 view of a card initialised in this process' {
    It 'connects through OpenSC right after Initialize-PicoHsm of a blank card it had already seen' {
        Disconnect-PicoHsm -All
        # OpenSC loads and reads the blank card: no user PIN yet.
        $t = @(Get-PicoHsmToken -ModulePath $OpenSc) | Where-Object TokenPresent | Select-Object -First 1
        $t.UserPinInitialized | Should -BeFalse
        Initialize-PicoHsm -Reader $Reader -SoPin $SoPin -Pin $Pin -DkekShareCount 1 -Confirm:$false -WarningAction SilentlyContinue | Out-Null
        $t = @(Get-PicoHsmToken -ModulePath $OpenSc) | Where-Object TokenPresent | Select-Object -First 1
        $t.UserPinInitialized | Should -BeTrue
        $s = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $s.IsLoggedIn | Should -BeTrue
        $s.DeviceFamily | Should -Be 'ScHsmCard'
        Disconnect-PicoHsm -All
    }

    It 'connects after the card was re-initialised under a session that was disconnected' {
        $old = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $old.IsLoggedIn | Should -BeTrue
        Disconnect-PicoHsm -All
        Initialize-PicoHsm -Reader $Reader -SoPin $SoPin -Pin $Pin -DkekShareCount 1 -Confirm:$false -WarningAction SilentlyContinue | Out-Null
        (Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin -Verbose 4>&1 | Where-Object { $_ -is [Management.Automation.VerboseRecord] } |
            Where-Object Message -Match 'reinitialised') | Should -Not -BeNullOrEmpty
        (Get-PicoHsmSession -Default).IsLoggedIn | Should -BeTrue
        Disconnect-PicoHsm -All
    }

    It 'shows a firmware version as major.minor (6.6, not 6.06) on the card path' {
        $s = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $s.FirmwareVersion | Should -Match '^\d+\.[1-9]?\d$'
        $s.FirmwareVersion | Should -Not -Match '\.0\d$'
        $c = Connect-PicoHsm -Reader $Reader -Pin $Pin
        $c.FirmwareVersion | Should -Not -Match '\.0\d$'
        Disconnect-PicoHsm -All
    }
}
