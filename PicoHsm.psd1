@{
    RootModule           = 'bin/PicoHsm.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '5b0d6a53-6f1e-4a58-9d9c-2f7a3c1e8b41'
    Author               = 'PicoHsm developers'
    CompanyName          = 'PicoHsm'
    Copyright            = '(c) PicoHsm developers. All rights reserved.'
    Description          = 'Back up and restore Pico HSM, SmartCard-HSM and PKCS#11 token keys wrapped under a DKEK, so private keys never leave a device in plaintext.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('PicoHsm.format.ps1xml')
    CmdletsToExport      = @(
        'Connect-PicoHsm'
        'Disconnect-PicoHsm'
        'Get-PicoHsmSession'
        'Get-PicoHsmToken'
        'Get-PicoKey'
        'New-PicoKey'
        'New-PicoDkek'
        'Import-PicoDkek'
        'Get-PicoDkek'
        'Update-PicoDkekShare'
        'Convert-PicoKeyBackup'
        'Export-PicoWrappedKey'
        'Import-PicoWrappedKey'
        'Get-PicoKeyBackup'
        'Test-PicoKeyBackup'
        'Backup-PicoHsm'
        'Restore-PicoHsm'
        'Initialize-PicoHsm'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('HSM', 'PKCS11', 'DKEK', 'SmartCard-HSM', 'PicoHSM', 'Backup')
            ProjectUri = ''
        }
    }
}
