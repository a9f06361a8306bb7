# Issue 10, "Load and concurrency", the card path under contention: a second PC/SC client (OpenSC's
# pkcs11-tool logging in and listing every object, in a loop) works on the same card while the module
# backs the card up and restores it. Each of the module's card operations runs in a PC/SC transaction,
# so the other client's commands (its SELECTs and PIN VERIFYs) never land between a WRAP or UNWRAP and
# the file writes that belong to it: every backup file is whole and every restored key complete.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:Work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-cardload-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))
    $script:OpenSc = Get-OpenScModulePath
    $script:PcscdPid = Start-PcscDaemon
    $script:Sim = Start-CardSimulator -Port 35963 -Arguments '--blank'
    $script:SoPin = ConvertTo-SecureString '3537363231383830' -AsPlainText -Force
    $script:KeyCount = 8

    Disconnect-PicoHsm -All
    Initialize-PicoHsm -Reader $Sim.Reader -SoPin $SoPin -Pin $Pin -DkekShareCount 1 -Confirm:$false -WarningAction SilentlyContinue | Out-Null
    $script:s = Connect-PicoHsm -ModulePath $OpenSc -Pin $Pin
    $script:Pw = New-TestPasswords 2 -Prefix cardload
    $script:Dk = New-PicoDkek -Session $s -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $Work 'shares') -SharePassword $Pw -Confirm:$false
    for ($i = 0; $i -lt $KeyCount; $i++) {
        # Keys are made on the card by its own tools (the module backs them up; it does not generate there).
        $o = & timeout 600 pkcs11-tool --module $OpenSc --login --pin $PinText --keypairgen --key-type EC:prime256v1 --id ('c{0:x1}' -f $i) --label "load-$i" 2>&1
        if ($LASTEXITCODE -ne 0) { throw "pkcs11-tool --keypairgen failed: $o" }
    }
    if (@(Get-PicoKey -Session $s).Count -ne $KeyCount) { throw "expected $KeyCount keys on the card" }

    function Start-Contender {
        # OpenSC's pkcs11-tool in a loop until the stop file appears; each run's exit code is logged.
        param([string] $StopFile, [string] $Log)
        $script:ContenderScript = Join-Path $script:Work 'contender.sh'
        @"
#!/bin/bash
while [ ! -e '$StopFile' ]; do
  pkcs11-tool --module '$OpenSc' --login --pin '$PinText' --list-objects >/dev/null 2>&1
  echo `$? >> '$Log'
done
"@ | Set-Content -Path $ContenderScript -Encoding ascii
        Start-Process -FilePath bash -ArgumentList $ContenderScript -PassThru
    }

    function Invoke-WhileContended([scriptblock] $Action, [string] $Name) {
        $stop = Join-Path $script:Work "$Name.stop"
        $log = Join-Path $script:Work "$Name.log"
        $p = Start-Contender -StopFile $stop -Log $log
        try {
            # Let the other client get going before the module starts.
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            while (-not (Test-Path $log) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
            & $Action
        }
        finally {
            New-Item -ItemType File $stop -Force | Out-Null
            $p.WaitForExit(120000) | Out-Null
        }
        @(Get-Content $log -ErrorAction Ignore)
    }
}
AfterAll {
    Disconnect-PicoHsm -All
    Stop-CardSimulator $Sim
    Stop-PcscDaemon $PcscdPid
    Remove-Item $Work -Recurse -Force -ErrorAction Ignore
}

Describe 'The card path with a second PC/SC client working on the card' {
    It 'backs the card up while pkcs11-tool logs in and lists in a loop: every file whole and valid offline' {
        $script:BackupRuns = Invoke-WhileContended -Name backup -Action {
            $script:Set = Backup-PicoHsm -Session $s -Directory (Join-Path $Work 'backup') -Confirm:$false
        }
        $BackupRuns.Count | Should -BeGreaterThan 0 -Because 'the other client must have run during the backup'
        @($BackupRuns | Where-Object { $_ -ne '0' }).Count | Should -Be 0 -Because 'the module''s transactions must not break the other client either'
        $Set.KeyCount | Should -Be $KeyCount
        $r = @(Get-PicoKeyBackup -Path $Set.Directory | Test-PicoKeyBackup -SharePath $Dk.ShareFiles -SharePassword $Pw)
        $r.Count | Should -Be $KeyCount
        $r | ForEach-Object { $_.Valid | Should -BeTrue -Because "$($_.Path): $($_.Problems -join '; ')" }
    }

    It 'restores the card while pkcs11-tool logs in and lists in a loop: every key complete, none doubled' {
        $prints = @{}; Get-PicoKey -Session $s | ForEach-Object { $prints[$_.Id] = $_.PublicKeyFingerprint }
        Get-PicoKey -Session $s | Remove-PicoKey -Session $s -Confirm:$false
        @(Get-PicoKey -Session $s).Count | Should -Be 0
        $o = & pkcs15-tool --reader 0 -D 2>&1
        @($o | Select-String '^Private EC Key \[load-').Count | Should -Be 0 -Because ("Remove-PicoKey leaves no key description: " + ($o -join "`n"))
        $runs = Invoke-WhileContended -Name restore -Action {
            $script:Restored = @(Restore-PicoHsm -Session $s -Directory $Set.Directory -Confirm:$false)
        }
        $runs.Count | Should -BeGreaterThan 0
        @($runs | Where-Object { $_ -ne '0' }).Count | Should -Be 0
        $Restored.Count | Should -Be $KeyCount
        $keys = @(Get-PicoKey -Session $s)
        $keys.Count | Should -Be $KeyCount
        @($keys | Where-Object IsOrphan).Count | Should -Be 0
        @($keys.Id | Select-Object -Unique).Count | Should -Be $KeyCount
        foreach ($k in $keys) { $k.PublicKeyFingerprint | Should -Be $prints[$k.Id] }
        # OpenSC's own view agrees: one private key per id, each with its label (the device's own key at reference 0, ESPICOHSMTR, is not one of them).
        $o = & pkcs15-tool --reader 0 -D 2>&1
        @($o | Select-String '^Private EC Key \[load-').Count | Should -Be $KeyCount -Because ($o -join "`n")
    }
}
