BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Remove-TestObjects -Token 'pico-test-d'
    $script:Started = Get-Date
    $script:Work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-secrets-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))

    # Every secret the runs below type, good and wrong. Distinctive values, so that a match is a leak
    # and not a coincidence.
    $script:Secrets = @(
        $PinText, '271828',
        'Leak-Canary-Share-One-7731', 'Leak-Canary-Share-Two-7732', 'Leak-Canary-Share-Wrong-7733', 'Leak-Canary-New-Pass-7734', 'Lk9q7Zw'
    )
    function Secure([string] $s) { ConvertTo-SecureString $s -AsPlainText -Force }
    # The calls below name only these variables: an error's position message quotes the calling line,
    # and a literal there would be the test's own leak.
    $script:GoodPin = Secure $PinText
    $script:WrongPin = Secure '271828'
    $script:One = Secure 'Leak-Canary-Share-One-7731'
    $script:Two = Secure 'Leak-Canary-Share-Two-7732'
    $script:Wrong = Secure 'Leak-Canary-Share-Wrong-7733'
    $script:NewPass = Secure 'Leak-Canary-New-Pass-7734'
    $script:TooShort = Secure 'Lk9q7Zw'

    function Get-Encodings([string] $Secret) {
        <# The secret as it could leak: itself, hex and base64 of its UTF-8 and UTF-16 bytes. #>
        foreach ($bytes in [Text.Encoding]::UTF8.GetBytes($Secret), [Text.Encoding]::Unicode.GetBytes($Secret)) {
            [Convert]::ToHexString($bytes).ToLowerInvariant()
            [Convert]::ToBase64String($bytes)
        }
        $Secret
    }

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
        $t = Invoke-Captured { Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-d' -Pin $GoodPin -Verbose -Debug | Out-String }
        $t | Should -Match 'pico-test-d'
        Assert-NoSecret $t 'Connect-PicoHsm (right PIN)'
        Disconnect-PicoHsm -All
        $t = Invoke-Captured { Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-d' -Pin $WrongPin -Verbose -Debug -ErrorAction Continue }
        $t | Should -Match 'PIN'
        Assert-NoSecret $t 'Connect-PicoHsm (wrong PIN)'
    }

    It 'New-PicoDkek with good passwords, and with one too short' {
        $null = Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel 'pico-test-d' -Pin $GoodPin
        $t = Invoke-Captured { New-PicoDkek -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $Work 'bad') -SharePassword $TooShort, $Two -Confirm:$false -Verbose -Debug -ErrorAction Continue }
        $t | Should -Match 'password'
        Assert-NoSecret $t 'New-PicoDkek (short password)'
        $t = Invoke-Captured { New-PicoDkek -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $Work 'shares') -SharePassword $One, $Two -Confirm:$false -Verbose -Debug | Out-String }
        $t | Should -Match '[0-9a-f]{16}'
        Assert-NoSecret $t 'New-PicoDkek'
        foreach ($f in Get-ChildItem (Join-Path $Work 'shares')) { Assert-NoSecret ([IO.File]::ReadAllText($f.FullName)) "share file $($f.Name)" }
    }

    It 'Import-PicoDkek with a wrong password and with the right ones' {
        $files = (Get-ChildItem (Join-Path $Work 'shares') -Filter *.dkekshare | Sort-Object Name).FullName
        $t = Invoke-Captured { Import-PicoDkek -Path $files -SharePassword $Wrong, $Two -Confirm:$false -Verbose -Debug -ErrorAction Continue }
        $t | Should -Match 'password'
        Assert-NoSecret $t 'Import-PicoDkek (wrong password)'
        $t = Invoke-Captured { Import-PicoDkek -Path $files -SharePassword $One, $Two -Confirm:$false -Verbose -Debug -ErrorAction Continue | Out-String }
        Assert-NoSecret $t 'Import-PicoDkek'
    }

    It 'Update-PicoDkekShare with a wrong password and with the right one' {
        $file = (Get-ChildItem (Join-Path $Work 'shares') -Filter *.dkekshare | Sort-Object Name)[0].FullName
        $t = Invoke-Captured { Update-PicoDkekShare -Path $file -SharePassword $Wrong -NewSharePassword $NewPass -OutputDirectory (Join-Path $Work 'new1') -Confirm:$false -Verbose -Debug -ErrorAction Continue }
        $t | Should -Match 'password'
        Assert-NoSecret $t 'Update-PicoDkekShare (wrong password)'
        $t = Invoke-Captured { Update-PicoDkekShare -Path $file -SharePassword $One -NewSharePassword $NewPass -OutputDirectory (Join-Path $Work 'new2') -Confirm:$false -Verbose -Debug -ErrorAction Continue | Out-String }
        Assert-NoSecret $t 'Update-PicoDkekShare'
    }

    It 'leaves no secret in a temporary file' {
        # Only the canaries: the test PIN is the one every test of the machine uses. Only what was written
        # since this file began, and not the files this test wrote on purpose (share files, transcripts).
        $canaries = $Secrets | Where-Object { $_ -like 'Leak-Canary-*' }
        $recent = Get-ChildItem ([IO.Path]::GetTempPath()) -File -Recurse -Depth 2 -ErrorAction Ignore |
            Where-Object { $_.LastWriteTime -gt $Started -and $_.Length -lt 256KB -and $_.FullName -notlike "$($Work.FullName)*" }
        foreach ($f in $recent) {
            $text = try { [IO.File]::ReadAllText($f.FullName) } catch { $null }
            if (-not $text) { continue }
            foreach ($c in $canaries) { foreach ($e in Get-Encodings $c) { if ($text.Contains($e, [StringComparison]::OrdinalIgnoreCase)) { throw "temporary file $($f.FullName) holds '$c'." } } }
        }
    }
}
