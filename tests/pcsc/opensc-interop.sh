#!/usr/bin/env bash
# End-to-end check of the card simulator with OpenSC's own tools over the real PC/SC stack
# (pcscd + vsmartcard vpcd). Exits non-zero if any step fails.
#
#   tests/pcsc/opensc-interop.sh
#
# Env:
#   PICOHSM_VECTORS  the vectors folder (default: this repository's tests/vectors)
#   VPCD_PORT        35963 (reader "Virtual PCD 00 00", default) or 35964 ("Virtual PCD 00 01")
#   STEP_TIMEOUT     seconds per tool run (default 120; share import takes ~20 s: 10M MD5 rounds)
#   KEEP_WORK=1      keep the temporary folder
#   SIM_DLL          a prebuilt CardSimulator.dll (default: build tests/CardSimulator)
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VECTORS="${PICOHSM_VECTORS:-$ROOT/tests/vectors}"
VPCD_PORT="${VPCD_PORT:-35963}"
T="${STEP_TIMEOUT:-600}"
P11="${OPENSC_PKCS11:-/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so}"
PIN=648219
SOPIN=3537363231383830
EXPECTED_KCV=d5c1a339cd295797

case "$VPCD_PORT" in
    35963) READER=0 ;;
    35964) READER=1 ;;
    *) echo "VPCD_PORT must be 35963 or 35964" >&2; exit 2 ;;
esac
SLOT_DESC="Virtual PCD 00 0$READER"

WORK="$(mktemp -d /tmp/picohsm-interop.XXXXXX)"
SIM_PID=""
PCSCD_PIDFILE="$WORK/pcscd.pid"
FAILED=0
STEPS=0

