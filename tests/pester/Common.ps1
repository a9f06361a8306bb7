# Dot-sourced by every test file: imports the module under test and the test helpers.
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot 'TestEnvironment.psm1') -Force
$script:ModuleUnderTest = if ($env:PICOHSM_TEST_MODULE) { $env:PICOHSM_TEST_MODULE } else { Join-Path $PSScriptRoot '../../out/PicoHsm/PicoHsm.psd1' }
Import-Module $script:ModuleUnderTest -Force
$script:SoftHsm = Get-SoftHsmModulePath
$script:Pin = Get-TestPin
$script:PinText = '648219'

function New-TestKey {
    <# Creates a key on a SoftHSM2 token with OpenSC's pkcs11-tool (outside this module). #>
    param([string] $Token, [string] $KeyType, [string] $Id, [string] $Label, [switch] $Extractable)
    $a = @('--module', $script:SoftHsm, '--token-label', $Token, '--login', '--pin', $script:PinText, '--id', $Id, '--label', $Label)
    if ($KeyType -like 'AES:*' -or $KeyType -like 'GENERIC:*') { $a += @('--keygen', '--key-type', $KeyType) } else { $a += @('--keypairgen', '--key-type', $KeyType) }
    if ($Extractable) { $a += '--extractable' }
    $o = & pkcs11-tool @a 2>&1
    if ($LASTEXITCODE -ne 0) { throw "pkcs11-tool failed: $o" }
}

function Remove-TestObjects {
    param([string] $Token)
    Clear-SoftHsmToken -Token $Token
}

function New-TestPasswords {
    <# One distinct, policy-compliant password per custodian. #>
    param([int] $Count, [string] $Prefix = 'custodian')
    1..$Count | ForEach-Object { ConvertTo-SecureString "$Prefix-password-$_" -AsPlainText -Force }
}

function Connect-TestToken {
    param([string] $Token)
    Connect-PicoHsm -ModulePath $script:SoftHsm -TokenLabel $Token -Pin $script:Pin
}

function Get-DkekKcvFromFile {
    <# The KCV in a share file's clear header, read through the module's own reader. #>
    param([string] $Path)
    [PicoHsm.Dkek.DkekShareFile]::Read([IO.File]::ReadAllBytes($Path), $Path).KcvHex
}
