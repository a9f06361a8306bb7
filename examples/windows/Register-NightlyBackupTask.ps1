#Requires -Version 7.4
<#
.SYNOPSIS
    Windows: saves the PIN as a DPAPI-protected credential and registers a Task Scheduler task
    that runs examples/Invoke-NightlyBackup.ps1 every night as the current user.
.DESCRIPTION
    Export-Clixml encrypts the credential's password with DPAPI for this user on this machine:
    only a task running as the same account on the same machine can read it, which is why the
    task runs as the user who ran this script. (On Linux Export-Clixml does not encrypt; use the
    systemd unit in examples/systemd instead.) Task Scheduler shows the script's exit code as
    "Last Run Result": 0 OK, 2 a key cannot be exported, 3 a backup failed its restore test,
    1 any other error; the log file gets one line per run.

    -TokenLabel names a PKCS#11 token; -Reader names the PC/SC reader of a Pico HSM /
    SmartCard-HSM (Windows' smart card service, no PKCS#11 module needed). Give one.
.EXAMPLE
    .\Register-NightlyBackupTask.ps1 -TokenLabel ca-hsm -BackupRoot D:\hsm-backup
.EXAMPLE
    .\Register-NightlyBackupTask.ps1 -Reader 'Nitrokey HSM 0' -BackupRoot D:\hsm-backup
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [string] $TokenLabel,
    [string] $Reader,
    [Parameter(Mandatory)] [string] $BackupRoot,
    [string] $CredentialPath = (Join-Path $env:LOCALAPPDATA 'PicoHsm\hsm-pin.xml'),
    [string] $LogPath = (Join-Path $env:LOCALAPPDATA 'PicoHsm\backup.log'),
    [string] $At = '02:30',
    [pscredential] $Pin,
    [string] $TaskName = 'PicoHsm nightly backup'
)
$ErrorActionPreference = 'Stop'
if ([bool]$TokenLabel -eq [bool]$Reader) { throw 'Give one of -TokenLabel (a PKCS#11 token) and -Reader (a Pico HSM / SmartCard-HSM reader).' }
$device = if ($Reader) { "-Reader `"$Reader`"" } else { "-TokenLabel `"$TokenLabel`"" }
if (-not $Pin) { $Pin = Get-Credential -UserName 'hsm' -Message "User PIN of '$TokenLabel$Reader'" }
$script = Join-Path $PSScriptRoot '..\Invoke-NightlyBackup.ps1'
$arguments = "-NoProfile -NonInteractive -File `"$script`" $device -BackupRoot `"$BackupRoot`" -PinFrom Clixml -CredentialPath `"$CredentialPath`" -LogPath `"$LogPath`""
if ($PSCmdlet.ShouldProcess($CredentialPath, 'Save the PIN as a DPAPI-protected credential')) {
    New-Item -ItemType Directory -Force (Split-Path $CredentialPath) | Out-Null
    $Pin | Export-Clixml -LiteralPath $CredentialPath
}
if ($PSCmdlet.ShouldProcess($TaskName, "Register a daily task at $At")) {
    $action = New-ScheduledTaskAction -Execute 'pwsh.exe' -Argument $arguments
    $trigger = New-ScheduledTaskTrigger -Daily -At $At
    $settings = New-ScheduledTaskSettingsSet -StartWhenAvailable -ExecutionTimeLimit (New-TimeSpan -Hours 2)
    Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger -Settings $settings -Description 'Backs up every HSM key wrapped under the DKEK (PicoHsm).' -Force | Out-Null
}
[pscustomobject]@{ TaskName = $TaskName; Arguments = $arguments; CredentialPath = $CredentialPath }
