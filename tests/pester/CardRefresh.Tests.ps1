# Issue 14, Seen 3 and 6: Initialize-PicoHsm wipes the card over its card channel, behind OpenSC's back.
# OpenSC reads a card's PKCS#15 view once (at C_Initialize, while the card stays in its reader): a blank
# Pico HSM has no device certificate (EF.C_DevAut is written by INITIALIZE), so OpenSC's bind of it fails
# and its token shows no user PIN (C_Login: CKR_USER_PIN_NOT_INITIALIZED). The module finalises and reloads
# a PKCS#11 module once no session uses it, and closes the sessions on a card it initialised.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:OpenSc = Get-OpenScModulePath
    $script:PcscdPid = Start-PcscDaemon
    $script:Sim = Start-CardSimulator -Port 35963 -Arguments '--blank'
    $script:Reader = $Sim.Reader
    $script:SoPin = ConvertTo-SecureString '3537363231383830' -AsPlainText -Force
    function Get-CardToken { @(Get-PicoHsmToken -ModulePath $OpenSc -WarningAction SilentlyContinue) | Where-Object TokenPresent | Select-Object -First 1 }
    function Initialize-Card { Initialize-PicoHsm -Reader $Reader -SoPin $SoPin -Pin $Pin -DkekShareCount 1 -Confirm:$false -WarningAction SilentlyContinue | Out-Null }
}
AfterAll {
    Disconnect-PicoHsm -All
    Stop-CardSimulator $Sim
    Stop-PcscDaemon $PcscdPid
}

Describe 'The PKCS#11 view of a card initialised in this process (issue 14 Seen 3)' {
    It 'Initialize-PicoHsm, then Connect-PicoHsm through OpenSC in the same process: the token shows initialised, a key is generated and listed' {
        Disconnect-PicoHsm -All
        # OpenSC loads and binds the blank card: it recognises no initialised token (no device certificate yet).
        @(Get-PicoHsmToken -ModulePath $OpenSc -WarningAction SilentlyContinue | Where-Object Initialized).Count | Should -Be 0
        Initialize-Card
        $t = Get-CardToken
        $t.UserPinInitialized | Should -BeTrue
        $t.PinState | Should -Be 'OK'
        $s = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $s.IsLoggedIn | Should -BeTrue
        $s.HasPkcs11 | Should -BeTrue
        $s.DeviceFamily | Should -Be 'ScHsmCard'
        # The card's keys are generated with the device's own tools (New-PicoKey refuses a card and says so).
        $o = & timeout 600 pkcs11-tool --module $OpenSc --login --pin $PinText --keypairgen --key-type EC:prime256v1 --id 31 --label after-init 2>&1
        $LASTEXITCODE | Should -Be 0 -Because ($o -join "`n")
        $k = @(Get-PicoKey | Where-Object Label -EQ 'after-init')
        $k.Count | Should -Be 1
        $k[0].Id | Should -Be '31'
        Disconnect-PicoHsm -All
    }

    It 're-initialised after its sessions were disconnected: the next connect reads the card afresh (the old key is gone)' {
        $old = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        @(Get-PicoKey -Session $old | Where-Object Label -EQ 'after-init').Count | Should -Be 1
        Disconnect-PicoHsm -All
        Initialize-Card
        (Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin).IsLoggedIn | Should -BeTrue
        @(Get-PicoKey | Where-Object Label -EQ 'after-init').Count | Should -Be 0
        Disconnect-PicoHsm -All
    }
}

Describe 'Sessions on a card that was wiped (issue 14 Seen 6)' {
    It 'a session open when its card is initialised shows IsOpen False, and using it is a SessionClosed error' {
        Disconnect-PicoHsm -All
        $old = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $cardOnly = Connect-PicoHsm -Reader $Reader -Pin $Pin
        Initialize-Card
        $listed = @(Get-PicoHsmSession)
        $listed.Id | Should -Contain $old.Id
        $listed.Id | Should -Contain $cardOnly.Id
        ($listed | Where-Object Id -EQ $old.Id).IsOpen | Should -BeFalse
        ($listed | Where-Object Id -EQ $cardOnly.Id).IsOpen | Should -BeFalse
        $old.IsLoggedIn | Should -BeFalse
        $e = { Get-PicoKey -Session $old } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'GetPicoKeySessionClosed,*'
        $e.Exception.Message | Should -Match 'Connect-PicoHsm'
        # A new connect works on the wiped card, and Disconnect-PicoHsm -All clears the stale entries.
        (Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin).IsLoggedIn | Should -BeTrue
        Disconnect-PicoHsm -All
        @(Get-PicoHsmSession).Count | Should -Be 0
    }

    It 'a wrong PIN through OpenSC says how many tries are left, as the card path does' {
        Disconnect-PicoHsm -All
        $bad = ConvertTo-SecureString '111111' -AsPlainText -Force
        $e = { Connect-PicoHsm -ModulePath $OpenSc -Pin $bad } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ConnectPicoHsmWrongPin,*'
        $e.Exception.Message | Should -Match '2 tries left before the PIN is blocked'
        $e.Exception.Message | Should -Not -Match '111111'
        (Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin).IsLoggedIn | Should -BeTrue # a right PIN resets the counter
        Disconnect-PicoHsm -All
    }

    It 'shows the firmware as major.minor on both paths (6.0, never 6.00), as OpenSC''s tools do' {
        $p = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $c = Connect-PicoHsm -Reader $Reader -Pin $Pin
        $p.FirmwareVersion | Should -Be '6.0'
        $c.FirmwareVersion | Should -Be '6.0'
        (Get-CardToken).FirmwareVersion | Should -Be '6.0'
        Disconnect-PicoHsm -All
    }
}
