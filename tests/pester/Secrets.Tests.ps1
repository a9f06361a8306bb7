BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Remove-TestObjects -Token 'pico-test-d'
    $script:Started = Get-Date
    $script:Work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-secrets-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))
    $script:StartMarker = Join-Path $Work 'started'
    New-Item -ItemType File $StartMarker | Out-Null

    # Every secret the runs below type, good and wrong. Distinctive values, so that a match is a leak
    # and not a coincidence.
    $script:Secrets = @(
        $PinText, '271828',
        'Leak-Canary-Share-One-7731', 'Leak-Canary-Share-Two-7732', 'Leak-Canary-Share-Wrong-7733', 'Leak-Canary-New-Pass-7734', 'Leak-Canary-New-Pass-7735', 'Lk9q7Zw'
    )
    function Secure([string] $s) { ConvertTo-SecureString $s -AsPlainText -Force }
    # The calls below name only these variables: an error's position message quotes the calling line,
    # and a literal there would be the test's own leak. -WarningAction Continue beside -Debug: -Debug
    # alone makes every warning ask "Continue with this operation?", which fails a non-interactive run
    # before the secret is even tried (each case checks the module's own error id, ERRORID below).
    $script:GoodPin = Secure $PinText
    $script:WrongPin = Secure '271828'
    $script:One = Secure 'Leak-Canary-Share-One-7731'
    $script:Two = Secure 'Leak-Canary-Share-Two-7732'
    $script:Wrong = Secure 'Leak-Canary-Share-Wrong-7733'
    $script:NewPass = Secure 'Leak-Canary-New-Pass-7734'
    $script:NewPass2 = Secure 'Leak-Canary-New-Pass-7735'
    $script:TooShort = Secure 'Lk9q7Zw'

    function Get-Encodings([string] $Secret) {
        <#
        The secret as it could leak: itself, hex and base64 of its UTF-8 and UTF-16 bytes; a secret
        typed as hex (an SO-PIN, a password share's value) also as base64 of the bytes it stands for.
        #>
        foreach ($bytes in [Text.Encoding]::UTF8.GetBytes($Secret), [Text.Encoding]::Unicode.GetBytes($Secret)) {
            [Convert]::ToHexString($bytes).ToLowerInvariant()
            [Convert]::ToBase64String($bytes)
        }
        $digits = $Secret -replace ':', ''
        if ($digits -match '^([0-9a-fA-F]{2}){4,}$') { $digits; [Convert]::ToBase64String([Convert]::FromHexString($digits)) }
        $Secret
    }

    function Assert-NoCanaryInTempFiles {
        # Only the canaries: the test PIN is the one every test of the machine uses. Only what was written
        # since this file began, and not the files this test wrote on purpose (share files, transcripts).
        $canaries = $Secrets | Where-Object { $_ -like 'Leak-Canary-*' -or $_ -in $CardSecrets }
        # Regular files only: .NET's clr-debug-pipe-* in /tmp are FIFOs, and reading one blocks forever.
        $recent = if ($IsWindows) {
            Get-ChildItem ([IO.Path]::GetTempPath()) -File -Recurse -Depth 2 -ErrorAction Ignore |
                Where-Object { $_.LastWriteTime -gt $Started } | ForEach-Object FullName
        }
        else { & find ([IO.Path]::GetTempPath()) -maxdepth 3 -type f -newer $StartMarker -size -256k 2>$null }
        foreach ($f in @($recent | Where-Object { $_ -notlike "$($Work.FullName)*" })) {
            $text = try { [IO.File]::ReadAllText($f) } catch { $null }
            if (-not $text) { continue }
            foreach ($c in $canaries) { foreach ($e in Get-Encodings $c) { if ($text.Contains($e, [StringComparison]::OrdinalIgnoreCase)) { throw "temporary file $f holds '$c'." } } }
        }
    }
    # The card block's canaries (its PIN, SO-PIN, sc-hsm-tool passwords and password shares), searched
    # by every test so that one family's secret cannot show up in the other's output either.
    $script:CardSecrets = @(
        '58293716', '90817263', '7391046285517302', '1029384756473829',
        'Leak-Canary-Pbe-One-8841', 'Leak-Canary-Pbe-Two-8842', 'Leak-Canary-Pbe-Wrong-8843', 'Leak-Canary-Pbe-New-8844', 'Lk8p6Yv',
        '3f:3e:fa:a8:51:77:40:0b', '82:ea:95:2e:f3:6a:71:8e', '5d:17:c3:99:04:be:21:6a'
    )
    $script:Secrets = @($Secrets) + $CardSecrets

    function Invoke-Captured {
        <#
        Runs a script block with a transcript running, -Verbose and -Debug on and every stream
        captured; returns all of it as one text, with each error's exception chain and stack trace.
        #>
        param([scriptblock] $Body)
        $transcript = Join-Path $Work ("t-" + [guid]::NewGuid().ToString('n') + '.txt')
        $VerbosePreference = 'Continue'; $DebugPreference = 'Continue'; $InformationPreference = 'Continue'; $WarningPreference = 'Continue'
        $null = Start-Transcript -Path $transcript
        $Error.Clear()
        try { $out = & $Body *>&1 }
        catch { $out = @($_) }
        finally { $null = Stop-Transcript }
        $text = [Text.StringBuilder]::new()
        foreach ($o in @($out) + @($Error)) {
            $null = $text.AppendLine(($o | Out-String -Width 400))
            if ($o -is [Management.Automation.ErrorRecord]) {
                $null = $text.AppendLine($o.Exception.ToString()).AppendLine($o.ScriptStackTrace).AppendLine("$($o.TargetObject)").AppendLine("$($o.ErrorDetails)")
                # The error's id, so a test can tell the module's refusal from any other failure.
                $null = $text.AppendLine("ERRORID: $($o.FullyQualifiedErrorId)")
            }
        }
        $null = $text.AppendLine((Get-Content -Raw $transcript))
        $text.ToString()
    }

    function Assert-NoSecret([string] $Text, [string] $What) {
        foreach ($s in $Secrets) {
            foreach ($e in Get-Encodings $s) {
                if ($Text.Contains($e, [StringComparison]::OrdinalIgnoreCase)) { throw "$What leaked the secret '$s' (as '$e')." }
            }
        }
    }
}
AfterAll {
    Disconnect-PicoHsm -All
    Remove-TestObjects -Token 'pico-test-d'
    Remove-Item $Work -Recurse -Force -ErrorAction Ignore
}

