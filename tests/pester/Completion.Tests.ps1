# Tab completion as a user presses Tab: TabExpansion2 on a command line, in this runspace.
BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    Disconnect-PicoHsm -All
    foreach ($t in 'pico-test-e', 'pico-test-f') { Remove-TestObjects -Token $t }
    $script:E = Connect-TestToken -Token 'pico-test-e'
    New-PicoKey -Session $E -KeyType Ec -Curve P-256 -Id 0e01 -Label 'e key with spaces' | Out-Null
    New-PicoKey -Session $E -KeyType Ec -Curve P-256 -Id 0e02 -Label 'e-plain' | Out-Null
    New-PicoKey -Session $E -KeyType Ec -Curve P-256 -Id 0e03 -Label 'e-locked' -NonExportable | Out-Null
    $script:F = Connect-TestToken -Token 'pico-test-f'   # the default session
    New-PicoKey -Session $F -KeyType Ec -Curve P-256 -Id 0f01 -Label 'f-only' | Out-Null
    function Complete([string] $Line) {
        # Completers see the variables of the scope TabExpansion2 runs in: make $e global for it.
        $global:PicoCompletionSession = $E
        (TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches.CompletionText
    }
}
AfterAll {
    Remove-Variable -Scope Global -Name PicoCompletionSession -ErrorAction Ignore
    Disconnect-PicoHsm -All
    foreach ($t in 'pico-test-e', 'pico-test-f') { Remove-TestObjects -Token $t }
}

Describe 'Key completion' {
    It 'honours -Session: the labels of that session, not the default''s' {
        $c = Complete 'Get-PicoKey -Session $PicoCompletionSession -Label '
        $c | Should -Contain 'e-plain'
        $c | Should -Not -Contain 'f-only'
    }

    It 'honours -Session for ids too' {
        $c = Complete 'Get-PicoKey -Session $PicoCompletionSession -Id '
        $c | Should -Contain '0e01'
        $c | Should -Not -Contain '0f01'
    }

    It 'offers nothing rather than the default session''s keys when -Session cannot be read' {
        Complete 'Get-PicoKey -Session $NoSuchVariable -Label ' | Should -Not -Contain 'f-only'
    }

    It 'uses the default session without -Session' {
        Complete 'Get-PicoKey -Label ' | Should -Be @('f-only')
    }

    It 'quotes only values that need quotes' {
        $c = Complete 'Get-PicoKey -Session $PicoCompletionSession -Label '
        $c | Should -Contain 'e-plain'
        $c | Should -Contain "'e key with spaces'"
        $c | Should -Not -Contain "'e-plain'"
        Complete 'Get-PicoKey -Session $PicoCompletionSession -Label "e-p' | Should -Be @('"e-plain"')
    }

    It 'Export-PicoWrappedKey -Id offers only keys that can be exported' {
        $c = Complete 'Export-PicoWrappedKey -Session $PicoCompletionSession -Id '
        $c | Should -Contain '0e01'
        $c | Should -Not -Contain '0e03'
        Complete 'Get-PicoKey -Session $PicoCompletionSession -Id ' | Should -Contain '0e03'
    }
}

Describe 'Token and module completion' {
    It '-TokenLabel lists the tokens of -ModulePath, unquoted' {
        $c = Complete "Connect-PicoHsm -ModulePath $SoftHsm -TokenLabel pico-test-"
        $c | Should -Contain 'pico-test-e'
        $c | Should -Not -Contain "'pico-test-e'"
    }

    It '-TokenLabel offers nothing when -ModulePath names no module' {
        Complete 'Connect-PicoHsm -ModulePath /nonexistent/libnothing.so -TokenLabel pico-test-' | Should -BeNullOrEmpty
    }

    It '-ModulePath offers the SoftHSM2 module without quotes' {
        Complete 'Get-PicoHsmToken -ModulePath softhsm' | Should -Contain $SoftHsm
    }
}
