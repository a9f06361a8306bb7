#Requires -Version 7.4
<#
.SYNOPSIS
    Nightly backup of every key of one token, for a scheduler: backs up, proves every file
    restores on the token, writes ONE log line, and exits with a code the scheduler shows.
.DESCRIPTION
    Exit codes: 0 all keys backed up and verified; 2 some key cannot be exported (not in any
    backup); 3 a backup file failed its restore test; 1 anything else (no PIN, no token,
    wrong PIN, disk full...). The log line is "<time> <result> <details>".

    Both device families: -TokenLabel names a PKCS#11 token (SoftHSM2, a network HSM, or a card
    through OpenSC with -ModulePath); -Reader names the PC/SC reader of a Pico HSM / SmartCard-HSM
    (through pcscd, no PKCS#11 module needed; `opensc-tool -l` lists the readers). Give one.

    -PinFrom says where the PIN comes from, never the command line:
      SystemdCredential  $env:CREDENTIALS_DIRECTORY/<CredentialName> (systemd LoadCredential=)
      Clixml             a PSCredential saved with Export-Clixml: on Windows DPAPI protects it
                         for that user on that machine (on Linux Export-Clixml does NOT encrypt)
      SecretManagement   Get-Secret <CredentialName> from a registered vault
.EXAMPLE
    pwsh -NoProfile -NonInteractive -File Invoke-NightlyBackup.ps1 -TokenLabel ca-hsm -BackupRoot /srv/hsm-backup -PinFrom SystemdCredential -LogPath /var/log/picohsm-backup.log
.EXAMPLE
    pwsh -NoProfile -NonInteractive -File Invoke-NightlyBackup.ps1 -Reader 'Nitrokey HSM 00 00' -BackupRoot /srv/hsm-backup -PinFrom SystemdCredential -LogPath /var/log/picohsm-backup.log
#>
[CmdletBinding()]
param(
    [string] $TokenLabel,
    [string] $Reader,
    [Parameter(Mandatory)] [string] $BackupRoot,
    [Parameter(Mandatory)] [ValidateSet('SystemdCredential', 'Clixml', 'SecretManagement')] [string] $PinFrom,
    [string] $CredentialName = 'hsm-pin',
    [string] $CredentialPath,
    [string] $ModulePath,
    [string] $LogPath,
    [string] $PicoHsmModule = 'PicoHsm'
)
# Without Stop a failing cmdlet only writes an error and the next line runs anyway.
$ErrorActionPreference = 'Stop'

function Write-RunLog([string] $Result, [string] $Details) {
    $line = '{0:yyyy-MM-ddTHH:mm:sszzz} {1} {2}' -f (Get-Date), $Result, $Details
    if ($LogPath) { Add-Content -Path $LogPath -Value $line }
    Write-Output $line
}

function Get-Pin {
    switch ($PinFrom) {
        'SystemdCredential' {
            if (-not $env:CREDENTIALS_DIRECTORY) { throw 'CREDENTIALS_DIRECTORY is not set: run from the systemd unit (LoadCredential=hsm-pin:...).' }
            $file = Join-Path $env:CREDENTIALS_DIRECTORY $CredentialName
            $text = (Get-Content -Raw -LiteralPath $file).TrimEnd("`r", "`n")
            $pin = ConvertTo-SecureString $text -AsPlainText -Force
            Remove-Variable text
            $pin
        }
        'Clixml' {
            if (-not $CredentialPath) { throw '-CredentialPath is required with -PinFrom Clixml.' }
            (Import-Clixml -LiteralPath $CredentialPath).Password
        }
        'SecretManagement' {
            Import-Module Microsoft.PowerShell.SecretManagement
            $s = Get-Secret -Name $CredentialName
            if ($s -is [pscredential]) { $s.Password } elseif ($s -is [securestring]) { $s } else { ConvertTo-SecureString "$s" -AsPlainText -Force }
        }
    }
}

$exit = 1
try {
    if (-not $TokenLabel -and -not $Reader) { throw 'Name the device: -TokenLabel (a PKCS#11 token) or -Reader (a Pico HSM / SmartCard-HSM reader).' }
    Import-Module $PicoHsmModule
    $connect = @{ Pin = (Get-Pin) }
    if ($TokenLabel) { $connect.TokenLabel = $TokenLabel }
    if ($Reader) { $connect.Reader = $Reader }
    if ($ModulePath) { $connect.ModulePath = $ModulePath }
    $session = Connect-PicoHsm @connect
    try {
        $dir = Join-Path $BackupRoot (Get-Date -Format 'yyyyMMdd-HHmmss')
        $set = Backup-PicoHsm -Session $session -Directory $dir -Confirm:$false -WarningAction SilentlyContinue
        $tests = @($set | Test-PicoKeyBackup -Session $session -RestoreTest)
        $failed = @($tests | Where-Object { -not $_.Passed })
        if ($failed) {
            $exit = 3
            Write-RunLog 'FAILED' "$($failed.Count) of $($tests.Count) backups in $dir failed the restore test: $(($failed | ForEach-Object { "$($_.Id) $($_.Problems -join ', ')" }) -join '; ')"
        }
        elseif (-not $set.Complete) {
            $exit = 2
            Write-RunLog 'INCOMPLETE' "$($set.KeyCount) keys in $dir (KCV $($set.Kcv)); not exportable: $($set.NotExported -join '; ')"
        }
        else {
            $exit = 0
            Write-RunLog 'OK' "$($set.KeyCount) keys backed up to $dir and restore-tested (KCV $($set.Kcv))"
        }
    }
    finally { Disconnect-PicoHsm -Session $session -WarningAction SilentlyContinue }
}
catch {
    $id = if ($_.FullyQualifiedErrorId) { ($_.FullyQualifiedErrorId -split ',')[0] } else { 'Error' }
    Write-RunLog 'ERROR' "${id}: $($_.Exception.Message -replace '\s+', ' ')"
    $exit = 1
}
exit $exit