Describe 'No secret in any stream, error or transcript (generic PKCS#11 token)' {
    It 'Connect-PicoHsm, with the right PIN and with a wrong one' {
        $t = Invoke-Captured { Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-d' -Pin $GoodPin -Verbose -Debug -WarningAction Continue | Out-String }
        $t | Should -Not -Match 'ERRORID:'
        $t | Should -Match 'pico-test-d'
        Assert-NoSecret $t 'Connect-PicoHsm (right PIN)'
        Disconnect-PicoHsm -All
        $t = Invoke-Captured { Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-d' -Pin $WrongPin -Verbose -Debug -WarningAction Continue -ErrorAction Continue }
        $t | Should -Match 'ERRORID: ConnectPicoHsm\w+,'
        $t | Should -Match 'PIN'
        Assert-NoSecret $t 'Connect-PicoHsm (wrong PIN)'
    }

    It 'New-PicoDkek with good passwords, and with one too short' {
        $null = Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-d' -Pin $GoodPin
        $t = Invoke-Captured { New-PicoDkek -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $Work 'bad') -SharePassword $TooShort, $Two -Confirm:$false -Verbose -Debug -WarningAction Continue -ErrorAction Continue }
        $t | Should -Match 'ERRORID: NewPicoDkek\w+,'
        $t | Should -Match 'password'
        Assert-NoSecret $t 'New-PicoDkek (short password)'
        $t = Invoke-Captured { New-PicoDkek -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $Work 'shares') -SharePassword $One, $Two -Confirm:$false -Verbose -Debug -WarningAction Continue | Out-String }
        $t | Should -Not -Match 'ERRORID:'
        $t | Should -Match '[0-9a-f]{16}'
        Assert-NoSecret $t 'New-PicoDkek'
        foreach ($f in Get-ChildItem (Join-Path $Work 'shares')) { Assert-NoSecret ([IO.File]::ReadAllText($f.FullName)) "share file $($f.Name)" }
    }

    It 'Import-PicoDkek with a wrong password and with the right ones' {
        $files = (Get-ChildItem (Join-Path $Work 'shares') -Filter *.dkekshare | Sort-Object Name).FullName
        # A token without the DKEK: one that holds it already is told so before any password is opened.
        Disconnect-PicoHsm -All
        Remove-TestObjects -Token 'pico-test-d'
        $null = Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-d' -Pin $GoodPin
        $t = Invoke-Captured { Import-PicoDkek -Path $files -SharePassword $Wrong, $Two -Confirm:$false -Verbose -Debug -WarningAction Continue -ErrorAction Continue }
        $t | Should -Match 'ERRORID: ImportPicoDkek\w+,'
        $t | Should -Match 'password'
        Assert-NoSecret $t 'Import-PicoDkek (wrong password)'
        $t = Invoke-Captured { Import-PicoDkek -Path $files -SharePassword $One, $Two -Confirm:$false -Verbose -Debug -WarningAction Continue -ErrorAction Continue | Out-String }
        $t | Should -Not -Match 'ERRORID:'
        (Get-PicoDkek | Where-Object Present).KeyCheckValue | Should -Match '^[0-9a-f]{16}$'
        Assert-NoSecret $t 'Import-PicoDkek'
    }

    It 'Update-PicoDkekShare with a wrong password and with the right one' {
        # Both shares of the 2-of-2 set (one alone rebuilds nothing), re-split 2-of-2.
        $file = (Get-ChildItem (Join-Path $Work 'shares') -Filter *.dkekshare | Sort-Object Name).FullName
        $t = Invoke-Captured { Update-PicoDkekShare -Path $file -SharePassword $Wrong, $Two -ShareCount 2 -Threshold 2 -NewSharePassword $NewPass, $NewPass2 -OutputDirectory (Join-Path $Work 'new1') -Confirm:$false -Verbose -Debug -WarningAction Continue -ErrorAction Continue }
        $t | Should -Match 'ERRORID: UpdatePicoDkekShare\w+,'
        $t | Should -Match 'password'
        Assert-NoSecret $t 'Update-PicoDkekShare (wrong password)'
        $t = Invoke-Captured { Update-PicoDkekShare -Path $file -SharePassword $One, $Two -ShareCount 2 -Threshold 2 -NewSharePassword $NewPass, $NewPass2 -OutputDirectory (Join-Path $Work 'new2') -Confirm:$false -Verbose -Debug -WarningAction Continue -ErrorAction Continue | Out-String }
        $t | Should -Not -Match 'ERRORID:'
        Assert-NoSecret $t 'Update-PicoDkekShare'
    }

    It 'leaves no secret in a temporary file' {
        Assert-NoCanaryInTempFiles
    }
}

