# Throwaway SoftHSM2 tokens for tests and the demo. SoftHSM2 reads SOFTHSM2_CONF when the
# module is initialised in a process (and .NET does not pass in-process environment changes
# to native code), so a configuration must be in the environment before the pwsh process that
# loads the module starts: callers set $env:SOFTHSM2_CONF and then start a child process.

$script:SoftHsmModule = @('/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/local/lib/softhsm/libsofthsm2.so') |
    Where-Object { Test-Path $_ } | Select-Object -First 1

$script:TestPin = '648219'
$script:TestSoPin = '3537363231383830'

function Get-SoftHsmModulePath {
    if (-not $script:SoftHsmModule) { throw 'SoftHSM2 is not installed (apt-get install softhsm2).' }
    $script:SoftHsmModule
}

function New-SoftHsmEnvironment {
    <# Creates a token directory and a config file; returns the config path. #>
    param(
        [string[]] $TokenLabel = @(),
        [string] $Root = (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-softhsm-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))
    )
    $tokens = Join-Path $Root 'tokens'
    New-Item -ItemType Directory -Force $tokens | Out-Null
    $conf = Join-Path $Root 'softhsm2.conf'
    @"
directories.tokendir = $tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
"@ | Set-Content -Path $conf -Encoding ascii
    foreach ($label in $TokenLabel) { Add-SoftHsmToken -ConfigPath $conf -Label $label }
    $conf
}

function Add-SoftHsmToken {
    param([Parameter(Mandatory)] [string] $ConfigPath, [Parameter(Mandatory)] [string] $Label,
          [string] $Pin = $script:TestPin, [string] $SoPin = $script:TestSoPin)
    $old = $env:SOFTHSM2_CONF
    try {
        $env:SOFTHSM2_CONF = $ConfigPath
        $outText = & softhsm2-util --init-token --free --label $Label --pin $Pin --so-pin $SoPin 2>&1
        if ($LASTEXITCODE -ne 0) { throw "softhsm2-util --init-token failed: $outText" }
    }
    finally { $env:SOFTHSM2_CONF = $old }
}

function Remove-SoftHsmEnvironment {
    param([Parameter(Mandatory)] [string] $ConfigPath)
    $dir = Split-Path $ConfigPath
    if ($dir -like '*picohsm-*' -and (Test-Path $dir)) { Remove-Item $dir -Recurse -Force }
}

function Clear-SoftHsmToken {
    <# Deletes every object on a SoftHSM2 token with OpenSC's pkcs11-tool (a wipe, outside the module under test). #>
    param([string] $Token)
    $list = & pkcs11-tool --module (Get-SoftHsmModulePath) --token-label $Token --login --pin $script:TestPin --list-objects 2>$null
    $type = $null
    foreach ($line in $list) {
        if ($line -match '^(Private Key|Public Key|Secret Key|Certificate|Data) [Oo]bject') {
            $type = @{ 'Private Key' = 'privkey'; 'Public Key' = 'pubkey'; 'Secret Key' = 'secrkey'; 'Certificate' = 'cert'; 'Data' = 'data' }[$Matches[1]]
        }
        elseif ($line -match '^\s+ID:\s+([0-9a-f]+)' -and $type -and $type -ne 'data') {
            & pkcs11-tool --module (Get-SoftHsmModulePath) --token-label $Token --login --pin $script:TestPin --delete-object --type $type --id $Matches[1] 2>&1 | Out-Null
        }
        elseif ($line -match "^\s+label:\s+'(.*)'" -and $type -eq 'data') {
            # Data objects have no CKA_ID: delete them by label.
            & pkcs11-tool --module (Get-SoftHsmModulePath) --token-label $Token --login --pin $script:TestPin --delete-object --type data --label $Matches[1] 2>&1 | Out-Null
        }
    }
}

function Get-TestPin { ConvertTo-SecureString $script:TestPin -AsPlainText -Force }
function Get-TestSoPin { $script:TestSoPin }


function Get-PwshCommand {
    <#
    The command line that starts a fresh pwsh like this one. Run as a dotnet tool, this process
    is 'dotnet pwsh.dll', so the process path alone would start dotnet, not PowerShell.
    #>
    $self = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($self) -eq 'dotnet') { return @($self, (Join-Path $PSHOME 'pwsh.dll')) }
    @($self)
}

function Invoke-FreshPwsh {
    <# Runs a script in a new, non-interactive pwsh; returns its output lines and exit code. #>
    param([Parameter(Mandatory)] [string] $Command, [hashtable] $Environment = @{})
    $cmd = Get-PwshCommand
    $saved = @{}
    foreach ($k in $Environment.Keys) { $saved[$k] = [Environment]::GetEnvironmentVariable($k); [Environment]::SetEnvironmentVariable($k, $Environment[$k]) }
    try {
        $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($Command))
        $lines = & $cmd[0] @($cmd | Select-Object -Skip 1) -NoProfile -NonInteractive -EncodedCommand $encoded 2>&1 | ForEach-Object { "$_" }
        [pscustomobject]@{ Output = @($lines); ExitCode = $LASTEXITCODE }
    }
    finally {
        foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) }
    }
}

