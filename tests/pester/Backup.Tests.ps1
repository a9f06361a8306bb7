BeforeAll {
    . (Join-Path $PSScriptRoot 'Common.ps1')
    $script:Work = New-Item -ItemType Directory (Join-Path ([IO.Path]::GetTempPath()) ("picohsm-backup-" + [guid]::NewGuid().ToString('n').Substring(0, 8)))
    'pico-test-f', 'pico-test-a' | ForEach-Object { Remove-TestObjects -Token $_ }
    $script:src = Connect-TestToken 'pico-test-f'
    $script:pw = New-TestPasswords 3 -Prefix backup
    $script:dkek = New-PicoDkek -Session $src -ShareCount 3 -Threshold 2 -OutputDirectory (Join-Path $Work 'shares') -SharePassword $pw -Confirm:$false
    $script:keySpecs = @(
        @{ Id = '11'; Label = 'rsa2048'; Type = 'Rsa'; Size = 2048 }
        @{ Id = '12'; Label = 'rsa3072'; Type = 'Rsa'; Size = 3072 }
        @{ Id = '13'; Label = 'rsa4096'; Type = 'Rsa'; Size = 4096 }
        @{ Id = '21'; Label = 'ec-p256'; Type = 'Ec'; Curve = 'P-256' }
        @{ Id = '22'; Label = 'ec-p384'; Type = 'Ec'; Curve = 'P-384' }
        @{ Id = '23'; Label = 'ec-p521'; Type = 'Ec'; Curve = 'P-521' }
        @{ Id = '31'; Label = 'aes128'; Type = 'Aes'; Size = 128 }
        @{ Id = '32'; Label = 'aes256'; Type = 'Aes'; Size = 256 }
    )
    foreach ($k in $keySpecs) {
        $p = @{ Session = $src; KeyType = $k.Type; Id = $k.Id; Label = $k.Label; Confirm = $false }
        if ($k.Size) { $p.Size = $k.Size }
        if ($k.Curve) { $p.Curve = $k.Curve }
        New-PicoKey @p | Out-Null
    }
    New-PicoKey -Session $src -KeyType Ec -Id '99' -Label 'locked-in' -NonExportable -Confirm:$false | Out-Null
    $script:originals = @{}
    Get-PicoKey -Session $src | ForEach-Object { $originals[$_.Id] = $_ }
    # The target token gets the same DKEK from two of the three shares.
    $script:dst = Connect-TestToken 'pico-test-a'
    $files = (Get-ChildItem (Join-Path $Work 'shares') | Sort-Object Name).FullName
    Import-PicoDkek -Session $dst -Path $files[0], $files[2] -SharePassword $pw[0], $pw[2] -Confirm:$false | Out-Null

    function Test-SignsLike {
        <# Signs with the token key through OpenSC and verifies with the original public key. #>
        param([string] $Token, [string] $Id, [PicoHsm.Keys.PicoKey] $Original)
        $msg = Join-Path $Work 'msg.bin'; $sig = Join-Path $Work 'sig.bin'
        # SoftHSM2 has no CKM_ECDSA_SHA256: for EC the host hashes and the token signs the hash.
        $data = [byte[]](1..64)
        $hash = [Security.Cryptography.SHA256]::HashData($data)
        [IO.File]::WriteAllBytes($msg, $(if ($Original.KeyType -eq 'Rsa') { $data } else { $hash }))
        $mech = if ($Original.KeyType -eq 'Rsa') { 'SHA256-RSA-PKCS' } else { 'ECDSA' }
        $o = & pkcs11-tool --module $SoftHsm --token-label $Token --login --pin $PinText --sign --id $Id -m $mech -i $msg -o $sig 2>&1
        if ($LASTEXITCODE -ne 0) { throw "sign failed: $o" }
        $s = [IO.File]::ReadAllBytes($sig)
        if ($Original.KeyType -eq 'Rsa') {
            $k = [Security.Cryptography.RSA]::Create(); $null = $k.ImportSubjectPublicKeyInfo($Original.PublicKeyInfo, [ref]0)
            $k.VerifyData([byte[]](1..64), $s, 'SHA256', [Security.Cryptography.RSASignaturePadding]::Pkcs1)
        }
        else {
            $k = [Security.Cryptography.ECDsa]::Create(); $null = $k.ImportSubjectPublicKeyInfo($Original.PublicKeyInfo, [ref]0)
            $k.VerifyHash($hash, $s, 'IeeeP1363FixedFieldConcatenation')
        }
    }
    function Write-Redigested {
        <# Writes a JSON file (.pkb, manifest) with its self-digest recomputed, as anyone editing it could (docs/backup-format.md). #>
        param([string] $Text, [string] $Path)
        $marker = '"documentSha256": "'
        $head = $Text.Substring(0, $Text.LastIndexOf($marker) + $marker.Length)
        $digest = [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData([Text.Encoding]::UTF8.GetBytes($head))).ToLowerInvariant()
        [IO.File]::WriteAllText($Path, $head + $digest + "`"`n}`n")
    }
    function Get-AesCipher {
        param([string] $Token, [string] $Id)
        $in = Join-Path $Work 'block.bin'; $out = Join-Path $Work 'block.enc'
        [IO.File]::WriteAllBytes($in, [byte[]](0..15))
        $o = & pkcs11-tool --module $SoftHsm --token-label $Token --login --pin $PinText --encrypt --id $Id -m AES-ECB -i $in -o $out 2>&1
        if ($LASTEXITCODE -ne 0) { throw "encrypt failed: $o" }
        [Convert]::ToHexString([IO.File]::ReadAllBytes($out))
    }
}
AfterAll {
    Disconnect-PicoHsm -All
    'pico-test-f', 'pico-test-a' | ForEach-Object { Remove-TestObjects -Token $_ }
    Remove-Item $Work -Recurse -Force -ErrorAction Ignore
}

Describe 'Export-PicoWrappedKey' {
    BeforeAll {
        $script:dir = Join-Path $Work 'backups'
        $script:errs = $null
        $script:backups = @(Get-PicoKey -Session $src | Export-PicoWrappedKey -Session $src -Directory $dir -ErrorVariable errs -ErrorAction SilentlyContinue)
    }

    It 'writes one typed backup per exportable key and goes on past the one that is not' {
        $backups.Count | Should -Be 8
        $backups | ForEach-Object { $_ | Should -BeOfType ([PicoHsm.Backup.PicoKeyBackup]) }
        $errs.Count | Should -Be 1
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'ExportPicoWrappedKeyKeyNotExtractable,*'
        $errs[0].CategoryInfo.Category | Should -Be 'PermissionDenied'
        $errs[0].Exception.Message | Should -BeLike "*99*locked-in*not extractable*"
    }

    It 'describes each backup: path, id, label, type, DKEK KCV, SHA-256, time' {
        foreach ($b in $backups) {
            Test-Path $b.Path | Should -BeTrue
            $b.Sha256 | Should -Be (Get-FileHash -Algorithm SHA256 $b.Path).Hash.ToLowerInvariant()
            $b.Kcv | Should -Be $dkek.KeyCheckValue
            $b.Format | Should -Be 'PicoHsm'
            $b.Mechanism | Should -Be 'CKM_AES_KEY_WRAP_PAD'
            $b.Created | Should -BeGreaterThan ([datetimeoffset]::UtcNow.AddMinutes(-10))
            $o = $originals[$b.Id]
            $b.Label | Should -Be $o.Label
            $b.KeyType | Should -Be $o.KeyType
            $b.Size | Should -Be $o.Size
            $b.PublicKeyFingerprint | Should -Be $o.PublicKeyFingerprint
            $b.SourceSerial | Should -Be $src.SerialNumber
        }
        ($backups | Where-Object Id -EQ '22').Curve | Should -Be 'P-384'
    }

    It 'writes files readable by the owner only' -Skip:(-not $IsLinux) {
        $backups | ForEach-Object { (Get-Item $_.Path).UnixFileMode | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite') }
    }

    It 'never overwrites a file without -Force' {
        $target = $backups[0].Path
        $before = (Get-FileHash $target).Hash
        $e = { Get-PicoKey -Session $src -Id $backups[0].Id | Export-PicoWrappedKey -Session $src -Path $target -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ExportPicoWrappedKeyFileExists,*'
        (Get-FileHash $target).Hash | Should -Be $before
        (Get-PicoKey -Session $src -Id $backups[0].Id | Export-PicoWrappedKey -Session $src -Path $target -Force).Path | Should -Be $target
    }

    It 'does nothing with -WhatIf' {
        $p = Join-Path $Work 'whatif.pkb'
        Export-PicoWrappedKey -Session $src -Id '21' -Path $p -WhatIf
        Test-Path $p | Should -BeFalse
    }

    It 'writes nothing and emits nothing for piped keys with -WhatIf' {
        $d = Join-Path $Work 'whatif-dir'
        $out = @(Get-PicoKey -Session $src | Export-PicoWrappedKey -Session $src -Directory $d -WhatIf)
        $out.Count | Should -Be 0
        @(Get-ChildItem -Force $d -ErrorAction Ignore).Count | Should -Be 0
    }

    It 'keeps objects and errors in key order (the batched folder fsync emits the objects before an error)' {
        $all = @(Get-PicoKey -Session $src)
        $merged = @($all | Export-PicoWrappedKey -Session $src -Directory (Join-Path $Work 'ordered') -ErrorAction Continue 2>&1)
        $seen = $merged | ForEach-Object { if ($_ -is [System.Management.Automation.ErrorRecord]) { 'error' } else { $_.Id } }
        $expected = $all | ForEach-Object { if ($_.Exportable) { $_.Id } else { 'error' } }
        $seen -join ',' | Should -Be ($expected -join ',')
        ($merged | Where-Object { $_ -isnot [System.Management.Automation.ErrorRecord] }) | ForEach-Object { Test-Path $_.Path | Should -BeTrue }
    }

    It 'selects keys by -Id and -Label' {
        $b = Export-PicoWrappedKey -Session $src -Label 'ec-p2*' -Directory (Join-Path $Work 'by-label')
        @($b).Count | Should -Be 1
        $b.Id | Should -Be '21'
    }
}

Describe 'Get-PicoKeyBackup and Test-PicoKeyBackup without a session' {
    It 'reads backups with no session at all' {
        $r = Invoke-FreshPwsh -Command "Import-Module '$ModuleUnderTest'; Get-PicoKeyBackup -Path '$(Join-Path $Work 'backups')/*.pkb' | ForEach-Object { `$_.Id + ' ' + `$_.Kcv }; Get-PicoKeyBackup -Path '$(Join-Path $Work 'backups')/*.pkb' | Test-PicoKeyBackup -Quiet"
        ($r.Output | Where-Object { $_ -match '^[0-9a-f]{2} ' }).Count | Should -Be 8
        ($r.Output | Where-Object { $_ -eq 'True' }).Count | Should -Be 8
    }

    It 'reports a changed byte as invalid, naming the problem' {
        $copy = Join-Path $Work 'tampered.pkb'
        $bytes = [IO.File]::ReadAllBytes((Get-ChildItem (Join-Path $Work 'backups') -Filter 'ec-p256*').FullName)
        $bytes[200] = $bytes[200] -bxor 0x04
        [IO.File]::WriteAllBytes($copy, $bytes)
        $t = Test-PicoKeyBackup -Path $copy -Session $null
        $t.Valid | Should -BeFalse
        $t.Passed | Should -BeFalse
        $t.Problems | Should -Not -BeNullOrEmpty
        Test-PicoKeyBackup -Path $copy -Quiet | Should -BeFalse
        $e = { Get-PicoKeyBackup -Path $copy -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'GetPicoKeyBackupBackup*'
        $e.CategoryInfo.Category | Should -Be 'InvalidData'
    }

    It 'says which file does not exist' {
        $t = Test-PicoKeyBackup -Path (Join-Path $Work 'nope.pkb')
        $t.Valid | Should -BeFalse
        $t.Problems[0] | Should -BeLike '*nope.pkb*'
    }
}

Describe 'Import-PicoWrappedKey' {
    BeforeAll { $script:bk = @{}; Get-PicoKeyBackup -Path (Join-Path $Work 'backups/*.pkb') | ForEach-Object { $bk[$_.Id] = $_ } }

    It 'restores every key type and size on a token with the same DKEK; the keys work as the originals' {
        foreach ($id in $bk.Keys | Sort-Object) {
            $k = Import-PicoWrappedKey -Session $dst -InputObject $bk[$id] -Confirm:$false
            $k | Should -BeOfType ([PicoHsm.Keys.PicoKey])
            $k.Id | Should -Be $id
            $k.Label | Should -Be $originals[$id].Label
            $k.KeyType | Should -Be $originals[$id].KeyType
            $k.Size | Should -Be $originals[$id].Size
            $k.Extractable | Should -BeTrue
            if ($k.Class -eq 'PrivateKey') {
                $k.HasPublicKey | Should -BeTrue
                $k.PublicKeyFingerprint | Should -Be $originals[$id].PublicKeyFingerprint
                Test-SignsLike -Token 'pico-test-a' -Id $id -Original $originals[$id] | Should -BeTrue
            }
            else {
                Get-AesCipher -Token 'pico-test-a' -Id $id | Should -Be (Get-AesCipher -Token 'pico-test-f' -Id $id)
            }
        }
    }

    It 'brings the certificate back with the key' {
        # A certificate for key 11, issued by a throwaway CA, stored on the source token with OpenSC.
        $caKey = [Security.Cryptography.RSA]::Create(2048)
        $caReq = [Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=Test CA', $caKey, 'SHA256', [Security.Cryptography.RSASignaturePadding]::Pkcs1)
        $caReq.CertificateExtensions.Add([Security.Cryptography.X509Certificates.X509BasicConstraintsExtension]::new($true, $false, 0, $true))
        # One "now" for both certificates: two clock reads a second apart made the leaf outlive its CA.
        $now = [datetimeoffset]::UtcNow
        $ca = $caReq.CreateSelfSigned($now.AddDays(-1), $now.AddYears(1))
        $pub = [Security.Cryptography.RSA]::Create(); $null = $pub.ImportSubjectPublicKeyInfo($originals['11'].PublicKeyInfo, [ref]0)
        $req = [Security.Cryptography.X509Certificates.CertificateRequest]::new('CN=rsa2048 key', $pub, 'SHA256', [Security.Cryptography.RSASignaturePadding]::Pkcs1)
        $cert = $req.Create($ca, $now.AddDays(-1), $now.AddMonths(6), [byte[]](1, 2, 3, 4))
        $certFile = Join-Path $Work 'rsa2048.cer'
        [IO.File]::WriteAllBytes($certFile, $cert.RawData)
        $o = & pkcs11-tool --module $SoftHsm --token-label 'pico-test-f' --login --pin $PinText --write-object $certFile --type cert --id 11 --label 'rsa2048 cert' 2>&1
        $LASTEXITCODE | Should -Be 0 -Because ($o -join "`n")
        $b = Get-PicoKey -Session $src -Id '11' | Export-PicoWrappedKey -Session $src -Path (Join-Path $Work 'with-cert.pkb')
        $b.HasCertificate | Should -BeTrue
        $k = Import-PicoWrappedKey -Session $dst -InputObject $b -Id '6611' -Confirm:$false
        $k.HasCertificate | Should -BeTrue
        $back = Join-Path $Work 'back.cer'
        & pkcs11-tool --module $SoftHsm --token-label 'pico-test-a' --read-object --type cert --id 6611 -o $back 2>&1 | Out-Null
        [Convert]::ToHexString([IO.File]::ReadAllBytes($back)) | Should -Be ([Convert]::ToHexString($cert.RawData))
    }

    It 'backs a restored key up again, with the same size and fingerprint' {
        foreach ($id in '32', '23') {
            $again = Get-PicoKey -Session $dst -Id $id | Export-PicoWrappedKey -Session $dst -Directory (Join-Path $Work 'again')
            $again.Size | Should -Be $bk[$id].Size
            $again.PublicKeyFingerprint | Should -Be $bk[$id].PublicKeyFingerprint
            $again.SourceSerial | Should -Be $dst.SerialNumber
        }
    }

    It 'refuses an id another key holds, changing nothing' {
        # Key 22 is another EC key: the very key at its own id (21) is already present, not a refusal (Safety.Restore.Tests.ps1).
        $e = { Import-PicoWrappedKey -Session $dst -Path $bk['21'].Path -Id '22' -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoWrappedKeyIdInUse,*'
        $e.CategoryInfo.Category | Should -Be 'ResourceExists'
        $e.Exception.Message | Should -BeLike '*-Id*-Force*'
        @(Get-PicoKey -Session $dst -Id '22').Count | Should -Be 1
        (Get-PicoKey -Session $dst -Id '22').PublicKeyFingerprint | Should -Be $originals['22'].PublicKeyFingerprint
    }

    It 'restores under a new id and label when asked' {
        $k = $bk['21'] | Import-PicoWrappedKey -Session $dst -Id '4121' -Label 'ec-copy' -Confirm:$false
        $k.Id | Should -Be '4121'
        $k.Label | Should -Be 'ec-copy'
        $k.PublicKeyFingerprint | Should -Be $originals['21'].PublicKeyFingerprint
        Test-SignsLike -Token 'pico-test-a' -Id '4121' -Original $originals['21'] | Should -BeTrue
    }

    It 'replaces an occupied id with -Force, leaving one key with that id' {
        $k = Import-PicoWrappedKey -Session $dst -InputObject $bk['11'] -Id '4121' -Force -Confirm:$false
        $k.KeyType | Should -Be 'Rsa'
        @(Get-PicoKey -Session $dst -Id '4121').Count | Should -Be 1
        (Get-PicoKey -Session $dst -Id '4121').PublicKeyFingerprint | Should -Be $originals['11'].PublicKeyFingerprint
        Test-SignsLike -Token 'pico-test-a' -Id '4121' -Original $originals['11'] | Should -BeTrue
    }

    It 'refuses one -Id for several piped backups, so -Force cannot make them replace each other' {
        $e = { $bk['31'], $bk['32'] | Import-PicoWrappedKey -Session $dst -Id '7777' -Force -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoWrappedKeyTargetWithSeveralBackups,*'
        # The first was restored; the second was stopped before it could replace it.
        @(Get-PicoKey -Session $dst -Id '7777').Count | Should -Be 1
        (Get-PicoKey -Session $dst -Id '7777').Label | Should -Be 'aes128'
    }

    It 'does nothing with -WhatIf' {
        Import-PicoWrappedKey -Session $dst -InputObject $bk['12'] -Id '4212' -WhatIf
        @(Get-PicoKey -Session $dst | Where-Object Id -EQ '4212').Count | Should -Be 0
    }

    It 'refuses a token whose DKEK is another one, before any change' {
        $other = Connect-TestToken 'pico-test-b'
        New-PicoDkek -Session $other -ShareCount 2 -Threshold 2 -OutputDirectory (Join-Path $Work 'other-shares') -SharePassword (New-TestPasswords 2 -Prefix other) -Confirm:$false | Out-Null
        $e = { Import-PicoWrappedKey -Session $other -InputObject $bk['32'] -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoWrappedKey*Dkek*'
        $e.Exception.Message | Should -BeLike "*$($dkek.KeyCheckValue)*"
        @(Get-PicoKey -Session $other | Where-Object Id -EQ '32').Count | Should -Be 0
    }
}

Describe 'Test-PicoKeyBackup with a session' {
    It 'checks DKEK match and compatibility and, with -RestoreTest, proves each key works' {
        $results = @(Get-PicoKeyBackup -Path (Join-Path $Work 'backups/*.pkb') | Test-PicoKeyBackup -Session $dst -RestoreTest)
        $results.Count | Should -Be 8
        foreach ($r in $results) {
            $r | Should -BeOfType ([PicoHsm.Backup.PicoBackupTestResult])
            $r.Valid | Should -BeTrue
            $r.DkekMatch | Should -BeTrue
            $r.Compatible | Should -BeTrue
            $r.Restorable | Should -BeTrue
            $r.Passed | Should -BeTrue
            $r.Detail | Should -Not -BeNullOrEmpty
        }
        # the throwaway session objects are gone: nothing new on the token
        @(Get-PicoKey -Session $dst | Where-Object Label -EQ 'PicoHsm restore test').Count | Should -Be 0
    }

    It 'pipes Get-PicoKey | Export-PicoWrappedKey | Test-PicoKeyBackup -Quiet for a compliance check' {
        $ok = Get-PicoKey -Session $src -KeyType Ec | Where-Object Exportable | Export-PicoWrappedKey -Session $src -Directory (Join-Path $Work 'pipe') | Test-PicoKeyBackup -Session $src -RestoreTest -Quiet
        @($ok).Count | Should -Be 3
        $ok | ForEach-Object { $_ | Should -BeTrue }
    }

    It 'reports a DKEK mismatch on a token with another DKEK' {
        $other = Connect-TestToken 'pico-test-b'
        $r = Test-PicoKeyBackup -Path (Join-Path $Work 'backups/*.pkb') -Session $other | Select-Object -First 1
        $r.Valid | Should -BeTrue
        $r.DkekMatch | Should -BeFalse
        $r.Passed | Should -BeFalse
        $r.Problems -join ' ' | Should -BeLike '*DKEK*'
    }
}

Describe 'Backup-PicoHsm and Restore-PicoHsm' {
    BeforeAll {
        $script:setDir = Join-Path $Work 'full'
        $script:set = Backup-PicoHsm -Session $src -Directory $setDir -WarningVariable bw -WarningAction SilentlyContinue
        $script:backupWarnings = $bw
    }

    It 'backs up every exportable key with a manifest and lists the key it could not export' {
        $set | Should -BeOfType ([PicoHsm.Backup.PicoHsmBackupSet])
        $set.KeyCount | Should -Be 8
        $set.Kcv | Should -Be $dkek.KeyCheckValue
        $set.Complete | Should -BeFalse
        $set.NotExported.Count | Should -Be 1
        $set.NotExported[0] | Should -BeLike "99 'locked-in'*CKA_EXTRACTABLE*"
        "$backupWarnings" | Should -BeLike '*99*locked-in*'
        Test-Path $set.ManifestPath | Should -BeTrue
        $manifest = Get-Content -Raw $set.ManifestPath | ConvertFrom-Json
        $manifest.entries.Count | Should -Be 8
        foreach ($b in $set.Backups) {
            ($manifest.entries | Where-Object file -EQ (Split-Path -Leaf $b.Path)).sha256 | Should -Be $b.Sha256
        }
        $manifest.notExported[0].reason | Should -BeLike '*CKA_EXTRACTABLE*'
    }

    It 'refuses a folder that already holds a backup unless -Force' {
        $e = { Backup-PicoHsm -Session $src -Directory $setDir -ErrorAction Stop -WarningAction SilentlyContinue } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'BackupPicoHsmBackupExists,*'
    }

    It 'refuses to restore a damaged set, naming the file, before changing anything' {
        $copy = Join-Path $Work 'damaged'
        Copy-Item $setDir $copy -Recurse
        $victim = Get-ChildItem $copy -Filter 'aes128*' | Select-Object -First 1
        $bytes = [IO.File]::ReadAllBytes($victim.FullName); $bytes[150] = $bytes[150] -bxor 1; [IO.File]::WriteAllBytes($victim.FullName, $bytes)
        $t = Connect-TestToken 'pico-test-b'
        $before = @(Get-PicoKey -Session $t).Count
        $e = { Restore-PicoHsm -Session $t -Directory $copy -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'RestorePicoHsmBackupDamaged,*'
        $e.Exception.Message | Should -BeLike "*$($victim.Name)*"
        @(Get-PicoKey -Session $t).Count | Should -Be $before
    }

    It 'refuses a token without the backup DKEK' {
        $t = Connect-TestToken 'pico-test-b'
        $e = { Restore-PicoHsm -Session $t -Directory $setDir -Confirm:$false -ErrorAction Stop -WarningAction SilentlyContinue } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'RestorePicoHsmDkekMismatch,*'
    }

    It 'restores the whole set onto a wiped token from any 2 of the 3 shares' {
        $files = (Get-ChildItem (Join-Path $Work 'shares') | Sort-Object Name).FullName
        foreach ($pair in @(@(0, 1), @(0, 2), @(1, 2))) {
            Disconnect-PicoHsm -Session (Get-PicoHsmSession | Where-Object TokenLabel -EQ 'pico-test-a')
            Remove-TestObjects -Token 'pico-test-a'
            $t = Connect-TestToken 'pico-test-a'
            (Get-PicoDkek -Session $t).Present | Should -BeFalse
            Import-PicoDkek -Session $t -Path $files[$pair[0]], $files[$pair[1]] -SharePassword $pw[$pair[0]], $pw[$pair[1]] -Confirm:$false | Out-Null
            $restored = @(Restore-PicoHsm -Session $t -Directory $setDir -Confirm:$false -WarningAction SilentlyContinue)
            $restored.Count | Should -Be 8
            foreach ($k in $restored | Where-Object Class -EQ 'PrivateKey') {
                $k.PublicKeyFingerprint | Should -Be $originals[$k.Id].PublicKeyFingerprint
            }
            Test-SignsLike -Token 'pico-test-a' -Id '21' -Original $originals['21'] | Should -BeTrue
            Get-AesCipher -Token 'pico-test-a' -Id '32' | Should -Be (Get-AesCipher -Token 'pico-test-f' -Id '32')
        }
        $script:dst = Get-PicoHsmSession | Where-Object TokenLabel -EQ 'pico-test-a' | Select-Object -Last 1
    }

    It 'finds every key already present on a rerun, with or without -Force, and changes nothing' {
        # Ids held by other keys are refused key by key: Safety.Restore.Tests.ps1.
        foreach ($force in $false, $true) {
            $errs = $null; $warn = $null
            $r = @(Restore-PicoHsm -Session $dst -Directory $setDir -Force:$force -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue -WarningVariable warn -WarningAction SilentlyContinue)
            $errs.Count | Should -Be 0
            $r.Count | Should -Be 8
            "$warn" | Should -BeLike '*8 of the 8 keys were already on*'
            @(Get-PicoKey -Session $dst).Count | Should -Be 8
        }
    }

    It 'Seen: refuses a backup edited to decrypt with a new label and re-digested: Test-PicoKeyBackup (session and shares), Import-PicoWrappedKey, Restore-PicoHsm; nothing made' {
        $text = [IO.File]::ReadAllText((Join-Path $setDir 'ec-p256-21.pkb'))
        $text.Contains('"version": 2,') | Should -BeTrue
        # SoftHSM2 gives its EC keys CKA_DECRYPT true: the flag is turned around (the xUnit Seen test widens a sign-only RSA key).
        $flag = if ($text.Contains('"decrypt": false')) { '"decrypt": false', '"decrypt": true' } else { '"decrypt": true', '"decrypt": false' }
        $text.Contains($flag[0]) | Should -BeTrue
        $forged = $text.Replace($flag[0], $flag[1]).Replace('"label": "ec-p256"', '"label": "decrypts now"')
        $path = Join-Path $Work 'forged.pkb'
        Write-Redigested $forged $path
        (Get-PicoKeyBackup -Path $path).Label | Should -Be 'decrypts now'   # its digest matches
        Remove-PicoKey -Session $dst -Id '21' -Confirm:$false | Out-Null
        $before = @(Get-PicoKey -Session $dst).Count

        $t = Test-PicoKeyBackup -Path $path -Session $dst -RestoreTest
        $t.Passed | Should -BeFalse
        $t.Valid | Should -BeFalse
        "$($t.Problems)" | Should -BeLike '*changed since it was made*authentication tag*'
        $files = (Get-ChildItem (Join-Path $Work 'shares') | Sort-Object Name).FullName
        $o = Test-PicoKeyBackup -Path $path -SharePath $files[0], $files[1] -SharePassword $pw[0], $pw[1]
        $o.Passed | Should -BeFalse
        $o.Valid | Should -BeFalse
        $sw = $null
        (Test-PicoKeyBackup -Path (Join-Path $setDir 'ec-p256-21.pkb') -SharePath $files[0], $files[1] -SharePassword $pw[0], $pw[1] -WarningVariable sw).Passed | Should -BeTrue
        "$sw" | Should -Not -BeLike '*can be read by users other*'   # the module writes shares 0600

        $e = { Import-PicoWrappedKey -Session $dst -Path $path -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ImportPicoWrappedKeyBackupTampered,*'
        $e.CategoryInfo.Category | Should -Be 'InvalidData'

        # A whole set with the forged file, its manifest re-digested to match.
        $copy = Join-Path $Work 'forged-set'
        Copy-Item $setDir $copy -Recurse
        $victim = Join-Path $copy 'ec-p256-21.pkb'
        $oldSha = (Get-FileHash -Algorithm SHA256 $victim).Hash.ToLowerInvariant()
        Copy-Item $path $victim -Force
        $newSha = (Get-FileHash -Algorithm SHA256 $victim).Hash.ToLowerInvariant()
        $m = Join-Path $copy 'manifest.json'
        Write-Redigested ([IO.File]::ReadAllText($m).Replace($oldSha, $newSha).Replace('"label": "ec-p256"', '"label": "decrypts now"')) $m
        $errs = $null
        $null = @(Restore-PicoHsm -Session $dst -Directory $copy -Confirm:$false -ErrorVariable errs -ErrorAction SilentlyContinue -WarningAction SilentlyContinue)
        @($errs | Where-Object FullyQualifiedErrorId -Like 'RestorePicoHsmBackupTampered,*').Count | Should -Be 1
        @(Get-PicoKey -Session $dst).Count | Should -Be $before
        @(Get-PicoKey -Session $dst | Where-Object Id -EQ '21').Count | Should -Be 0
        # The genuine file restores it.
        (Import-PicoWrappedKey -Session $dst -Path (Join-Path $setDir 'ec-p256-21.pkb') -Confirm:$false).Label | Should -Be 'ec-p256'
    }

    It 'warns when a share file others can read is opened (chmod 644)' -Skip:(-not $IsLinux) {
        $files = (Get-ChildItem (Join-Path $Work 'shares') | Sort-Object Name).FullName
        $open = Join-Path $Work 'open-shares'
        New-Item -ItemType Directory $open -Force | Out-Null
        $copies = $files[0], $files[1] | ForEach-Object { Copy-Item $_ $open -PassThru } | ForEach-Object FullName
        & chmod 644 $copies[0]
        $sw = $null
        (Test-PicoKeyBackup -Path (Join-Path $setDir 'ec-p256-21.pkb') -SharePath $copies -SharePassword $pw[0], $pw[1] -WarningVariable sw -WarningAction SilentlyContinue).Passed | Should -BeTrue
        @($sw).Count | Should -Be 1
        "$sw" | Should -BeLike "*$(Split-Path -Leaf $copies[0])*can be read by users other than its owner (mode 644)*chmod 600*"
    }

    It 'still restores a format version 1 file, warning that it is unauthenticated; an edit to clear "sensitive" is still ignored' {
        $text = [IO.File]::ReadAllText((Join-Path $setDir 'ec-p384-22.pkb'))
        $text.Contains('"sensitive": true') | Should -BeTrue
        # The file as version 1 wrote it: no authentication member (and here edited to say not sensitive).
        $v1 = [regex]::Replace($text, '(?s),\n  "authentication": \{.*?\n  \}', '').Replace('"version": 2,', '"version": 1,').Replace('"sensitive": true', '"sensitive": false')
        $path = Join-Path $Work 'edited-v1.pkb'
        Write-Redigested $v1 $path
        (Get-PicoKeyBackup -Path $path).Authenticated | Should -BeFalse
        $tw = $null
        (Test-PicoKeyBackup -Path $path -Session $null -WarningVariable tw -WarningAction SilentlyContinue).Valid | Should -BeTrue
        "$tw" | Should -BeLike '*format version 1*not authenticated*'
        $iw = $null
        $k = Import-PicoWrappedKey -Session $dst -Path $path -Id '5522' -Confirm:$false -WarningVariable iw -WarningAction SilentlyContinue
        $k.Sensitive | Should -BeTrue
        "$iw" | Should -BeLike '*format version 1*not authenticated*'
        Remove-PicoKey -Session $dst -Id '5522' -Confirm:$false | Out-Null
    }
}