# The card family: the card simulator as the vpcd card behind pcscd, sessions through PC/SC (-Reader).
# Each secret is a canary of its own (the card's PIN and SO-PIN are not the SoftHSM tokens' ones).
Describe 'No secret in any stream, error or transcript (Pico HSM / SmartCard-HSM card)' -Tag Card {
    BeforeAll {
        $script:PcscdPid = Start-PcscDaemon
        $script:Sim = Start-CardSimulator -Port 35963 -Arguments '--blank'
        $script:Reader = $Sim.Reader
        $script:Vectors = Get-TestVectorsFolder
        # $CardSecrets (the file's BeforeAll) holds these: the card's user PIN and a wrong one, the
        # SO-PIN (16 hex digits) and a wrong one, the sc-hsm-tool share passwords, and the password
        # shares of the sc-hsm-tool vector (tests/vectors) with a wrong one.
        $script:CardPin = Secure '58293716'
        $script:CardWrongPin = Secure '90817263'
        $script:CardSoPin = Secure '7391046285517302'
        $script:CardWrongSoPin = Secure '1029384756473829'
        $script:PbeOne = Secure 'Leak-Canary-Pbe-One-8841'
        $script:PbeTwo = Secure 'Leak-Canary-Pbe-Two-8842'
        $script:PbeWrong = Secure 'Leak-Canary-Pbe-Wrong-8843'
        $script:PbeNew = Secure 'Leak-Canary-Pbe-New-8844'
        $script:PbeShort = Secure 'Lk8p6Yv'
        $script:GoodShares = '1:3f:3e:fa:a8:51:77:40:0b', '3:82:ea:95:2e:f3:6a:71:8e' | ForEach-Object { Secure $_ }
        $script:WrongShares = '1:3f:3e:fa:a8:51:77:40:0b', '3:5d:17:c3:99:04:be:21:6a' | ForEach-Object { Secure $_ }
        $script:Prime = 'c0:1b:aa:f3:4b:97:a7:03'
        Disconnect-PicoHsm -All
    }
    AfterAll {
        Disconnect-PicoHsm -All
        Stop-CardSimulator $Sim
        Stop-PcscDaemon $PcscdPid
    }

    It 'Initialize-PicoHsm, with the right SO-PIN and with a wrong one' {
        $t = Invoke-Captured { Initialize-PicoHsm -Reader $Reader -SoPin $CardSoPin -Pin $CardPin -DkekShareCount 2 -Confirm:$false -Verbose -Debug -WarningAction Continue | Out-String }
        $t | Should -Not -Match 'ERRORID:'
        $t | Should -Match 'initialised'
        Assert-NoSecret $t 'Initialize-PicoHsm'
        $t = Invoke-Captured { Initialize-PicoHsm -Reader $Reader -SoPin $CardWrongSoPin -Pin $CardPin -DkekShareCount 2 -Confirm:$false -Verbose -Debug -WarningAction Continue -ErrorAction Continue }
        $t | Should -Match 'ERRORID: InitializePicoHsm\w+,'
        $t | Should -Match 'SO-PIN'
        Assert-NoSecret $t 'Initialize-PicoHsm (wrong SO-PIN)'
        # The right SO-PIN again resets its try counter.
        $null = Initialize-PicoHsm -Reader $Reader -SoPin $CardSoPin -Pin $CardPin -DkekShareCount 2 -Confirm:$false -WarningAction SilentlyContinue
    }

    It 'Connect-PicoHsm to the card, with the right PIN and with a wrong one' {
        $t = Invoke-Captured { Connect-PicoHsm -Reader $Reader -Pin $CardPin -Verbose -Debug -WarningAction Continue | Out-String }
        $t | Should -Not -Match 'ERRORID:'
        $t | Should -Match 'ScHsmCard'
        Assert-NoSecret $t 'Connect-PicoHsm (card, right PIN)'
        Disconnect-PicoHsm -All
        $t = Invoke-Captured { Connect-PicoHsm -Reader $Reader -Pin $CardWrongPin -Verbose -Debug -WarningAction Continue -ErrorAction Continue }
        $t | Should -Match 'ERRORID: ConnectPicoHsm\w+,'
        $t | Should -Match 'PIN'
        Assert-NoSecret $t 'Connect-PicoHsm (card, wrong PIN)'
        # The right PIN resets the try counter; the session stays the default for the tests below.
        $null = Connect-PicoHsm -Reader $Reader -Pin $CardPin
    }

    It 'New-PicoDkek -Format ScHsmTool with good passwords, and with one too short' {
        $t = Invoke-Captured { New-PicoDkek -Format ScHsmTool -ShareCount 2 -OutputDirectory (Join-Path $Work 'pbe-bad') -SharePassword $PbeShort, $PbeTwo -NoImport -Confirm:$false -Verbose -Debug -WarningAction Continue -ErrorAction Continue }
        $t | Should -Match 'ERRORID: NewPicoDkek\w+,'
        $t | Should -Match 'password'
        Assert-NoSecret $t 'New-PicoDkek -Format ScHsmTool (short password)'
        $t = Invoke-Captured { New-PicoDkek -Format ScHsmTool -ShareCount 2 -OutputDirectory (Join-Path $Work 'pbe') -SharePassword $PbeOne, $PbeTwo -NoImport -Confirm:$false -Verbose -Debug -WarningAction Continue | Out-String }
        $t | Should -Not -Match 'ERRORID:'
        $t | Should -Match '[0-9a-f]{16}'
        Assert-NoSecret $t 'New-PicoDkek -Format ScHsmTool'
        foreach ($f in Get-ChildItem (Join-Path $Work 'pbe')) { Assert-NoSecret ([IO.File]::ReadAllText($f.FullName)) "share file $($f.Name)" }
    }

    It 'Import-PicoDkek of sc-hsm-tool shares, with a wrong password and with the right ones' {
        $files = (Get-ChildItem (Join-Path $Work 'pbe') -Filter *.pbe | Sort-Object Name).FullName
        $t = Invoke-Captured { Import-PicoDkek -Path $files -SharePassword $PbeWrong, $PbeTwo -Confirm:$false -Verbose -Debug -WarningAction Continue -ErrorAction Continue }
        $t | Should -Match 'ERRORID: ImportPicoDkek\w+,'
        $t | Should -Match 'password'
        Assert-NoSecret $t 'Import-PicoDkek .pbe (wrong password)'
        $t = Invoke-Captured { Import-PicoDkek -Path $files -SharePassword $PbeOne, $PbeTwo -Confirm:$false -Verbose -Debug -WarningAction Continue | Out-String }
        $t | Should -Not -Match 'ERRORID:'
        $t | Should -Match '[0-9a-f]{16}'
        Assert-NoSecret $t 'Import-PicoDkek .pbe'
        (@(Get-PicoDkek))[0].SharesOutstanding | Should -Be 0
    }

    It 'Import-PicoDkek of a threshold sc-hsm-tool file, with a wrong password share and with the right ones' {
        Disconnect-PicoHsm -All
        $null = Initialize-PicoHsm -Reader $Reader -SoPin $CardSoPin -Pin $CardPin -DkekShareCount 1 -Confirm:$false -WarningAction SilentlyContinue
        $null = Connect-PicoHsm -Reader $Reader -Pin $CardPin
        $file = Join-Path $Vectors 'dkek-share-threshold.pbe'
        $t = Invoke-Captured { Import-PicoDkek -Path $file -PasswordSharePrime $Prime -PasswordShare $WrongShares -Confirm:$false -Verbose -Debug -WarningAction Continue -ErrorAction Continue }
        $t | Should -Match 'ERRORID: ImportPicoDkek\w+,'
        $t | Should -Match 'password'
        Assert-NoSecret $t 'Import-PicoDkek (wrong password share)'
        $t = Invoke-Captured { Import-PicoDkek -Path $file -PasswordSharePrime $Prime -PasswordShare $GoodShares -Confirm:$false -Verbose -Debug -WarningAction Continue | Out-String }
        $t | Should -Not -Match 'ERRORID:'
        $t | Should -Match '[0-9a-f]{16}'
        Assert-NoSecret $t 'Import-PicoDkek (password shares)'
    }

    It 'Update-PicoDkekShare on a .pbe file, with a wrong password, the right one, and password shares' {
        $file = (Get-ChildItem (Join-Path $Work 'pbe') -Filter *.pbe | Sort-Object Name)[0].FullName
        $t = Invoke-Captured { Update-PicoDkekShare -Path $file -SharePassword $PbeWrong -NewSharePassword $PbeNew -OutputDirectory (Join-Path $Work 'pbe-new1') -Confirm:$false -Verbose -Debug -WarningAction Continue -ErrorAction Continue }
        $t | Should -Match 'ERRORID: UpdatePicoDkekShare\w+,'
        $t | Should -Match 'password'
        Assert-NoSecret $t 'Update-PicoDkekShare .pbe (wrong password)'
        $t = Invoke-Captured { Update-PicoDkekShare -Path $file -SharePassword $PbeOne -NewSharePassword $PbeNew -OutputDirectory (Join-Path $Work 'pbe-new2') -Confirm:$false -Verbose -Debug -WarningAction Continue | Out-String }
        $t | Should -Not -Match 'ERRORID:'
        Assert-NoSecret $t 'Update-PicoDkekShare .pbe'
        Test-Path (Join-Path $Work 'pbe-new2' (Split-Path -Leaf $file)) | Should -BeTrue
        # The threshold vector opened with its password shares, given one new password.
        $t = Invoke-Captured { Update-PicoDkekShare -Path (Join-Path $Vectors 'dkek-share-threshold.pbe') -PasswordSharePrime $Prime -PasswordShare $GoodShares -NewSharePassword $PbeNew -OutputDirectory (Join-Path $Work 'pbe-new3') -Confirm:$false -Verbose -Debug -WarningAction Continue | Out-String }
        $t | Should -Not -Match 'ERRORID:'
        Assert-NoSecret $t 'Update-PicoDkekShare (password shares)'
        Test-Path (Join-Path $Work 'pbe-new3/dkek-share-threshold.pbe') | Should -BeTrue
    }

    It 'leaves no card secret in a temporary file' {
        Assert-NoCanaryInTempFiles
    }
}


Describe 'The leak search itself' {
    It 'finds a secret written plain, as hex or as base64, in any stream or in the transcript' {
        # Without this, a search that never matches would make every test above pass.
        $soBytes = [Convert]::FromHexString('7391046285517302')
        foreach ($plant in { Write-Verbose 'x Leak-Canary-Share-One-7731 x' }, { Write-Debug ([Convert]::ToHexString([Text.Encoding]::UTF8.GetBytes($PinText))) },
                           { Write-Warning ([Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes('Leak-Canary-Pbe-New-8844'))) }, { Write-Host ([Convert]::ToBase64String($soBytes)) },
                           { Write-Error 'share 3f:3e:fa:a8:51:77:40:0b' -ErrorAction Continue }) {
            $t = Invoke-Captured $plant
            { Assert-NoSecret $t 'the planted line' } | Should -Throw '*leaked*' -Because "$plant"
        }
    }
}
