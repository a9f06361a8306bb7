# Convert-PicoKeyBackup warns about share files others can read, as Import-PicoDkek and
# Test-PicoKeyBackup -SharePath do (old and new shares alike). SoftHSM2 only: no card lock needed.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:Work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-convshares-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))
    Remove-TestObjects -Token 'pico-test-d'
    $script:s = Connect-TestToken 'pico-test-d'
    $script:oldPw = New-TestPasswords 2 -Prefix convold
    $script:newPw = New-TestPasswords 2 -Prefix convnew
    $script:old = New-PicoDkek -Session $s -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $Work 'old') -SharePassword $oldPw -Confirm:$false
    $script:new = New-PicoDkek -NoImport -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $Work 'new') -SharePassword $newPw -Confirm:$false
    New-PicoKey -Session $s -KeyType Ec -Curve 'P-256' -Id '41' -Label 'conv-ec' -Confirm:$false | Out-Null
    $script:pkb = @(Get-PicoKey -Session $s | Export-PicoWrappedKey -Session $s -Directory (Join-Path $Work 'pkb'))
    function Invoke-Convert([string] $To) {
        $w = $null
        $r = @(Convert-PicoKeyBackup -Path $pkb.Path -SharePath $old.ShareFiles -SharePassword $oldPw -NewSharePath $new.ShareFiles -NewSharePassword $newPw `
                -OutputDirectory (Join-Path $Work $To) -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue)
        [pscustomobject]@{ Result = $r; Warnings = @($w | ForEach-Object { "$_" }) }
    }
}
AfterAll {
    Disconnect-PicoHsm -All
    Remove-Item -Recurse -Force $Work -ErrorAction SilentlyContinue
}

Describe 'Convert-PicoKeyBackup and share files others can read' {
    It 'gives no permission warning for owner-only shares (only the air-gap warning)' {
        $c = Invoke-Convert 'out-owner-only'
        $c.Result.Count | Should -Be 1
        $c.Result[0].Passed | Should -BeTrue
        @($c.Warnings | Where-Object { $_ -like '*can be read by users other than its owner*' }).Count | Should -Be 0
        @($c.Warnings | Where-Object { $_ -like '*air-gapped host*' }).Count | Should -Be 1
    }

    It 'warns once for each old or new share file others can read (chmod 644), naming it and the fix' -Skip:(-not $IsLinux) {
        & chmod 644 $old.ShareFiles[0] $new.ShareFiles[1]
        try {
            $c = Invoke-Convert 'out-open'
        }
        finally {
            & chmod 600 $old.ShareFiles[0] $new.ShareFiles[1]
        }
        $c.Result[0].Passed | Should -BeTrue
        $open = @($c.Warnings | Where-Object { $_ -like '*can be read by users other than its owner*' })
        $open.Count | Should -Be 2
        $open[0] | Should -BeLike "*$(Split-Path -Leaf $old.ShareFiles[0])*(mode 644)*chmod 600*"
        $open[1] | Should -BeLike "*$(Split-Path -Leaf $new.ShareFiles[1])*(mode 644)*chmod 600*"
    }
}