# ---- PC/SC and the card simulator -------------------------------------------------------------

$script:RepoRoot = Resolve-Path (Join-Path $PSScriptRoot '../..')

function Get-OpenScModulePath {
    @('/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so', '/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so', '/usr/lib64/opensc-pkcs11.so', '/usr/lib/opensc-pkcs11.so') |
        Where-Object { Test-Path $_ } | Select-Object -First 1
}

function Get-TestVectorsFolder {
    <# The repository's firmware vectors (tests/vectors, see its MANIFEST.md); PICOHSM_VECTORS names another copy. #>
    $dir = if ($env:PICOHSM_VECTORS) { $env:PICOHSM_VECTORS } else { Join-Path $script:RepoRoot 'tests/vectors' }
    if (-not (Test-Path (Join-Path $dir 'MANIFEST.md'))) { throw "The test vectors are missing: no MANIFEST.md in $dir." }
    $dir
}

function Start-PcscDaemon {
    <# Starts pcscd (with the vpcd reader) unless one runs; returns the pid file, non-empty only when we started it. #>
    $pidFile = Join-Path ([IO.Path]::GetTempPath()) ("picohsm-pcscd-" + [guid]::NewGuid().ToString('n').Substring(0, 8) + '.pid')
    $o = & bash (Join-Path $script:RepoRoot 'tests/pcsc/start-pcscd.sh') $pidFile 2>&1
    if ($LASTEXITCODE -ne 0) { throw "pcscd did not start: $o" }
    $pidFile
}

function Stop-PcscDaemon {
    param([string] $PidFile)
    if ($PidFile -and (Test-Path $PidFile)) {
        $p = [int](Get-Content $PidFile)
        Stop-Process -Id $p -ErrorAction Ignore
        # Wait until it is gone, so the next test file's Start-PcscDaemon does not find it shutting down.
        Wait-Process -Id $p -Timeout 20 -ErrorAction Ignore
        if (Get-Process -Id $p -ErrorAction Ignore) { Stop-Process -Id $p -Force -ErrorAction Ignore; Wait-Process -Id $p -Timeout 5 -ErrorAction Ignore }
        Remove-Item $PidFile -ErrorAction Ignore
    }
}

function Start-CardSimulator {
    <# Starts the SmartCard-HSM simulator as the vpcd card on a port; waits until it is connected. #>
    param([int] $Port = 35963, [string[]] $Arguments = @('--blank'))
    $dll = Join-Path $script:RepoRoot 'out/CardSimulator/CardSimulator.dll'
    if (-not (Test-Path $dll)) { throw "The card simulator is not built ($dll): run ./build.ps1 -Task Build." }
    $log = Join-Path ([IO.Path]::GetTempPath()) ("picohsm-sim-$Port-" + [guid]::NewGuid().ToString('n').Substring(0, 6) + '.log')
    $p = Start-Process -FilePath (Get-Command dotnet).Source -ArgumentList (@($dll, '--vpcd', "127.0.0.1:$Port") + $Arguments) -RedirectStandardOutput $log -RedirectStandardError "$log.err" -PassThru
    $deadline = [DateTime]::UtcNow.AddSeconds(60)
    while ([DateTime]::UtcNow -lt $deadline) {
        if ((Test-Path $log) -and (Select-String -Path $log -Pattern '^connected' -Quiet)) { break }
        if ($p.HasExited) { throw "The card simulator exited: $(Get-Content -Raw "$log.err" -ErrorAction Ignore)" }
        Start-Sleep -Milliseconds 200
    }
    if (-not (Select-String -Path $log -Pattern '^connected' -Quiet)) { $p | Stop-Process -ErrorAction Ignore; throw "The card simulator did not connect to vpcd on port $Port within 60 s." }
    # pcscd polls the reader; give it a moment to see the card.
    $reader = if ($Port -eq 35963) { 'Virtual PCD 00 00' } else { 'Virtual PCD 00 01' }
    $deadline = [DateTime]::UtcNow.AddSeconds(20)
    do { Start-Sleep -Milliseconds 300; $seen = (& opensc-tool -l 2>$null) -match [regex]::Escape($reader) -and (& opensc-tool -l 2>$null | Select-String -SimpleMatch $reader | Select-String 'Yes' -Quiet) }
    until ($seen -or [DateTime]::UtcNow -gt $deadline)
    if (-not $seen) { $p | Stop-Process -ErrorAction Ignore; throw "pcscd did not see the simulated card in '$reader' within 20 s (see $log)." }
    [pscustomobject]@{ Process = $p; Log = $log; Port = $Port; Reader = $reader }
}

function Stop-CardSimulator {
    param($Simulator)
    if ($Simulator) { $Simulator.Process | Stop-Process -ErrorAction Ignore; $Simulator.Process.WaitForExit(5000) | Out-Null }
}

Export-ModuleMember -Function *-*
