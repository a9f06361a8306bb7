# Help for every cmdlet: build.ps1 turns this into en-US/PicoHsm.dll-Help.xml (MAML), adding each
# parameter's type, position and pipeline input from the cmdlet itself. A Pester test checks that
# every exported cmdlet and every parameter is described here.
@{
    'Connect-PicoHsm' = @{
        Synopsis = 'Opens a session to a token (PKCS#11, and the card channel of a Pico HSM) and makes it the default.'
        Description = 'Loads the PKCS#11 module (-ModulePath, else $env:PICOHSM_PKCS11_MODULE, else OpenSC''s module, else SoftHSM2''s), chooses one initialised token and logs in. Before sending a PIN it reads the token''s PIN flags: a locked PIN is refused, and so is a PIN on its final try unless -Force. Without -Pin or -Credential it prompts without echo; in a non-interactive session (a scheduled task) it fails at once. For a SmartCard-HSM / Nitrokey HSM 2 / Pico HSM it also opens the card channel on the same PC/SC reader, which does the DKEK work. With -Reader alone it connects through PC/SC only. The session is returned and becomes the default for every other cmdlet of this runspace. When this process is already logged in to the token (another session), the PIN is compared with the one that logged in (a salted hash kept in memory) and a wrong one is refused without spending a device try; the login ends with the last session of the token. A failed connect stops the script (as throw does; try/catch catches it with its error id) unless -ErrorAction SilentlyContinue, Ignore or Continue asks to go on, and it leaves the default session as it was. Errors name the PKCS#11 module, why it was chosen and every slot searched; -Verbose says the same when it works.'
        Parameters = @{
            ModulePath = 'Path of the PKCS#11 module (opensc-pkcs11.so / .dll for a Pico HSM, libsofthsm2.so, your HSM''s module).'
            TokenLabel = 'Choose the token by label.'
            SerialNumber = 'Choose the token by serial number.'
            SlotId = 'Choose the token by PKCS#11 slot id.'
            Reader = 'PC/SC reader of a SmartCard-HSM / Pico HSM. Alone: a session through PC/SC only (no PKCS#11 module). With -ModulePath: the reader of the card channel when it is not the slot''s own.'
            Pin = 'The user PIN as a SecureString.'
            Credential = 'A PSCredential whose password is the user PIN (the user name is ignored).'
            Force = 'Log in even though the PIN has one try left.'
        }
        Links = @('Disconnect-PicoHsm', 'Get-PicoHsmSession', 'Get-PicoHsmToken', 'about_PicoHsm')
        Defaults = @{ ModulePath = '$env:PICOHSM_PKCS11_MODULE, else OpenSC''s opensc-pkcs11, else SoftHSM2''s module'; TokenLabel = 'None: the only initialised token of the module'; SerialNumber = 'None'; SlotId = 'None'; Reader = 'None: the PKCS#11 slot''s own reader'; Pin = 'None: asked for without echo (an error when non-interactive)' }
        Examples = @(
            @{ Code = '$s = Connect-PicoHsm -TokenLabel ''ca-hsm'' -Pin (Read-Host -AsSecureString ''PIN'')'; Remarks = 'Interactive: the PIN is typed without echo. The session becomes the default.' }
            @{ Code = 'Connect-PicoHsm -TokenLabel ''ca-hsm'' -Credential (Import-Clixml C:\ProgramData\PicoHsm\pin.xml)'; Remarks = 'A scheduled task on Windows: Export-Clixml protected the credential with DPAPI for the task''s account and machine. On Linux Export-Clixml does not encrypt; use a systemd credential or SecretManagement (examples/ in the repository).' }
            @{ Code = 'Connect-PicoHsm -ModulePath /usr/lib/softhsm/libsofthsm2.so -TokenLabel ca-hsm -Pin (Get-Secret HsmPin)'; Remarks = 'The PIN from a SecretManagement vault.' }
            @{ Code = 'Connect-PicoHsm -Reader ''Nitrokey Nitrokey HSM 00 00'' -Pin $pin'; Remarks = 'A host with pcscd and no PKCS#11 module.' }
        )
    }
    'Disconnect-PicoHsm' = @{
        Synopsis = 'Logs out and closes sessions.'
        Description = 'Logs out and closes the given sessions (by default the default session). With -All, every session of this runspace. Removing the module closes them too.'
        Parameters = @{ Session = 'The sessions to close.'; All = 'Close every session of this runspace.' }
        Links = @('Connect-PicoHsm', 'Get-PicoHsmSession', 'about_PicoHsm')
        Examples = @(
            @{ Code = 'Disconnect-PicoHsm'; Remarks = 'Close the default session. A warning says which session is the default now, or that there is none.' }
            @{ Code = 'Get-PicoHsmSession | Where-Object TokenLabel -eq ''ca-hsm-2'' | Disconnect-PicoHsm'; Remarks = 'Close the sessions to one token.' }
            @{ Code = 'Disconnect-PicoHsm -All'; Remarks = 'Close everything.' }
        )
    }
    'Get-PicoHsmSession' = @{
        Synopsis = 'Lists the sessions of this runspace and whether each is still open.'
        Description = 'Returns the PicoHsmSession objects not disconnected; with -Default only the one cmdlets use when -Session is not given, if it is open. Each session is asked whether its device is still there, cheaply and without a login (a SmartCard-HSM / Pico HSM session: one SCardStatus on its card channel, no command to the card): a session whose card was wiped by Initialize-PicoHsm, removed from its reader, or restarted (out and back in, or a firmware restart: a new power-up, so its login is gone) shows IsOpen False and IsLoggedIn False, and using it is one error, <Cmdlet>SessionClosed, saying to run Connect-PicoHsm again. A closed session stays listed until Disconnect-PicoHsm (-All clears them).'
        Parameters = @{ Default = 'Only the default session.' }
        Links = @('Connect-PicoHsm', 'Disconnect-PicoHsm', 'about_PicoHsm')
        Examples = @(
            @{ Code = 'Get-PicoHsmSession'; Remarks = 'The open sessions; IsDefault marks the one cmdlets use without -Session.' }
            @{ Code = 'Get-PicoHsmSession | Format-List'; Remarks = 'Module, slot, token, serial, device family and login state of each session.' }
            @{ Code = '(Get-PicoHsmSession -Default).TokenLabel'; Remarks = 'Which token the next command will change.' }
        )
    }
    'Get-PicoHsmToken' = @{
        Synopsis = 'Lists the tokens of a PKCS#11 module without logging in.'
        Description = 'Returns one PicoHsmToken per slot with a token: label, serial, model, manufacturer, firmware, PIN state flags and whether it is initialised (SoftHSM2 always lists an uninitialised spare slot).'
        Parameters = @{ ModulePath = 'Path of the PKCS#11 module; the default is found as for Connect-PicoHsm.' }
        Links = @('Connect-PicoHsm', 'Get-PicoKey', 'about_PicoHsm')
        Defaults = @{ ModulePath = '$env:PICOHSM_PKCS11_MODULE, else OpenSC''s opensc-pkcs11, else SoftHSM2''s module' }
        Examples = @(
            @{ Code = 'Get-PicoHsmToken -ModulePath /usr/lib/softhsm/libsofthsm2.so | Where-Object Initialized'; Remarks = 'The initialised SoftHSM2 tokens.' }
            @{ Code = 'Get-PicoHsmToken | Where-Object PinState -ne ''OK'''; Remarks = 'Tokens whose PIN is locked, on its final try or has to be changed.' }
        )
    }
    'Get-PicoKey' = @{
        Synopsis = 'Lists the keys of a token.'
        Description = 'Returns PicoKey objects for private and secret keys (public keys and certificates are matched by id): id, label, class, type and size or curve, extractable, sensitive, the SHA-256 fingerprint of the public key, whether a certificate exists, and whether the key can be exported under the DKEK (and why not). On a SmartCard-HSM also the key reference.'
        Parameters = @{ Session = 'The session; the default session when not given.'; Id = 'Only keys with these ids (hex).'; Label = 'Only keys whose label matches (wildcards; case-insensitive). A label without wildcards is first looked up on the token itself, which compares exactly: when a key has exactly that label, only the keys with exactly that label are returned (so -Label web does not also return a key labelled Web); otherwise every key whose label matches regardless of case is.'; KeyType = 'Only keys of these types (Rsa, Ec, Aes, GenericSecret).' }
        Links = @('New-PicoKey', 'Export-PicoWrappedKey', 'Backup-PicoHsm', 'about_PicoHsm')
        Defaults = @{ Session = 'The default session'; Id = 'None: every key'; Label = 'None: every key'; KeyType = 'None: every type' }
        Examples = @(
            @{ Code = 'Get-PicoKey -KeyType Rsa, Ec | Where-Object { -not $_.Exportable } | Select-Object Id, Label, ExportBlockedReason'; Remarks = 'Keys that cannot be backed up, and why.' }
            @{ Code = 'Get-PicoKey -Label ''web*'''; Remarks = 'Keys whose label starts with web. A bare word (Get-PicoKey web) is taken as an id; ids are hex.' }
            @{ Code = '$s2 | Get-PicoKey 01a1'; Remarks = 'Key 01a1 of another session, piped in.' }
        )
    }
    'New-PicoKey' = @{
        Synopsis = 'Generates a key on a generic PKCS#11 token.'
        Description = 'Generates an RSA, EC or AES key, exportable under the DKEK unless -NonExportable. For a Pico HSM, generate keys with its own tools (pkcs11-tool --keypairgen).'
        Parameters = @{ Session = 'The session.'; KeyType = 'Rsa, Ec, Aes or GenericSecret.'; Size = 'Bits: RSA 2048/3072/4096, AES 128/192/256.'; Curve = 'EC curve (P-256, P-384, P-521, ...).'; Id = 'CKA_ID in hex.'; Label = 'CKA_LABEL.'; NonExportable = 'Create a key that can never be exported, and so never backed up.' }
        Links = @('Get-PicoKey', 'Export-PicoWrappedKey', 'about_PicoHsm')
        Defaults = @{ Session = 'The default session'; Size = 'RSA 2048, AES 256'; Curve = 'P-256'; Id = 'None: the token chooses'; Label = 'None' }
        Examples = @(
            @{ Code = 'New-PicoKey -KeyType Ec -Curve P-384 -Id 10 -Label issuing-ca'; Remarks = 'An EC P-384 key, exportable under the DKEK.' }
            @{ Code = 'New-PicoKey -KeyType Rsa -Size 3072 -Id 01a1 -Label ca-rsa -WhatIf'; Remarks = 'Shows which token would get the key.' }
        )
    }
    'New-PicoDkek' = @{
        Synopsis = 'Creates a DKEK, splits it into password-protected share files for custodians, and puts it on the device.'
        Description = 'Makes 32 random bytes (token RNG mixed with the OS RNG), splits them n-of-m with Shamir''s scheme over GF(2^8) into one file per custodian (PBKDF2-HMAC-SHA256, 600,000 iterations, AES-256-GCM over a clear header), writes the files first and then imports the DKEK (on a generic token an AES-256 wrap/unwrap-only, never-extractable key; on a SmartCard-HSM announced with one share, as that share). -Format ScHsmTool writes sc-hsm-tool share files instead (n-of-n, XOR). A token that already has a DKEK is refused.'
        Parameters = @{ Session = 'The session.'; ShareCount = 'm: the number of custodians (share files).'; Threshold = 'n: how many shares rebuild the DKEK (PicoHsm format; sc-hsm-tool shares are n-of-n).'; OutputDirectory = 'Where the share files are written.'; SharePassword = 'One password per custodian in share order (asked for, with confirmation, when not given). At least 10 characters.'; Label = 'Label of the DKEK and its shares (default dkek).'; Id = 'CKA_ID of the DKEK object on a generic token. By default an id no object uses: 646b656b ("dkek"), or the first free one after it. A taken id is refused before any password is asked.'; NoImport = 'Only write the share files (an offline ceremony).'; Force = 'Overwrite share files of the same name.'; Format = 'PicoHsm (n-of-m .dkekshare files) or ScHsmTool (sc-hsm-tool .pbe files).' }
        Notes = 'This cmdlet asks for confirmation (ConfirmImpact High). In a scheduled task or with pwsh -NonInteractive pass -Confirm:$false, or PowerShell stops it with its generic NonInteractive mode error; set $ErrorActionPreference = ''Stop'' so a failure ends the script with a non-zero exit code.'
        Links = @('Import-PicoDkek', 'Get-PicoDkek', 'Update-PicoDkekShare', 'about_PicoHsm')
        Defaults = @{ Session = 'The default session'; Threshold = 'None: required for -Format PicoHsm; -ShareCount for -Format ScHsmTool'; Label = 'dkek (files dkek-share-1-of-5.dkekshare ...)'; Id = '646b656b, or the first free id after it'; Format = 'PicoHsm'; SharePassword = 'None: each custodian is asked, with confirmation' }
        Examples = @(
            @{ Code = 'New-PicoDkek -ShareCount 5 -Threshold 3 -OutputDirectory E:\ceremony'; Remarks = 'Each custodian types their password; any 3 of the 5 files dkek-share-1-of-5.dkekshare ... dkek-share-5-of-5.dkekshare rebuild the DKEK.' }
            @{ Code = 'New-PicoDkek -Format ScHsmTool -ShareCount 2 -OutputDirectory ./shares -NoImport'; Remarks = 'Two sc-hsm-tool share files for a device initialised with --dkek-shares 2.' }
        )
    }
    'Import-PicoDkek' = @{
        Synopsis = 'Rebuilds the DKEK from share files and puts it on a (replacement) device.'
        Description = 'Reads PicoHsm share files (any n of m) or sc-hsm-tool share files (.pbe, including the threshold-password kind), checks them against each other and against the KCV each records, and imports the DKEK. Fewer than n shares, two files with one share, shares of two DKEKs, a wrong password (the file is named) or a tampered file are errors before anything reaches the device. A device with another DKEK is refused; the same DKEK is a no-op with a warning (on a SmartCard-HSM too: for sc-hsm-tool shares, which carry no KCV, after the passwords, or before any with -ExpectedKcv / -BackupPath naming the card''s DKEK). sc-hsm-tool .pbe files carry no KCV, so shares of two ceremonies would make a useless DKEK: give -ExpectedKcv or -BackupPath, and the DKEK the shares combine to (computed in the host from the decrypted shares, the KCV as the card computes it) must have that KCV, else the error ImportPicoDkekKcvMismatch is raised and nothing reaches the device (no IMPORT DKEK SHARE). Without either, the KCV about to be created is shown in a warning and in the confirmation. A SmartCard-HSM key domain can take its sc-hsm-tool shares over several calls: only with all of them in one call can the host compute the DKEK, so -ExpectedKcv / -BackupPath with fewer (and not the last ones) is refused before any password with ImportPicoDkekKcvNotCheckable, naming the fix (all share files in one call); given with the call that imports the last shares, the KCV the card reports once the domain is complete is checked (ImportPicoDkekKcvMismatch: re-initialise the card, as the earlier shares are already on it). A partial import without either says how many shares are still outstanding instead of a KCV it cannot know.'
        Parameters = @{ Session = 'The session.'; Path = 'The share files.'; SharePassword = 'The password of each file, in the order of -Path (asked for when not given).'; PasswordSharePrime = 'sc-hsm-tool threshold-password shares: the prime shown to the custodians.'; PasswordShare = 'sc-hsm-tool threshold-password shares: the objects Update-PicoDkekShare writes, or SecureStrings holding "id:value" (Read-Host -AsSecureString); asked per custodian when not given. Never a plain string.'; KeyDomain = 'SmartCard-HSM key domain (default 0).'; Id = 'CKA_ID of the DKEK object on a generic token. By default an id no object uses: 646b656b ("dkek"), or the first free one after it. A taken id is refused before any password is asked.'; Label = 'Label of the DKEK object on a generic token.'; ExpectedKcv = 'The KCV (16 hex digits, colons allowed) the rebuilt DKEK must have, e.g. from Get-PicoDkek of the old device or the ceremony record; another value and nothing is sent. sc-hsm-tool shares on a card: give all of a key domain''s share files in one call, or give it with the last ones (the card''s KCV is checked then).'; BackupPath = 'A backup the DKEK must open: a .wky/.pkb file, a manifest.json, or a folder Backup-PicoHsm wrote; its DKEK KCV is checked as -ExpectedKcv.' }
        Notes = 'This cmdlet asks for confirmation (ConfirmImpact High). In a scheduled task or with pwsh -NonInteractive pass -Confirm:$false, or PowerShell stops it with its generic NonInteractive mode error; set $ErrorActionPreference = ''Stop'' so a failure ends the script with a non-zero exit code.'
        Links = @('New-PicoDkek', 'Get-PicoDkek', 'Restore-PicoHsm', 'about_PicoHsm_DisasterRecovery')
        Defaults = @{ Session = 'The default session'; SharePassword = 'None: each custodian is asked'; KeyDomain = '0'; Id = '646b656b, or the first free id after it'; Label = 'The label in the share files'' header'; ExpectedKcv = 'None: the KCV is shown and confirmed'; BackupPath = 'None' }
        Examples = @(
            @{ Code = 'Import-PicoDkek -Path .\dkek-share-1-of-5.dkekshare, .\dkek-share-4-of-5.dkekshare, .\dkek-share-5-of-5.dkekshare'; Remarks = 'Three custodians type their passwords.' }
            @{ Code = 'Import-PicoDkek -Path dkek-share-1.pbe, dkek-share-2.pbe -BackupPath F:\backup\2026-11-30'; Remarks = 'sc-hsm-tool shares checked against the DKEK of a backup folder before anything is sent to the card.' }
            @{ Code = 'Import-PicoDkek -Path share.pbe -PasswordSharePrime ''c0:1b:aa:f3:4b:97:a7:03'' -PasswordShare (Read-Host -AsSecureString ''Custodian 1 id:value''), (Read-Host -AsSecureString ''Custodian 3 id:value'')'; Remarks = 'An sc-hsm-tool share protected by a 2-of-3 password split.' }
        )
    }
    'Get-PicoDkek' = @{
        Synopsis = 'Shows whether the device has a DKEK, and its key check value.'
        Description = 'On a generic token: the DKEK object, its KCV proven by the token (a wrap of a known probe key), label and id. On a SmartCard-HSM: one entry per key domain with shares total and outstanding and the KCV (never the zeros a Pico HSM reports before a PIN verify).'
        Parameters = @{ Session = 'The session.' }
        Links = @('New-PicoDkek', 'Import-PicoDkek', 'Test-PicoKeyBackup')
        Defaults = @{ Session = 'The default session' }
        Examples = @(
            @{ Code = '(Get-PicoDkek).KeyCheckValue -eq ''d5c1a339cd295797'''; Remarks = 'A compliance check: the device holds the DKEK we hold shares for.' }
            @{ Code = 'Get-PicoDkek | Format-List'; Remarks = 'Everything known about the DKEK: KCV, whether the token proved it, shares, status.' }
        )
    }
    'Update-PicoDkekShare' = @{
        Synopsis = 'Re-splits the same DKEK for new custodians, or gives an sc-hsm-tool share file a new password, without touching a device.'
        Description = 'PicoHsm share files: rebuilds the DKEK from any n share files and splits it again (same KCV) into a new n-of-m set (-ShareCount, -Threshold). An sc-hsm-tool share file (.pbe, one per call): opens it with its password or its password shares and writes it again, the DKEK share inside unchanged (same share KCV), under a new password (-NewSharePassword) or a fresh random password split into new n-of-m password shares over a new prime (-PasswordShareThreshold, -PasswordShareTotal), shown to each custodian as sc-hsm-tool shows them and returned as PicoPasswordShare objects holding SecureStrings; or turns a threshold file into a plain-password file. sc-hsm-tool --import-dkek-share reads every file written. The old share files stay valid until every copy of them is destroyed: rotation cannot revoke a copy. See about_PicoHsm_DKEK.'
        Parameters = @{ Path = 'Any n of the existing share files.'; SharePassword = 'Their passwords, in order.'; ShareCount = 'New m.'; Threshold = 'New n.'; OutputDirectory = 'Where the new share files go.'; NewSharePassword = 'Passwords of the new shares, in order; for an sc-hsm-tool file, its one new password (asked twice when not given).'; Force = 'Overwrite files of the same name.'; PasswordSharePrime = 'sc-hsm-tool threshold file: the prime its custodians were shown.'; PasswordShare = 'sc-hsm-tool threshold file: its current password shares (objects from Update-PicoDkekShare, or SecureStrings holding "id:value"); asked per custodian when not given.'; PasswordShareTotal = 'sc-hsm-tool file: split a fresh random 64-bit password into this many password shares (3 to 9, as --pwd-shares-total).'; PasswordShareThreshold = 'sc-hsm-tool file: how many password shares open the file (as --pwd-shares-threshold).' }
        Links = @('New-PicoDkek', 'Import-PicoDkek', 'Convert-PicoKeyBackup', 'about_PicoHsm_DKEK')
        Defaults = @{ SharePassword = 'None: each custodian is asked'; NewSharePassword = 'None: each new custodian is asked, with confirmation'; PasswordShare = 'None: each custodian is asked'; Threshold = 'The old set''s n'; ShareCount = 'The old set''s m' }
        Examples = @(
            @{ Code = 'Update-PicoDkekShare -Path a.dkekshare, c.dkekshare -ShareCount 3 -Threshold 2 -OutputDirectory F:\new'; Remarks = 'Hand the new files out, then have the old custodians destroy theirs.' }
            @{ Code = 'Update-PicoDkekShare -Path E:\dkek-share-2.pbe -OutputDirectory F:\new'; Remarks = 'An sc-hsm-tool custodian hands over: the leaving custodian types the current password, the arriving one a new password (twice). The DKEK share inside is the same.' }
            @{ Code = '$shares = Update-PicoDkekShare -Path E:\team.pbe -PasswordSharePrime c0:1b:aa:f3:4b:97:a7:03 -PasswordShareThreshold 3 -PasswordShareTotal 5 -OutputDirectory F:\new'; Remarks = 'A threshold file re-split for a new group: the old holders enter their shares at the prompt; each new custodian is shown prime, share id and value on their own screen, as sc-hsm-tool shows them, and types the value back.' }
        )
    }
    'Convert-PicoKeyBackup' = @{
        Synopsis = 'Moves key backups from an old DKEK to a new one, offline, on an air-gapped host.'
        Description = 'Rebuilds the old DKEK from any n of its shares and the new DKEK from any n of its shares, in memory; then for each backup (.pkb or sc-hsm-tool .wky made under the old DKEK) unwraps the key, wraps it again under the new DKEK, checks the new file offline (KCV, integrity, the key against the file''s public key) and writes it to -OutputDirectory. Everything else in the file is kept. THE KEYS ARE IN CLEAR IN THIS PROCESS''S MEMORY WHILE IT RUNS: it says so and asks for confirmation (ConfirmImpact High) before it starts, zeroes every buffer, and writes nothing but the converted backups. Run it only in the air-gapped ceremony described in about_PicoHsm_DKEK. Restore the converted backups on a device holding the new DKEK; the old shares do not open them.'
        Parameters = @{ Path = 'Backups made under the old DKEK (.pkb, .wky).'; SharePath = 'Any n share files of the old DKEK (all sc-hsm-tool files). A share file that other users can read (Unix mode beyond 0600) gives a warning naming it and the chmod that fixes it; the same holds for -NewSharePath.'; SharePassword = 'Passwords of the -SharePath files, in order (asked per custodian when not given).'; NewSharePath = 'Any n share files of the new DKEK.'; NewSharePassword = 'Passwords of the -NewSharePath files, in order (asked per custodian when not given).'; OutputDirectory = 'Where the converted backups go, under the same file names.'; Force = 'Replace converted backups already there.' }
        Links = @('Update-PicoDkekShare', 'Import-PicoDkek', 'Test-PicoKeyBackup', 'about_PicoHsm_DKEK')
        Defaults = @{ SharePassword = 'None: each old custodian is asked'; NewSharePassword = 'None: each new custodian is asked' }
        Examples = @(@{ Code = 'Convert-PicoKeyBackup -Path E:\backup\*.pkb -SharePath old-1.dkekshare, old-4.dkekshare, old-5.dkekshare -NewSharePath new-1.dkekshare, new-2.dkekshare, new-3.dkekshare -OutputDirectory F:\converted'; Remarks = 'Three old and three new custodians each type their password; every backup is written again under the new DKEK.' }
            @{ Code = 'Convert-PicoKeyBackup -Path E:\backup\*.wky -SharePath old-1.pbe, old-2.pbe -NewSharePath new-1.pbe, new-2.pbe -OutputDirectory F:\converted -WhatIf'; Remarks = 'sc-hsm-tool backups and share files (any n of each DKEK): shows what would be converted, writing nothing.' }
        )
    }
    'Export-PicoWrappedKey' = @{
        Synopsis = 'Writes keys wrapped under the DKEK to backup files.'
        Description = 'Wraps each key under the DKEK (generic token: C_WrapKey with CKM_AES_KEY_WRAP_PAD into a .pkb file; SmartCard-HSM: WRAP KEY into the file sc-hsm-tool --wrap-key writes) with everything needed to restore it: public key, certificate, id, label, attributes, the DKEK''s KCV, the source token. Files are written atomically, readable by the owner only, never over an existing file without -Force. A key that cannot be exported is a non-terminating error; the others go on.'
        Parameters = @{ Session = 'The session.'; Key = 'Keys from Get-PicoKey (pipeline).'; Id = 'Keys by id (hex).'; Label = 'Keys by label (wildcards).'; Path = 'The backup file (one key).'; Directory = 'A folder: one file per key, named from label and id.'; Force = 'Replace existing files.' }
        Links = @('Get-PicoKey', 'Import-PicoWrappedKey', 'Test-PicoKeyBackup', 'Backup-PicoHsm')
        Defaults = @{ Session = 'The default session'; Id = 'None'; Label = 'None' }
        Examples = @(
            @{ Code = 'Get-PicoKey | Export-PicoWrappedKey -Directory D:\backup | Test-PicoKeyBackup -RestoreTest'; Remarks = 'Back up every key and prove each backup restorable.' }
            @{ Code = 'Export-PicoWrappedKey -Id 01a1 -Path ./ca-rsa.pkb'; Remarks = 'One key into one file.' }
        )
    }
    'Import-PicoWrappedKey' = @{
        Synopsis = 'Restores keys from backup files.'
        Description = 'Before any change checks that the backup''s DKEK is the device''s (KCV), that the device supports the mechanism, key type and size, and that the target is free. An occupied id (or SmartCard-HSM key reference) is refused unless -Force, which replaces the old key only after the new one is in place. Recreates the public key and certificate objects. Returns the restored PicoKey. On a PKCS#11 token, many piped files are one batch unless each is confirmed (-Confirm): the checks read the token''s objects once, and from the first restore PicoHsm''s token lock is held until the pipeline ends, so another PicoHsm process that changes the token waits for it (up to a minute, then TokenBusy); an object another program makes at a restored id meanwhile is reported at the end (IdTakenDuringRestore).'
        Parameters = @{ Session = 'The session.'; Path = 'Backup files (.pkb or sc-hsm-tool .wky).'; InputObject = 'PicoKeyBackup objects.'; Id = 'Restore under another id (hex).'; Label = 'Restore under another label.'; KeyReference = 'SmartCard-HSM: the key reference (1-254); the first free one by default.'; Force = 'Replace a key that has the target id or key reference.' }
        Links = @('Export-PicoWrappedKey', 'Get-PicoKeyBackup', 'Restore-PicoHsm')
        Defaults = @{ Session = 'The default session'; Id = 'The id in the backup'; Label = 'The label in the backup'; KeyReference = 'The first free key reference' }
        Examples = @(
            @{ Code = 'Import-PicoWrappedKey -Path .\ca-rsa-01a1.pkb -Id 02a1 -Label ca-rsa-test'; Remarks = 'Restore a copy under a new id and label.' }
            @{ Code = 'Get-PicoKeyBackup D:\backup\*.pkb | Where-Object Label -like ''web*'' | Import-PicoWrappedKey'; Remarks = 'Restore some keys of a backup folder.' }
        )
    }
    'Get-PicoKeyBackup' = @{
        Synopsis = 'Reads backup files into objects, with no session.'
        Description = 'Reads PicoHsm .pkb files and sc-hsm-tool wrapped-key files and returns PicoKeyBackup objects: id, label, key type, the DKEK''s KCV, SHA-256 of the file, creation time and source. Given a folder written by Backup-PicoHsm, it returns the folder''s key backups; a folder an interrupted Backup-PicoHsm left (its staging folder, or key files with no manifest) is reported as an incomplete backup, with the command that finishes it.'
        Parameters = @{ Path = 'Backup files or backup folders (wildcards).' }
        Links = @('Test-PicoKeyBackup', 'Import-PicoWrappedKey', 'Backup-PicoHsm')
        Examples = @(
            @{ Code = 'Get-PicoKeyBackup D:\backup\*.pkb | Group-Object Kcv'; Remarks = 'Which DKEK each backup needs.' }
            @{ Code = 'Get-ChildItem -Recurse D:\backup -Filter *.pkb | Get-PicoKeyBackup | Sort-Object Created | Select-Object -Last 5'; Remarks = 'The newest backups.' }
        )
    }
    'Test-PicoKeyBackup' = @{
        Synopsis = 'Checks backups: structure and digests, DKEK match and compatibility, and that they restore.'
        Description = 'Without a session: the file''s structure and digest. With a session: also the DKEK match and compatibility with that device. With -RestoreTest: unwraps into a throwaway object (generic token) or a free key reference (SmartCard-HSM), proves the key works (sign and verify against the backed-up public key, or encrypt and decrypt) and destroys it. With -SharePath: offline, on an air-gapped host, the DKEK is rebuilt in memory and each backup is unwrapped in memory and matched to its public key. -Quiet returns one bool per backup for Should -BeTrue. On a PKCS#11 token, piped backups are checked against one read of the token''s objects, taken at the first check.'
        Parameters = @{ Path = 'Backup files.'; InputObject = 'PicoKeyBackup objects.'; Session = 'The device to check against; the default session when not given.'; RestoreTest = 'Prove the key restores and works.'; Quiet = 'Return $true/$false per backup.'; SharePath = 'Share files to rebuild the DKEK from, for an offline check.'; SharePassword = 'Passwords of the -SharePath files, in order.' }
        Links = @('Get-PicoKeyBackup', 'Backup-PicoHsm', 'about_PicoHsm_DisasterRecovery')
        Defaults = @{ Session = 'The default session; without one only the file is checked'; SharePassword = 'None: each custodian is asked' }
        Examples = @(
            @{ Code = 'Get-ChildItem D:\backup\*.pkb | Test-PicoKeyBackup -RestoreTest -Quiet | Should -Not -Contain $false'; Remarks = 'A Pester compliance check.' }
            @{ Code = '$set = Backup-PicoHsm -Directory ./backup; $set | Test-PicoKeyBackup -RestoreTest'; Remarks = 'Every backup of a set, piped in.' }
            @{ Code = 'Test-PicoKeyBackup -Path ./backup/*.pkb -SharePath s1.dkekshare, s3.dkekshare'; Remarks = 'Offline, on an air-gapped host: the DKEK is rebuilt in memory from two shares.' }
        )
    }
    'Backup-PicoHsm' = @{
        Synopsis = 'Backs up every exportable key of a device into a folder with a manifest.'
        Description = 'Exports every key that can be exported, with a progress bar, and writes manifest.json (inventory with the SHA-256 of every file and the DKEK''s KCV). Keys that cannot be exported are listed in the manifest and in the result with the reason. The backup is written into a staging folder beside the target (.<name>.picohsm-staging), the manifest last, and published by renaming it, so the folder is never a mix. A run that was interrupted (Ctrl+C, a crash, the device or the disk gone) is finished by running the same command again: staged files that still check are kept. When the device goes away or a file cannot be written, the run stops with one error that says what was staged and which keys were not reached. Returns a PicoHsmBackupSet.'
        Parameters = @{ Session = 'The session.'; Directory = 'The backup folder: new, empty, or an interrupted backup to finish.'; Force = 'Replace a backup already in the folder; the old one stays whole until the new one is published.' }
        Links = @('Restore-PicoHsm', 'Test-PicoKeyBackup', 'Export-PicoWrappedKey', 'about_PicoHsm_DisasterRecovery')
        Defaults = @{ Session = 'The default session' }
        Examples = @(
            @{ Code = '$set = Backup-PicoHsm -Directory "D:\backup\$(Get-Date -Format yyyyMMdd)"; if (-not $set.Complete) { exit 2 }'; Remarks = 'A nightly job that fails when a key could not be backed up.' }
            @{ Code = 'Backup-PicoHsm -Directory ./backup -Session $s2 | Test-PicoKeyBackup -RestoreTest'; Remarks = 'Back up another session''s token and prove every file restores.' }
        )
    }
    'Restore-PicoHsm' = @{
        Synopsis = 'Restores a whole backup folder onto a device.'
        Description = 'Checks the manifest and every file''s SHA-256 first, and that the device holds the backup''s DKEK; then restores each key (an occupied id is an error for that key unless -Force). On a PKCS#11 token the restores are one batch: PicoHsm''s token lock is held from after the confirmation to the last key, so another PicoHsm process that changes the token waits for it (up to a minute, then TokenBusy); an object another program makes at a restored id meanwhile is reported at the end (IdTakenDuringRestore).'
        Parameters = @{ Session = 'The session.'; Directory = 'A folder written by Backup-PicoHsm.'; Force = 'Replace keys whose id is in use.' }
        Notes = 'This cmdlet asks for confirmation (ConfirmImpact High). In a scheduled task or with pwsh -NonInteractive pass -Confirm:$false, or PowerShell stops it with its generic NonInteractive mode error; set $ErrorActionPreference = ''Stop'' so a failure ends the script with a non-zero exit code.'
        Links = @('Backup-PicoHsm', 'Import-PicoDkek', 'about_PicoHsm_DisasterRecovery')
        Defaults = @{ Session = 'The default session' }
        Examples = @(
            @{ Code = 'Import-PicoDkek -Path $threeShares; Restore-PicoHsm -Directory D:\backup\20261127'; Remarks = 'Disaster recovery onto a replacement device (asks for confirmation; -Confirm:$false in a script).' }
            @{ Code = 'Get-Item D:\backup\20261127 | Restore-PicoHsm -Session $replacement -Confirm:$false'; Remarks = 'The folder piped in, onto a named session.' }
        )
    }
    'Initialize-PicoHsm' = @{
        Synopsis = 'Initialises (wipes) a SmartCard-HSM / Pico HSM.'
        Description = 'Sends INITIALIZE DEVICE: every key is erased, the PINs are set and the number of DKEK shares is announced (1 for a PicoHsm n-of-m DKEK, k for k sc-hsm-tool shares, 0 for a device-made DKEK that can never be backed up). The firmware''s INITIALIZE does not check the old SO-PIN, so on an initialised card the module proves it first (VERIFY of SO-PIN reference 88): a wrong one is refused (InitializePicoHsmWrongSoPin, saying how many SO-PIN tries are left) after spending exactly one try, and nothing is erased; a blocked one (InitializePicoHsmSoPinLocked) spends none. A blank card needs no proof. The confirmation names the keys and the DKEK that will be lost.'
        Parameters = @{ Session = 'A session to the card.'; Reader = 'The PC/SC reader of the card.'; SoPin = 'The SO-PIN: 16 hex digits. On an initialised card, its current SO-PIN (proven before the wipe); it stays the SO-PIN.'; Pin = 'The new user PIN.'; DkekShareCount = 'DKEK shares to announce.'; KeyDomainCount = 'Pico HSM: the number of key domains.'; RetryCounter = 'PIN tries before it locks (default 3).' }
        Notes = 'This cmdlet asks for confirmation (ConfirmImpact High). In a scheduled task or with pwsh -NonInteractive pass -Confirm:$false, or PowerShell stops it with its generic NonInteractive mode error; set $ErrorActionPreference = ''Stop'' so a failure ends the script with a non-zero exit code.'
        Links = @('Connect-PicoHsm', 'Import-PicoDkek', 'about_PicoHsm')
        Defaults = @{ Session = 'None: -Reader, else the default session'; Reader = 'None'; DkekShareCount = '0'; KeyDomainCount = 'None: the device''s default'; RetryCounter = '3' }
        Examples = @(
            @{ Code = 'Initialize-PicoHsm -Reader ''Virtual PCD 00 00'' -SoPin $so -Pin $pin -DkekShareCount 1'; Remarks = 'Ready for Import-PicoDkek of an n-of-m DKEK.' }
            @{ Code = 'Initialize-PicoHsm -Reader ''Nitrokey Nitrokey HSM 00 00'' -SoPin $so -Pin $pin -DkekShareCount 2 -WhatIf'; Remarks = 'Shows the keys and the DKEK that would be lost, without wiping.' }
        )
    }
    'Remove-PicoKey' = @{
        Synopsis = 'Removes keys from a device with their public key, PRKD and certificate.'
        Description = 'Removes each key and everything that describes it. On a generic PKCS#11 token: the private or secret key with that CKA_ID, its public key and its certificate. On a SmartCard-HSM / Pico HSM: the key (DELETE FILE of CC kid), its PRKD (C4 kid) and its certificate or request (CE kid), orphans included (keys an interrupted restore left without their description; Get-PicoKey shows them with Status Orphan). The DKEK and its record are never removed (an id that is the DKEK''s is refused, naming it), nor the card''s own device key. It cannot be undone: back the key up first (Export-PicoWrappedKey).'
        Parameters = @{ Session = 'The session; the default session when not given.'; Key = 'Keys from Get-PicoKey (pipeline).'; Id = 'Keys by id (hex).'; KeyReference = 'SmartCard-HSM / Pico HSM: keys by key reference (1-254), for example an orphan.' }
        Notes = 'This cmdlet asks for confirmation (ConfirmImpact High). In a scheduled task or with pwsh -NonInteractive pass -Confirm:$false. -Verbose says what was removed.'
        Links = @('Get-PicoKey', 'Restore-PicoHsm', 'Export-PicoWrappedKey', 'about_PicoHsm')
        Defaults = @{ Session = 'The default session'; Key = 'None'; Id = 'None'; KeyReference = 'None' }
        Examples = @(
            @{ Code = 'Get-PicoKey | Where-Object IsOrphan | Remove-PicoKey -Confirm:$false -Verbose'; Remarks = 'Removes the keys an interrupted restore left without their description.' }
            @{ Code = 'Remove-PicoKey -Id 01a1 -WhatIf'; Remarks = 'Shows which key (id, label, key reference) would be removed, without removing it.' }
        )
    }
}
