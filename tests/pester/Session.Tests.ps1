BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
}

Describe 'Get-PicoHsmToken' {
    It 'lists the initialised test tokens with their properties, without logging in' {
        $tokens = Get-PicoHsmToken -ModulePath $SoftHsm
        $init = @($tokens | Where-Object Initialized)
        $init.Label | Should -Contain 'pico-test-a'
        $init.Label | Should -Contain 'pico-test-b'
        $a = $tokens | Where-Object Label -EQ 'pico-test-a'
        $a | Should -BeOfType ([PicoHsm.Devices.PicoHsmToken])
        $a.SerialNumber | Should -Match '^[0-9a-f]{16}$'
        $a.Model | Should -Be 'SoftHSM v2'
        $a.Manufacturer | Should -Be 'SoftHSM project'
        $a.FirmwareVersion | Should -Match '^\d+\.\d+$'
        $a.LoginRequired | Should -BeTrue
        $a.PinState | Should -Be 'OK'
        $a.UserPinLocked | Should -BeFalse
        $a.ModulePath | Should -Be $SoftHsm
        $a.IsScHsmFamily | Should -BeFalse
    }

    It 'also shows the uninitialised slot SoftHSM2 keeps free, marked as such' {
        @(Get-PicoHsmToken -ModulePath $SoftHsm | Where-Object { -not $_.Initialized }).Count | Should -BeGreaterOrEqual 1
    }

    It 'fails clearly for a module path that does not exist' {
        $e = { Get-PicoHsmToken -ModulePath '/nonexistent/libnothing.so' -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'GetPicoHsmTokenModuleNotFound,*'
        $e.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $e.Exception.Message | Should -BeLike "*/nonexistent/libnothing.so*does not exist*"
    }

    It 'fails clearly for a library that is not a PKCS#11 module' {
        $notP11 = @('/lib/x86_64-linux-gnu/libz.so.1', '/usr/lib/x86_64-linux-gnu/libz.so.1', '/lib/x86_64-linux-gnu/libm.so.6') | Where-Object { Test-Path $_ } | Select-Object -First 1
        $e = { Get-PicoHsmToken -ModulePath $notP11 -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'GetPicoHsmTokenModuleLoadFailed,*'
        $e.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $e.Exception.Message | Should -BeLike '*not*PKCS#11*'
    }

    It 'fails clearly for a file that is not a library at all' {
        $f = Join-Path $TestDrive 'not-a-library.so'
        'hello' | Set-Content $f
        $e = { Get-PicoHsmToken -ModulePath $f -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'GetPicoHsmTokenModuleLoadFailed,*'
    }
}

Describe 'Connect-PicoHsm' {
    AfterEach { Disconnect-PicoHsm -All }

    It 'refuses to guess when several tokens are initialised, and lists them' {
        $e = { Connect-PicoHsm -ModulePath $SoftHsm -Pin $Pin -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ConnectPicoHsmAmbiguousToken,*'
        $e.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $e.Exception.Message | Should -BeLike "*'pico-test-a'*"
        $e.Exception.Message | Should -BeLike "*'pico-test-b'*"
        $e.Exception.Message | Should -BeLike '*-TokenLabel*'
    }

    It 'connects by label and returns a typed session that becomes the default' {
        $s = Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-a' -Pin $Pin
        $s | Should -BeOfType ([PicoHsm.Session.PicoHsmSession])
        $s.TokenLabel | Should -Be 'pico-test-a'
        $s.IsLoggedIn | Should -BeTrue
        $s.IsOpen | Should -BeTrue
        $s.ModulePath | Should -Be $SoftHsm
        $s.Model | Should -Be 'SoftHSM v2'
        $s.Manufacturer | Should -Be 'SoftHSM project'
        $s.SerialNumber | Should -Be (Get-PicoHsmToken -ModulePath $SoftHsm | Where-Object Label -EQ 'pico-test-a').SerialNumber
        $s.FirmwareVersion | Should -Not -BeNullOrEmpty
        $s.DeviceFamily | Should -Be 'Pkcs11Token'
        (Get-PicoHsmSession -Default).Id | Should -Be $s.Id
    }

    It 'connects by serial number and by slot id' {
        $t = Get-PicoHsmToken -ModulePath $SoftHsm | Where-Object Label -EQ 'pico-test-b'
        (Connect-PicoHsm -ModulePath $SoftHsm -SerialNumber $t.SerialNumber -Pin $Pin).TokenLabel | Should -Be 'pico-test-b'
        (Connect-PicoHsm -ModulePath $SoftHsm -SlotId $t.SlotId -Pin $Pin).TokenLabel | Should -Be 'pico-test-b'
        @(Get-PicoHsmSession).Count | Should -Be 2
    }

    It 'takes the PIN from a PSCredential' {
        $cred = [pscredential]::new('user', $Pin)
        (Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-a' -Credential $cred).IsLoggedIn | Should -BeTrue
    }

    It 'reports a wrong PIN as an authentication error that warns tries are limited, without the PIN' {
        $bad = ConvertTo-SecureString 'not-the-pin-4711' -AsPlainText -Force
        $e = { Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-c' -Pin $bad -Verbose -ErrorAction Stop 4>&1 } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ConnectPicoHsmWrongPin,*'
        $e.CategoryInfo.Category | Should -Be 'AuthenticationError'
        $e.Exception.Message | Should -BeLike '*Tries are limited*'
        ($e | Out-String) | Should -Not -BeLike '*not-the-pin-4711*'
        @(Get-PicoHsmSession).Count | Should -Be 0
    }

    It 'keeps the PIN out of verbose output' {
        $verbose = Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-a' -Pin $Pin -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        $verbose | Should -Not -BeNullOrEmpty
        ($verbose | Out-String) | Should -Not -BeLike "*$PinText*"
    }

    It 'fails at once, with how to pass the PIN, when non-interactive and no PIN is given' {
        $e = { Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-a' -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ConnectPicoHsmPinRequired,*'
        $e.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $e.Exception.Message | Should -BeLike '*-Pin*'
        $e.Exception.Message | Should -BeLike '*-Credential*'
    }

    It 'does not hang in a scheduled-task-like process with no console input' {
        $r = Invoke-FreshPwsh -Command "Import-Module '$ModuleUnderTest'; try { Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel pico-test-a -ErrorAction Stop } catch { `$_.FullyQualifiedErrorId; exit 3 }"
        $r.ExitCode | Should -Be 3
        $r.Output -join "`n" | Should -BeLike '*ConnectPicoHsmPinRequired*'
    }

    It 'names a label that matches no token' {
        $e = { Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'no-such-token' -Pin $Pin -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ConnectPicoHsmTokenNotFound,*'
        $e.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $e.Exception.Message | Should -BeLike "*no-such-token*pico-test-a*"
    }

    It 'rejects two selectors at once' {
        $e = { Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-a' -SlotId 1 -Pin $Pin -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ConnectPicoHsmTooManySelectors,*'
    }

    It 'says so when the module has no initialised token' {
        $empty = New-SoftHsmEnvironment
        try {
            $r = Invoke-FreshPwsh -Environment @{ SOFTHSM2_CONF = $empty } -Command "Import-Module '$ModuleUnderTest'; try { Connect-PicoHsm -ModulePath '$SoftHsm' -Pin (ConvertTo-SecureString 1 -AsPlainText -Force) -ErrorAction Stop } catch { `$_.FullyQualifiedErrorId; `$_.CategoryInfo.Category; `$_.Exception.Message; exit 3 }"
            $r.ExitCode | Should -Be 3
            $r.Output[0] | Should -BeLike 'ConnectPicoHsmNoToken,*'
            $r.Output[1] | Should -Be 'ObjectNotFound'
            $r.Output[2] | Should -BeLike '*no initialised token*'
        }
        finally { Remove-SoftHsmEnvironment -ConfigPath $empty }
    }

    It 'uses PICOHSM_PKCS11_MODULE when no -ModulePath is given, and names every place tried when nothing is found' {
        $r = Invoke-FreshPwsh -Environment @{ PICOHSM_PKCS11_MODULE = $SoftHsm } -Command "Import-Module '$ModuleUnderTest'; (Connect-PicoHsm -TokenLabel pico-test-a -Pin (ConvertTo-SecureString '$PinText' -AsPlainText -Force)).ModulePath"
        $r.Output[-1] | Should -Be $SoftHsm
        $r = Invoke-FreshPwsh -Environment @{ PICOHSM_PKCS11_MODULE = '/nowhere/mod.so' } -Command "Import-Module '$ModuleUnderTest'; try { Connect-PicoHsm -ErrorAction Stop } catch { `$_.Exception.Message }"
        $r.Output -join ' ' | Should -BeLike '*PICOHSM_PKCS11_MODULE*/nowhere/mod.so*'
    }
}

Describe 'Disconnect-PicoHsm and Get-PicoHsmSession' {
    It 'logs out and closes the default session; later cmdlets say to connect' {
        $s = Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-a' -Pin $Pin
        Disconnect-PicoHsm
        $s.IsOpen | Should -BeFalse
        $s.IsLoggedIn | Should -BeFalse
        @(Get-PicoHsmSession).Count | Should -Be 0
        $e = { Get-PicoKey -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'GetPicoKeyNoSession,*'
        $e.Exception.Message | Should -BeLike '*Connect-PicoHsm*'
        $e = { Get-PicoKey -Session $s -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'GetPicoKeySessionClosed,*'
    }

    It 'closes a given session and makes the previous one the default' {
        $a = Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-a' -Pin $Pin
        $b = Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-b' -Pin $Pin
        (Get-PicoHsmSession -Default).Id | Should -Be $b.Id
        $b | Disconnect-PicoHsm
        (Get-PicoHsmSession -Default).Id | Should -Be $a.Id
        Disconnect-PicoHsm -All
        @(Get-PicoHsmSession).Count | Should -Be 0
    }

    It 'closes the sessions when the module is removed' {
        $r = Invoke-FreshPwsh -Command "Import-Module '$ModuleUnderTest'; `$s = Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel pico-test-a -Pin (ConvertTo-SecureString '$PinText' -AsPlainText -Force); `$s.IsOpen; Remove-Module PicoHsm; `$s.IsOpen"
        $r.Output[-2] | Should -Be 'True'
        $r.Output[-1] | Should -Be 'False'
    }
}

Describe 'Start-up (issue 9)' {
    It 'Import-Module loads no PKCS#11 code; the first connect does' {
        $cmd = "Import-Module '$ModuleUnderTest'; `$n = { [AppDomain]::CurrentDomain.GetAssemblies().GetName().Name -contains 'Pkcs11Interop' }; & `$n; " +
            "`$null = Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel pico-test-a -Pin (ConvertTo-SecureString '$PinText' -AsPlainText -Force); & `$n; @(Get-PicoKey -Label 'no-such-key-label').Count"
        $r = Invoke-FreshPwsh -Command $cmd
        $r.ExitCode | Should -Be 0 -Because ($r.Output -join "`n")
        $r.Output | Should -Be @('False', 'True', '0')
    }
}

Describe 'Get-PicoKey' {
    BeforeAll {
        Remove-TestObjects -Token 'pico-test-b'
        New-TestKey -Token 'pico-test-b' -KeyType 'rsa:2048' -Id '0a' -Label 'ca-rsa' -Extractable
        New-TestKey -Token 'pico-test-b' -KeyType 'EC:prime256v1' -Id '0b' -Label 'tls-ec'
        New-TestKey -Token 'pico-test-b' -KeyType 'AES:32' -Id '0c' -Label 'data-aes' -Extractable
        $script:s = Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-b' -Pin $Pin
    }
    AfterAll {
        Disconnect-PicoHsm -All
        Remove-TestObjects -Token 'pico-test-b'
    }

    It 'lists private and secret keys as typed objects, matched with their public halves by id' {
        $keys = @(Get-PicoKey)
        $keys.Count | Should -Be 3
        $keys | ForEach-Object { $_ | Should -BeOfType ([PicoHsm.Keys.PicoKey]) }
        $rsa = $keys | Where-Object Id -EQ '0a'
        $rsa.Label | Should -Be 'ca-rsa'
        $rsa.Class | Should -Be 'PrivateKey'
        $rsa.KeyType | Should -Be 'Rsa'
        $rsa.Size | Should -Be 2048
        $rsa.Extractable | Should -BeTrue
        $rsa.Sensitive | Should -BeTrue
        $rsa.HasPublicKey | Should -BeTrue
        $rsa.HasCertificate | Should -BeFalse
        $rsa.Algorithm | Should -Be 'RSA-2048'
        $ec = $keys | Where-Object Id -EQ '0b'
        $ec.KeyType | Should -Be 'Ec'
        $ec.Curve | Should -Be 'P-256'
        $ec.Size | Should -Be 256
        $ec.Extractable | Should -BeFalse
        $ec.Exportable | Should -BeFalse
        $ec.ExportBlockedReason | Should -BeLike '*CKA_EXTRACTABLE*'
        $aes = $keys | Where-Object Id -EQ '0c'
        $aes.Class | Should -Be 'SecretKey'
        $aes.KeyType | Should -Be 'Aes'
        $aes.Size | Should -Be 256
        $aes.PublicKeyFingerprint | Should -BeNullOrEmpty
    }

    It 'gives the SHA-256 fingerprint of the public key as OpenSC reads it' {
        foreach ($id in '0a', '0b') {
            $der = Join-Path $TestDrive "$id.der"
            & pkcs11-tool --module $SoftHsm --token-label 'pico-test-b' --read-object --type pubkey --id $id -o $der 2>&1 | Out-Null
            $expected = (Get-FileHash -Algorithm SHA256 $der).Hash.ToLowerInvariant()
            (Get-PicoKey -Id $id).PublicKeyFingerprint | Should -Be $expected
        }
    }

    It 'filters by id, label wildcard and key type' {
        (Get-PicoKey -Id '0B').Label | Should -Be 'tls-ec'
        (Get-PicoKey -Label 'CA-*').Id | Should -Be '0a'
        @(Get-PicoKey -KeyType Aes, Ec).Id | Should -Be @('0b', '0c')
        @(Get-PicoKey -Label 'nothing*').Count | Should -Be 0
    }

    It 'writes a not-found error for an id that is not on the token' {
        $e = { Get-PicoKey -Id 'ff' -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'GetPicoKeyKeyNotFound,*'
        $e.CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'formats as a compact table by default' {
        $text = Get-PicoKey | Out-String
        $text | Should -BeLike '*Algorithm*'
        $text | Should -BeLike '*RSA-2048*'
        $text | Should -Not -BeLike '*PublicKeyInfo*'
    }

    It 'completes key ids and labels from the default session' {
        $ids = (TabExpansion2 -inputScript 'Get-PicoKey -Id 0' -cursorColumn 17).CompletionMatches.CompletionText
        $ids | Should -Contain '0a'
        $labels = (TabExpansion2 -inputScript 'Get-PicoKey -Label tl' -cursorColumn 21).CompletionMatches.CompletionText
        # A label PowerShell reads as one word completes bare (issue 11: quote only when needed).
        $labels | Should -Contain 'tls-ec'
    }
}

Describe 'Connect-PicoHsm proves every PIN and fails a script (issue 8)' {
    BeforeAll {
        # A token of its own in a fresh process: login state is per token per process, and the
        # disconnect test needs a private key that only a logged-in session can see.
        $script:LoginConf = New-SoftHsmEnvironment -TokenLabel 'login-shared'
        $old = $env:SOFTHSM2_CONF
        try {
            $env:SOFTHSM2_CONF = $script:LoginConf
            $o = & pkcs11-tool --module $SoftHsm --token-label 'login-shared' --login --pin $PinText --keypairgen --key-type 'EC:prime256v1' --id '4c01' --label 'shared-ec' 2>&1
            if ($LASTEXITCODE -ne 0) { throw "pkcs11-tool failed: $o" }
        }
        finally { $env:SOFTHSM2_CONF = $old }
        $script:PinArg = "(ConvertTo-SecureString '$PinText' -AsPlainText -Force)"
        $script:Wrong = "(ConvertTo-SecureString '000000' -AsPlainText -Force)"
    }
    AfterAll { Remove-SoftHsmEnvironment -ConfigPath $script:LoginConf }

    It 'refuses a wrong PIN on a second Connect while the token is logged in, without spending a try' {
        $r = Invoke-FreshPwsh -Environment @{ SOFTHSM2_CONF = $LoginConf } -Command (@"
Import-Module '$ModuleUnderTest'
`$a = Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel login-shared -Pin $PinArg
try { Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel login-shared -Pin $Wrong -ErrorAction Stop; 'wrong PIN accepted' }
catch { `$_.FullyQualifiedErrorId; `$_.CategoryInfo.Category }
(Get-PicoHsmToken -ModulePath '$SoftHsm' | Where-Object Label -EQ login-shared).UserPinCountLow
(Get-PicoHsmSession -Default).Id -eq `$a.Id
(Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel login-shared -Pin $PinArg).IsLoggedIn
"@)
        $r.Output | Should -Not -Contain 'wrong PIN accepted'
        $r.Output[0] | Should -BeLike 'ConnectPicoHsmWrongPin,*'
        $r.Output[1] | Should -Be 'AuthenticationError'
        $r.Output[2] | Should -Be 'False'
        $r.Output[3] | Should -Be 'True'
        $r.Output[4] | Should -Be 'True'
    }

    It 'keeps the other session of the token logged in when one is disconnected' {
        $r = Invoke-FreshPwsh -Environment @{ SOFTHSM2_CONF = $LoginConf } -Command (@"
Import-Module '$ModuleUnderTest'
`$a = Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel login-shared -Pin $PinArg
`$b = Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel login-shared -Pin $PinArg
Disconnect-PicoHsm -Session `$a
`$b.IsLoggedIn
(Get-PicoKey -Session `$b).Label
"@)
        $r.Output[-2] | Should -Be 'True'
        $r.Output[-1] | Should -Be 'shared-ec'
    }

    It 'stops a script at a failed Connect: no "after", a non-zero exit, the module and the slots named' {
        $r = Invoke-FreshPwsh -Environment @{ SOFTHSM2_CONF = $LoginConf } -Command "Import-Module '$ModuleUnderTest'; Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel nope -Pin $PinArg; 'after'"
        $r.Output | Should -Not -Contain 'after'
        $r.ExitCode | Should -Not -Be 0
        $text = $r.Output -join ' '
        $text | Should -BeLike "*nope*$SoftHsm*"
        $text | Should -BeLike "*Slots searched:*'login-shared'*"
        $text | Should -BeLike '*(token not initialised*'
    }

    It 'is caught by try/catch with its error id, and leaves the default session as it was' {
        $r = Invoke-FreshPwsh -Environment @{ SOFTHSM2_CONF = $LoginConf } -Command (@"
Import-Module '$ModuleUnderTest'
`$a = Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel login-shared -Pin $PinArg
try { Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel nope -Pin $PinArg } catch { `$_.FullyQualifiedErrorId }
(Get-PicoHsmSession -Default).Id -eq `$a.Id
@(Get-PicoHsmSession).Count
`$a.IsLoggedIn
"@)
        $r.Output[0] | Should -BeLike 'ConnectPicoHsmTokenNotFound,*'
        $r.Output[1] | Should -Be 'True'
        $r.Output[2] | Should -Be '1'
        $r.Output[3] | Should -Be 'True'
    }

    It 'goes on after a failed Connect only when -ErrorAction SilentlyContinue asks for it' {
        $r = Invoke-FreshPwsh -Environment @{ SOFTHSM2_CONF = $LoginConf } -Command "Import-Module '$ModuleUnderTest'; Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel nope -Pin $PinArg -ErrorAction SilentlyContinue; 'after'"
        $r.Output | Should -Contain 'after'
    }

    It 'says with -Verbose which module was chosen and why' {
        $verbose = Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-a' -Pin $Pin -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        ($verbose | Out-String) | Should -BeLike "*'$SoftHsm'*given with -ModulePath*"
        Disconnect-PicoHsm -All
        $r = Invoke-FreshPwsh -Environment @{ PICOHSM_PKCS11_MODULE = $SoftHsm } -Command "Import-Module '$ModuleUnderTest'; Get-PicoHsmToken -Verbose 4>&1 | Where-Object { `$_ -is [System.Management.Automation.VerboseRecord] } | ForEach-Object Message"
        $r.Output -join ' ' | Should -BeLike "*'$SoftHsm'*from `$PICOHSM_PKCS11_MODULE*"
    }

    It 'warns, naming the module and its slots, when Get-PicoHsmToken finds no token' {
        $empty = New-SoftHsmEnvironment
        try {
            $r = Invoke-FreshPwsh -Environment @{ SOFTHSM2_CONF = $empty } -Command "Import-Module '$ModuleUnderTest'; `$t = @(Get-PicoHsmToken -ModulePath '$SoftHsm' -WarningVariable w -WarningAction SilentlyContinue | Where-Object Initialized); `$t.Count; `$w -join ' '"
            $r.Output[0] | Should -Be '0'
            $r.Output[1] | Should -BeLike "*'$SoftHsm'*no initialised token*Slots searched: slot * (token not initialised*"
        }
        finally { Remove-SoftHsmEnvironment -ConfigPath $empty }
    }
}
