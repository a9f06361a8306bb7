#Requires -Version 7.4
<#
.SYNOPSIS
    A compliance suite for Pester 5+: every private key on the token has a backup that tests
    valid under the expected DKEK, and the last recovery drill is recent.
    Both device families: -Session is a PKCS#11 token's or a Pico HSM / SmartCard-HSM's session.
.EXAMPLE
    $c = New-PesterContainer -Path ./Compliance.Tests.ps1 -Data @{ Session = $s; BackupRoot = '/srv/hsm-backup'; ExpectedKcv = 'd5c1a339cd295797'; DrillLog = '/srv/hsm-backup/drill.log' }
    Invoke-Pester -Container $c -Output Detailed
#>
param(
    [Parameter(Mandatory)] $Session,
    [Parameter(Mandatory)] [string] $BackupRoot,
    [Parameter(Mandatory)] [string] $ExpectedKcv,
    # One line per drill, starting with its date (yyyy-MM-dd), as about_PicoHsm_DisasterRecovery describes.
    [Parameter(Mandatory)] [string] $DrillLog,
    [int] $MaxDrillAgeDays = 92
)

BeforeAll {
    $script:Keys = @(Get-PicoKey -Session $Session | Where-Object Class -eq 'PrivateKey')
    $script:Latest = Get-ChildItem $BackupRoot -Directory | Where-Object { Test-Path (Join-Path $_.FullName 'manifest.json') } |
        Sort-Object Name | Select-Object -Last 1
    $script:Backups = if ($Latest) { @(Get-PicoKeyBackup (Join-Path $Latest.FullName '*') -ErrorAction SilentlyContinue) } else { @() }
}

Describe 'The HSM''s keys are recoverable' {
    It 'the token holds the expected DKEK' {
        (Get-PicoDkek -Session $Session | Where-Object Present).KeyCheckValue | Should -Contain $ExpectedKcv
    }

    It 'there is a backup' {
        $Latest | Should -Not -BeNullOrEmpty -Because "$BackupRoot should hold a Backup-PicoHsm folder"
    }

    It 'every private key has a backup in the latest set' {
        foreach ($k in $Keys) { $Backups.Id | Should -Contain $k.Id -Because "key $($k.Id) '$($k.Label)'" }
    }

    It 'every backup is wrapped under the expected DKEK and restores' {
        foreach ($b in $Backups) { $b.Kcv | Should -Be $ExpectedKcv -Because $b.Path }
        $Backups | Test-PicoKeyBackup -Session $Session -RestoreTest -Quiet | Should -Not -Contain $false
    }

    It "the last recovery drill is at most $MaxDrillAgeDays days old" {
        Test-Path $DrillLog | Should -BeTrue -Because 'every drill appends a line to the drill log'
        $last = Get-Content $DrillLog | Where-Object { $_ -match '^\d{4}-\d{2}-\d{2}' } | ForEach-Object { [datetime]::ParseExact($_.Substring(0, 10), 'yyyy-MM-dd', $null) } | Sort-Object | Select-Object -Last 1
        $last | Should -Not -BeNullOrEmpty
        ((Get-Date) - $last).TotalDays | Should -BeLessOrEqual $MaxDrillAgeDays
    }
}
