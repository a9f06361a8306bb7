@{
    RootModule           = 'PicoHsm.psm1'  # loads bin/Core or bin/Desktop by $PSEdition
    ModuleVersion        = '0.1.0'
    GUID                 = '5b0d6a53-6f1e-4a58-9d9c-2f7a3c1e8b41'
    Author               = 'PicoHsm contributors'
    CompanyName          = 'PicoHsm contributors'
    Copyright            = '(c) PicoHsm contributors. MIT License.'
    Description          = 'Back up and restore Pico HSM, SmartCard-HSM and PKCS#11 token keys wrapped under a DKEK, so private keys never leave a device in plaintext.'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FormatsToProcess     = @('PicoHsm.format.ps1xml')
    CmdletsToExport      = @(
        'Connect-PicoHsm'
        'Disconnect-PicoHsm'
        'Get-PicoHsmSession'
        'Get-PicoHsmToken'
        'Get-PicoKey'
        'New-PicoKey'
        'Remove-PicoKey'
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
            Tags         = @('HSM', 'PKCS11', 'DKEK', 'SmartCard-HSM', 'PicoHSM', 'NitrokeyHSM', 'SoftHSM', 'Backup', 'KeyManagement', 'Linux', 'Windows', 'MacOS', 'PSEdition_Core', 'PSEdition_Desktop')
            # No ProjectUri: the module has no public home yet (no repository is published); the
            # license is MIT (LICENSE in the package), whose text is at its SPDX page.
            LicenseUri   = 'https://spdx.org/licenses/MIT.html'
            ReleaseNotes = 'See CHANGELOG.md in the module folder.'
        }
    }
}
