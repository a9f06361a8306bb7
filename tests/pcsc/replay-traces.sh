#!/usr/bin/env bash
# Replays the recorded OpenSC <-> Pico HSM APDU traces against the card simulator (no PC/SC needed) and
# runs its self test against the interop vectors. Exits non-zero on any mismatch.
#
#   tests/pcsc/replay-traces.sh [TRACE...]
#
# Env: PICOHSM_TRACES, PICOHSM_VECTORS (default: this repository's tests/traces and tests/vectors),
#      SIM_DLL (prebuilt simulator),
#      REPLAY_VERBOSE=1 (list every APDU).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TRACES_DIR="${PICOHSM_TRACES:-$ROOT/tests/traces}"
VECTORS_DIR="${PICOHSM_VECTORS:-$ROOT/tests/vectors}"

if [ $# -gt 0 ]; then
    traces=("$@")
else
    [ -d "$TRACES_DIR" ] || { echo "traces not found at $TRACES_DIR (set PICOHSM_TRACES)" >&2; exit 2; }
    # the traces were recorded in this order on one device; the replay keeps one card across them
    mapfile -t traces < <(ls "$TRACES_DIR"/[0-9]*.apdu.txt | sort)
fi

if [ -z "${SIM_DLL:-}" ]; then
    out="$(mktemp -d /tmp/picohsm-replay.XXXXXX)"
    trap 'rm -rf "$out"' EXIT
    timeout 300 dotnet build "$ROOT/tests/CardSimulator" -c Release -o "$out" -v q -nologo >"$out/build.log" 2>&1 \
        || { cat "$out/build.log"; exit 1; }
    SIM_DLL="$out/CardSimulator.dll"
fi

verbose=()
[ "${REPLAY_VERBOSE:-}" = "1" ] && verbose=(--verbose)

rc=0
timeout 300 dotnet "$SIM_DLL" "${verbose[@]}" --replay "${traces[@]}" || rc=1
timeout 300 dotnet "$SIM_DLL" --selftest "$VECTORS_DIR" || rc=1
if [ $rc -eq 0 ]; then echo "replay-traces: OK"; else echo "replay-traces: FAILED"; fi
exit $rc
