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

Describe 'Sessions on a card that was removed or restarted outside the module (issue 14 Seen 6)' {
    BeforeAll {
        function Wait-ReaderEmpty {
            # pcscd polls vpcd: wait until it shows no card in the reader.
            $deadline = [DateTime]::UtcNow.AddSeconds(20)
            do { Start-Sleep -Milliseconds 300; $line = & opensc-tool -l 2>$null | Select-String -SimpleMatch $Reader }
            until (($line -and -not ($line | Select-String 'Yes' -Quiet)) -or [DateTime]::UtcNow -gt $deadline)
            ($line | Select-String 'Yes' -Quiet) | Should -BeFalse -Because 'pcscd should see the reader empty once the simulator stopped'
        }
        # One card whose contents outlive its process (--state): stopping the simulator pulls the card out of
        # the reader; starting it again on the same state is the same card after a new power-up.
        Stop-CardSimulator $Sim
        Wait-ReaderEmpty
        $script:StateFile = Join-Path ([IO.Path]::GetTempPath()) ("picohsm-stale-" + [guid]::NewGuid().ToString('n').Substring(0, 8) + '.json')
        $script:StateArgs = @('--initialized', '--dkek-shares', '1', '--state', $StateFile)
        $script:Sim = Start-CardSimulator -Port 35963 -Arguments $StateArgs
        function Confirm-CardIn {
            # Each case starts with the card in the reader, whatever the one before left.
            if ($Sim.Process.HasExited) { Wait-ReaderEmpty; $script:Sim = Start-CardSimulator -Port 35963 -Arguments $StateArgs }
        }
        function Invoke-Once([scriptblock] $Command) {
            # Every error record the call produced, terminating or not.
            $ErrorActionPreference = 'Continue'
            $errors = [Collections.Generic.List[object]]::new()
            try { & $Command 2>&1 | ForEach-Object { if ($_ -is [Management.Automation.ErrorRecord]) { $errors.Add($_) } } }
            catch { $errors.Add($_) }
            [pscustomobject]@{ Errors = $errors.ToArray() }
        }
    }
    AfterAll {
        Disconnect-PicoHsm -All
        if (-not $Sim.Process.HasExited) { Stop-CardSimulator $Sim; Wait-ReaderEmpty }
        Remove-Item $StateFile -ErrorAction Ignore
        $script:Sim = Start-CardSimulator -Port 35963 -Arguments '--blank'
    }

    It 'a card pulled out: Get-PicoHsmSession shows its sessions closed and logged out, and using one is one SessionClosed error saying Connect-PicoHsm again' {
        Disconnect-PicoHsm -All
        Confirm-CardIn
        $p11 = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $card = Connect-PicoHsm -Reader $Reader -Pin $Pin
        @(Get-PicoKey -Session $card).Count | Should -Be 0
        Stop-CardSimulator $Sim
        Wait-ReaderEmpty
        $listed = @(Get-PicoHsmSession)
        $listed.Count | Should -Be 2
        $listed | ForEach-Object { $_.IsOpen | Should -BeFalse -Because "session $($_.Id)'s card was removed"; $_.IsLoggedIn | Should -BeFalse }
        @(Get-PicoHsmSession -Default).Count | Should -Be 0
        foreach ($s in $p11, $card) {
            $r = Invoke-Once { Get-PicoKey -Session $s }
            $r.Errors.Count | Should -Be 1 -Because ($r.Errors | Out-String)
            $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'GetPicoKeySessionClosed,*'
            $r.Errors[0].CategoryInfo.Category | Should -BeIn 'ConnectionError', 'ResourceUnavailable'
            $r.Errors[0].Exception.Message | Should -Match 'Connect-PicoHsm again'
        }
        $script:Sim = Start-CardSimulator -Port 35963 -Arguments $StateArgs
        Disconnect-PicoHsm -All
        @(Get-PicoHsmSession).Count | Should -Be 0
    }

    It 'a card restarted (out and back in: a new power-up, its login gone): its sessions show closed, using one is one clear error, and a new connect works' {
        Disconnect-PicoHsm -All
        Confirm-CardIn
        $p11 = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $card = Connect-PicoHsm -Reader $Reader -Pin $Pin
        (@(Get-PicoDkek -Session $card))[0].Present | Should -BeFalse
        Stop-CardSimulator $Sim
        Wait-ReaderEmpty
        $script:Sim = Start-CardSimulator -Port 35963 -Arguments $StateArgs
        $listed = @(Get-PicoHsmSession)
        $listed | ForEach-Object { $_.IsOpen | Should -BeFalse -Because "session $($_.Id)'s card was restarted"; $_.IsLoggedIn | Should -BeFalse }
        foreach ($s in $card, $p11) {
            $r = Invoke-Once { Get-PicoDkek -Session $s }
            $r.Errors.Count | Should -Be 1 -Because ($r.Errors | Out-String)
            $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'GetPicoDkekSessionClosed,*'
            $r.Errors[0].Exception.Message | Should -Match 'Connect-PicoHsm again'
        }
        $new = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        $new.IsLoggedIn | Should -BeTrue
        { Get-PicoKey -Session $new } | Should -Not -Throw
        (@(Get-PicoHsmSession) | Where-Object IsOpen).Id | Should -Be $new.Id
        Disconnect-PicoHsm -All
    }

    It 'a session used (not listed) after its card was restarted: the first command is one SessionClosed error, and the session shows closed after it' {
        Disconnect-PicoHsm -All
        Confirm-CardIn
        $card = Connect-PicoHsm -Reader $Reader -Pin $Pin
        Stop-CardSimulator $Sim
        Wait-ReaderEmpty
        $script:Sim = Start-CardSimulator -Port 35963 -Arguments $StateArgs
        $r = Invoke-Once { Get-PicoKey -Session $card }
        $r.Errors.Count | Should -Be 1 -Because ($r.Errors | Out-String)
        $r.Errors[0].FullyQualifiedErrorId | Should -BeLike 'GetPicoKeySessionClosed,*'
        $r.Errors[0].Exception.Message | Should -Match 'Connect-PicoHsm again'
        $card.IsOpen | Should -BeFalse
        Disconnect-PicoHsm -All
    }
}