cleanup() {
    local rc=$?
    if [ -n "$SIM_PID" ] && kill -0 "$SIM_PID" 2>/dev/null; then
        kill "$SIM_PID" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$SIM_PID" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$SIM_PID" 2>/dev/null || true
    fi
    if [ -s "$PCSCD_PIDFILE" ]; then
        local p; p="$(cat "$PCSCD_PIDFILE")"
        kill "$p" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$p" 2>/dev/null || true
    fi
    if [ "${KEEP_WORK:-}" = "1" ] || [ $rc -ne 0 ]; then
        echo "work folder kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "FAIL: $*"; exit 1; }

# step NAME CMD... : run with a timeout, output to $WORK/step-N.log; print it on failure and stop.
step() {
    local name="$1"; shift
    STEPS=$((STEPS + 1))
    local out="$WORK/step-$STEPS.log"
    if timeout "$T" "$@" >"$out" 2>&1; then
        echo "PASS [$STEPS] $name"
    else
        local rc=$?
        if [ $rc -eq 124 ]; then echo "FAIL [$STEPS] $name (timeout after ${T}s)"; else echo "FAIL [$STEPS] $name (exit $rc)"; fi
        echo "  command: $*"
        sed 's/^/  | /' "$out"
        exit 1
    fi
}

# check NAME CONDITION-CMD... : like step, for checks on produced files
check() { step "$@"; }

hexof() { od -An -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }
P11CMD=(pkcs11-tool --module "$P11" --slot-description "$SLOT_DESC")

[ -d "$VECTORS" ] || fail "vectors not found at $VECTORS (set PICOHSM_VECTORS)"
for t in opensc-tool sc-hsm-tool pkcs11-tool pkcs15-tool openssl dotnet; do
    command -v "$t" >/dev/null 2>&1 || fail "$t not installed"
done
[ -f "$P11" ] || fail "opensc-pkcs11.so not found at $P11 (set OPENSC_PKCS11)"

echo "== work folder $WORK, reader \"$SLOT_DESC\" (vpcd port $VPCD_PORT)"

# ---- build the simulator
if [ -z "${SIM_DLL:-}" ]; then
    step "build CardSimulator" dotnet build "$ROOT/tests/CardSimulator" -c Release -o "$WORK/sim" -v q -nologo
    SIM_DLL="$WORK/sim/CardSimulator.dll"
fi

# ---- pcscd
step "pcscd with vpcd is running" "$HERE/start-pcscd.sh" "$PCSCD_PIDFILE"
cat "$WORK/step-$STEPS.log"

# one card per vpcd reader: wait until nobody else is connected to our port
port_hex=$(printf '%04X' "$VPCD_PORT")
tcp_files=()
for f in /proc/net/tcp /proc/net/tcp6; do [ -r "$f" ] && tcp_files+=("$f"); done
busy() {
    [ ${#tcp_files[@]} -gt 0 ] || return 1
    awk -v p=":$port_hex" '$4 == "01" && substr($3, length($3) - 4) == p { f = 1 } END { exit !f }' "${tcp_files[@]}"
}
for i in $(seq 1 120); do
    busy || break
    [ "$i" = 1 ] && echo "another card is connected to vpcd port $VPCD_PORT ($(pgrep -af CardSimulator 2>/dev/null | head -n3 | tr '\n' ';')); waiting up to 60 s"
    sleep 0.5
done
busy && fail "vpcd port $VPCD_PORT still in use by another card; try VPCD_PORT=35964"

# ---- the simulator (a blank card, as the traces' device)
dotnet "$SIM_DLL" --vpcd "127.0.0.1:$VPCD_PORT" --blank >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
for _ in $(seq 1 120); do
    grep -q '^connected' "$WORK/sim.log" 2>/dev/null && break
    kill -0 "$SIM_PID" 2>/dev/null || { cat "$WORK/sim.log"; fail "simulator exited"; }
    sleep 0.25
done
grep -q '^connected' "$WORK/sim.log" || { cat "$WORK/sim.log"; fail "simulator did not connect to vpcd"; }
echo "PASS simulator connected (pid $SIM_PID)"

cd "$WORK"
cp "$VECTORS/msg.txt" msg.txt

# card detection (pcscd may need a moment to power the new card)
for _ in $(seq 1 40); do
    timeout 10 opensc-tool -r "$READER" -an >/dev/null 2>&1 && break
    sleep 0.25
done
step "opensc-tool -an shows the SmartCard-HSM" opensc-tool -r "$READER" -an
grep -q "3b:fe:18:00:00:81:31:fe:45:80:31:81:54:48:53:4d:31:73:80:21:40:81:07:fa" "$WORK/step-$STEPS.log" || fail "ATR not shown"
grep -q "SmartCard-HSM version 6.0" "$WORK/step-$STEPS.log" || fail "card name not shown"

step "sc-hsm-tool --initialize" sc-hsm-tool -r "$READER" --initialize --so-pin "$SOPIN" --pin "$PIN" --dkek-shares 2
step "sc-hsm-tool --import-dkek-share 1" sc-hsm-tool -r "$READER" --import-dkek-share "$VECTORS/dkek-share-1.pbe" --password share-one-pass
grep -q "1 share(s) still missing" "$WORK/step-$STEPS.log" || fail "share 1: outstanding count not shown"
step "sc-hsm-tool --import-dkek-share 2" sc-hsm-tool -r "$READER" --import-dkek-share "$VECTORS/dkek-share-2.pbe" --password share-two-pass
grep -q "DKEK key check value : 0000000000000000" "$WORK/step-$STEPS.log" || fail "share 2: expected the Pico's zero KCV before a PIN verify"
# the KCV is visible once the user PIN was verified in the same card session
step "KCV after PIN verify (opensc-tool APDUs)" opensc-tool -r "$READER" -s "00 20 00 81 06 36 34 38 32 31 39" -s "80 52 00 00 00"
tr -d ' \n' <"$WORK/step-$STEPS.log" | grep -qi "0200$EXPECTED_KCV" \
    || fail "KCV $EXPECTED_KCV not reported after VERIFY"
echo "PASS KCV $EXPECTED_KCV"
step "sc-hsm-tool status" sc-hsm-tool -r "$READER"
grep -q "DKEK shares          : 2" "$WORK/step-$STEPS.log" || fail "status: DKEK shares"

step "pkcs11-tool keypairgen EC prime256v1 (id 21)" "${P11CMD[@]}" --login --pin "$PIN" --keypairgen --key-type EC:prime256v1 --id 21 --label t-ec
step "pkcs11-tool keypairgen RSA 2048 (id 22)" "${P11CMD[@]}" --login --pin "$PIN" --keypairgen --key-type rsa:2048 --id 22 --label t-rsa
step "pkcs11-tool -O lists the keys" "${P11CMD[@]}" --login --pin "$PIN" -O
for l in "label:      t-ec" "label:      t-rsa" "ID:         21" "ID:         22"; do
    grep -q "$l" "$WORK/step-$STEPS.log" || fail "-O does not show '$l'"
done
step "pkcs15-tool -D" pkcs15-tool -r "$READER" -D

step "sign ECDSA-SHA256 with id 21" "${P11CMD[@]}" --login --pin "$PIN" --sign --id 21 -m ECDSA-SHA256 --signature-format openssl -i msg.txt -o sig21.der
step "read public key id 21" "${P11CMD[@]}" --read-object --type pubkey --id 21 -o pub21.der
check "public key id 21 is a P-256 key" openssl pkey -pubin -inform DER -in pub21.der -out pub21.pem
check "openssl verifies the id 21 signature" openssl dgst -sha256 -verify pub21.pem -signature sig21.der msg.txt
step "sign ECDSA-SHA256 (raw r||s) with id 21" "${P11CMD[@]}" --login --pin "$PIN" --sign --id 21 -m ECDSA-SHA256 -i msg.txt -o sig21.rs
check "r||s signature is 64 bytes" test "$(stat -c %s sig21.rs)" -eq 64

step "sign SHA256-RSA-PKCS with id 22" "${P11CMD[@]}" --login --pin "$PIN" --sign --id 22 -m SHA256-RSA-PKCS -i msg.txt -o sig22.bin
step "read public key id 22" "${P11CMD[@]}" --read-object --type pubkey --id 22 -o pub22.der
check "public key id 22 is an RSA key" openssl pkey -pubin -inform DER -in pub22.der -out pub22.pem
check "openssl verifies the id 22 signature" openssl dgst -sha256 -verify pub22.pem -signature sig22.bin msg.txt
step "sign SHA256-RSA-PKCS-PSS with id 22" "${P11CMD[@]}" --login --pin "$PIN" --sign --id 22 -m SHA256-RSA-PKCS-PSS -i msg.txt -o pss22.bin
check "openssl verifies the PSS signature" openssl dgst -sha256 -verify pub22.pem \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1 -signature pss22.bin msg.txt
echo -n "secret for the card" >plain.txt
check "encrypt to id 22 with openssl" openssl pkeyutl -encrypt -pubin -inkey pub22.pem -in plain.txt -out ct22.bin
step "decrypt RSA-PKCS with id 22" "${P11CMD[@]}" --login --pin "$PIN" --decrypt --id 22 -m RSA-PKCS -i ct22.bin -o pt22.txt
check "decrypted text matches" cmp plain.txt pt22.txt

step "sc-hsm-tool --wrap-key (key 1)" sc-hsm-tool -r "$READER" --wrap-key out-ec.wky --key-reference 1 --pin "$PIN"
check "wrapped key blob starts with the KCV" test "$(hexof out-ec.wky 8 8)" = "$EXPECTED_KCV"
openssl pkey -pubin -inform DER -in "$VECTORS/ec256.pub.der" -out ec256.pub.pem
openssl pkey -pubin -inform DER -in "$VECTORS/rsa2048.pub.der" -out rsa2048.pub.pem
step "sc-hsm-tool --unwrap-key ec256.wky (key 20)" sc-hsm-tool -r "$READER" --unwrap-key "$VECTORS/ec256.wky" --key-reference 20 --pin "$PIN"
step "unwrap into an occupied reference is refused without --force" bash -c \
    "! sc-hsm-tool -r $READER --unwrap-key '$VECTORS/ec256.wky' --key-reference 20 --pin $PIN"
step "sign ECDSA-SHA256 with the unwrapped key (id 02)" "${P11CMD[@]}" --login --pin "$PIN" --sign --id 02 -m ECDSA-SHA256 --signature-format openssl -i msg.txt -o sig-ec256.der
check "openssl verifies it against ec256.pub.der" openssl dgst -sha256 -verify ec256.pub.pem -signature sig-ec256.der msg.txt
step "sc-hsm-tool --unwrap-key rsa2048.wky (key 21)" sc-hsm-tool -r "$READER" --unwrap-key "$VECTORS/rsa2048.wky" --key-reference 21 --pin "$PIN"
step "sign SHA256-RSA-PKCS with the unwrapped RSA key (id 01)" "${P11CMD[@]}" --login --pin "$PIN" --sign --id 01 -m SHA256-RSA-PKCS -i msg.txt -o sig-rsa2048.bin
check "openssl verifies it against rsa2048.pub.der" openssl dgst -sha256 -verify rsa2048.pub.pem -signature sig-rsa2048.bin msg.txt
step "sc-hsm-tool --unwrap-key offline-rsa2048-crt.wky (CRT form, key 22)" sc-hsm-tool -r "$READER" --unwrap-key "$VECTORS/offline-rsa2048-crt.wky" --key-reference 22 --pin "$PIN"
step "sc-hsm-tool --wrap-key of the unwrapped EC key (key 20)" sc-hsm-tool -r "$READER" --wrap-key out-20.wky --key-reference 20 --pin "$PIN"
check "re-wrapped EC key has the vector's blob size" test "$(hexof out-20.wky 4 4)" = "0482014b"

step "wrong PIN is rejected" bash -c "! pkcs11-tool --module '$P11' --slot-description '$SLOT_DESC' --login --pin 000000 -O"
step "PIN still usable after one wrong try" "${P11CMD[@]}" --login --pin "$PIN" -O

step "sc-hsm-tool --create-dkek-share (offline)" sc-hsm-tool --create-dkek-share new-share.pbe --password new-share-pass
check "new share file is 64 bytes starting with Salted__" bash -c "test \$(stat -c %s new-share.pbe) -eq 64 && head -c 8 new-share.pbe | grep -q Salted__"

echo "== all $STEPS OpenSC steps passed"
