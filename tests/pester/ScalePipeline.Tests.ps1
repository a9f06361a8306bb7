# Issue 9: piped restores and checks on a PKCS#11 token must not search the token once per file.
# SoftHSM2 reads every object of the token for each search, so a search per piped file makes a
# pipeline of n files cost n². Counted with OpenSC's pkcs11-spy in a fresh pwsh (the spy reads its
# settings from the process environment at load); never timed.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:Spy = '/usr/lib/x86_64-linux-gnu/pkcs11-spy.so'
    $script:Root = Join-Path ([IO.Path]::GetTempPath()) "picohsm-scalepipe-$([guid]::NewGuid().ToString('n').Substring(0, 8))"
    $script:Conf = New-SoftHsmEnvironment -TokenLabel 'scale-src', 'scale-a', 'scale-b' -Root (Join-Path $Root 'softhsm')
    $script:SpyLog = Join-Path $Root 'spy.log'
}
AfterAll {
    if ($Conf) { Remove-SoftHsmEnvironment -ConfigPath $Conf }
    if (Test-Path $Root) { Remove-Item $Root -Recurse -Force }
}

Describe 'Piped files on a PKCS#11 token' -Skip:(-not (Test-Path '/usr/lib/x86_64-linux-gnu/pkcs11-spy.so')) {
    It 'Import-PicoWrappedKey and Test-PicoKeyBackup -Session search the token as often for 6 piped files as for 2' {
        $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$ModuleUnderTest'
`$pin = ConvertTo-SecureString '$PinText' -AsPlainText -Force
`$pw = 1..2 | ForEach-Object { ConvertTo-SecureString "scale-pipe-password-`$_" -AsPlainText -Force }
`$src = Connect-PicoHsm -ModulePath '$SoftHsm' -TokenLabel scale-src -Pin `$pin
New-PicoDkek -Session `$src -ShareCount 2 -Threshold 2 -OutputDirectory '$Root/shares' -SharePassword `$pw -Confirm:`$false | Out-Null
1..6 | ForEach-Object { New-PicoKey -Session `$src -KeyType Aes -Size 256 -Id ('5c{0:x2}' -f `$_) -Label "scale`$_" -Confirm:`$false | Out-Null }
Get-PicoKey -Session `$src | Select-Object -First 2 | Export-PicoWrappedKey -Directory '$Root/two' | Out-Null
Get-PicoKey -Session `$src | Export-PicoWrappedKey -Directory '$Root/six' | Out-Null
`$shares = (Get-ChildItem '$Root/shares' -Filter *.dkekshare).FullName
function Count([scriptblock] `$body) {
    `$start = if (Test-Path '$SpyLog') { (Get-Item '$SpyLog').Length } else { 0 }
    & `$body
    `$f = [IO.File]::Open('$SpyLog', 'Open', 'Read', 'ReadWrite')
    try { `$null = `$f.Seek(`$start, 'Begin'); `$text = [IO.StreamReader]::new(`$f).ReadToEnd() } finally { `$f.Dispose() }
    ([regex]::Matches(`$text, '(?m)^\d+: C_FindObjectsInit\s*$')).Count
}
`$r = [ordered]@{}
foreach (`$t in 'a', 'b') {
    `$s = Connect-PicoHsm -ModulePath '$Spy' -TokenLabel "scale-`$t" -Pin `$pin
    Import-PicoDkek -Session `$s -Path `$shares -SharePassword `$pw -Confirm:`$false | Out-Null
    `$dir = if (`$t -eq 'a') { '$Root/two' } else { '$Root/six' }
    `$r["import-`$t"] = Count { `$script:restored = @(Get-ChildItem `$dir -Filter *.pkb | Import-PicoWrappedKey -Session `$s -Confirm:`$false) }
    `$r["restored-`$t"] = `$restored.Count
    `$r["test-`$t"] = Count { `$script:tested = @(Get-ChildItem `$dir -Filter *.pkb | Test-PicoKeyBackup -Session `$s) }
    `$r["passed-`$t"] = @(`$tested | Where-Object Passed).Count
    `$r["listed-`$t"] = @(Get-PicoKey -Session `$s).Count
}
'RESULT ' + (`$r | ConvertTo-Json -Compress)
"@
        $run = Invoke-FreshPwsh -Command $script -Environment @{ SOFTHSM2_CONF = $Conf; PKCS11SPY = $SoftHsm; PKCS11SPY_OUTPUT = $SpyLog }
        $line = $run.Output | Where-Object { $_ -like 'RESULT *' } | Select-Object -Last 1
        $line | Should -Not -BeNullOrEmpty -Because ($run.Output -join "`n")
        $r = $line.Substring(7) | ConvertFrom-Json
        $r.'restored-a' | Should -Be 2
        $r.'restored-b' | Should -Be 6
        $r.'listed-b' | Should -Be 6
        $r.'passed-a' | Should -Be 2
        $r.'passed-b' | Should -Be 6
        $r.'import-a' | Should -BeGreaterThan 0 -Because 'the spy logged no C_FindObjectsInit: the count proves nothing'
        # Was two searches per file more (the plan's and the restore's): 8 more for 4 files more.
        $r.'import-b' | Should -Be $r.'import-a'
        # Was one search per file more (the plan's).
        $r.'test-b' | Should -Be $r.'test-a'
    }
}