Describe 'Import-PicoDkek of sc-hsm-tool shares on the card path (issue 14 Seen 4 and 6)' {
    BeforeAll {
        $script:Vectors = Get-TestVectorsFolder
        $script:Share1 = Join-Path $Vectors 'dkek-share-1.pbe'
        $script:Share2 = Join-Path $Vectors 'dkek-share-2.pbe'
        $script:Pw1 = ConvertTo-SecureString 'share-one-pass' -AsPlainText -Force
        $script:Pw2 = ConvertTo-SecureString 'share-two-pass' -AsPlainText -Force
        $script:VectorKcv = 'd5c1a339cd295797'
        function Initialize-TwoShareCard {
            Disconnect-PicoHsm -All
            Initialize-PicoHsm -Reader $Reader -SoPin $SoPin -Pin $Pin -DkekShareCount 2 -Confirm:$false -WarningAction SilentlyContinue | Out-Null
            Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
        }
    }
    AfterAll { Disconnect-PicoHsm -All }

    It 'importing the DKEK the card already holds warns (as the help promises) and changes nothing' {
        $s = Initialize-TwoShareCard
        $d = @(Import-PicoDkek -Session $s -Path $Share1, $Share2 -SharePassword $Pw1, $Pw2 -Confirm:$false -WarningAction SilentlyContinue)
        $d[0].KeyCheckValue | Should -Be $VectorKcv
        $w = $null
        $again = @(Import-PicoDkek -Session $s -Path $Share1, $Share2 -SharePassword $Pw1, $Pw2 -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue)
        @($w | Where-Object { "$_" -match "already holds DKEK $VectorKcv" -and "$_" -match 'nothing was changed' }).Count | Should -Be 1 -Because ($w -join "`n")
        @($w | Where-Object { "$_" -match 'about to be created' }).Count | Should -Be 0
        $again[0].KeyCheckValue | Should -Be $VectorKcv
        $again[0].SharesOutstanding | Should -Be 0
        # with -ExpectedKcv of the card's DKEK: the same warning, before any password is asked for
        $w = $null
        $third = @(Import-PicoDkek -Session $s -Path $Share1, $Share2 -ExpectedKcv $VectorKcv -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue)
        @($w | Where-Object { "$_" -match "already holds DKEK $VectorKcv" }).Count | Should -Be 1 -Because ($w -join "`n")
        $third[0].KeyCheckValue | Should -Be $VectorKcv
    }

    It 'a correct share given alone with -ExpectedKcv is not called wrong: refused before anything is sent, naming the fix' {
        $s = Initialize-TwoShareCard
        $e = { Import-PicoDkek -Session $s -Path $Share1 -SharePassword $Pw1 -ExpectedKcv $VectorKcv -Confirm:$false } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoDkekKcvNotCheckable,*'
        $e.Exception.Message | Should -Not -Match 'not all shares of one ceremony'
        $e.Exception.Message | Should -Match 'all 2 share files in one call'
        (@(Get-PicoDkek -Session $s))[0].SharesOutstanding | Should -Be 2 # nothing reached the card
        # the whole set in one call is checked in the host and imported
        $d = @(Import-PicoDkek -Session $s -Path $Share1, $Share2 -SharePassword $Pw1, $Pw2 -ExpectedKcv $VectorKcv -Confirm:$false -WarningAction SilentlyContinue)
        $d[0].KeyCheckValue | Should -Be $VectorKcv
    }

    It 'shares imported in two calls: the first names no KCV it cannot know, the last is checked against -ExpectedKcv as the card reports it' {
        $s = Initialize-TwoShareCard
        $w = $null
        $d = @(Import-PicoDkek -Session $s -Path $Share1 -SharePassword $Pw1 -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue)
        $d[0].SharesOutstanding | Should -Be 1
        @($w | Where-Object { "$_" -match 'about to be created' }).Count | Should -Be 0 -Because ($w -join "`n")
        @($w | Where-Object { "$_" -match '1 of 2 shares outstanding' }).Count | Should -Be 1 -Because ($w -join "`n")
        $d = @(Import-PicoDkek -Session $s -Path $Share2 -SharePassword $Pw2 -ExpectedKcv $VectorKcv -Confirm:$false -WarningAction SilentlyContinue)
        $d[0].KeyCheckValue | Should -Be $VectorKcv
        $d[0].SharesOutstanding | Should -Be 0
    }

    It 'the last share of another ceremony, with -ExpectedKcv: KcvMismatch naming what the card now holds and the fix' {
        $s = Initialize-TwoShareCard
        Import-PicoDkek -Session $s -Path $Share1 -SharePassword $Pw1 -Confirm:$false -WarningAction SilentlyContinue | Out-Null
        $e = { Import-PicoDkek -Session $s -Path $Share1 -SharePassword $Pw1 -ExpectedKcv $VectorKcv -Confirm:$false -WarningAction SilentlyContinue } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoDkekKcvMismatch,*'
        $e.Exception.Message | Should -Match $VectorKcv
        $e.Exception.Message | Should -Match 'Initialize-PicoHsm'
    }
}
