#!/usr/bin/env bash
# Start pcscd (with vsmartcard's vpcd reader) for the card simulator tests, unless one already runs.
#
#   tests/pcsc/start-pcscd.sh [PIDFILE]
#
# - pcscd already running: prints "pcscd already running (pid N)", leaves PIDFILE absent, exit 0.
# - otherwise starts `pcscd --foreground` in the background, writes its pid to PIDFILE (only then is it
#   ours to stop later: kill "$(cat PIDFILE)"), and waits until its socket and the vpcd port listen.
# - vpcd must be configured (Debian: package vsmartcard-vpcd installs /etc/reader.conf.d/vpcd). When it is
#   missing and CI=true and we are root, the packages are installed with apt-get.
# Env: VPCD_PORT (default 35963), PCSCD_WAIT (seconds, default 20), PCSCD_LOG (default /tmp/picohsm-pcscd.log).
set -euo pipefail

PIDFILE="${1:-}"
VPCD_PORT="${VPCD_PORT:-35963}"
PCSCD_WAIT="${PCSCD_WAIT:-20}"
PCSCD_LOG="${PCSCD_LOG:-/tmp/picohsm-pcscd.log}"
SOCKET=/run/pcscd/pcscd.comm

log() { echo "start-pcscd: $*" >&2; }

# true when something listens on TCP port $1 (reads /proc, so no probe connection reaches vpcd)
port_listens() {
    local hex f files=()
    hex=$(printf '%04X' "$1")
    for f in /proc/net/tcp /proc/net/tcp6; do [ -r "$f" ] && files+=("$f"); done
    [ ${#files[@]} -gt 0 ] || return 1
    awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' "${files[@]}"
}

# pid of a running pcscd, if any (pgrep, or pcscd's own pid file when procps is missing)
running_pcscd() {
    local p
    if command -v pgrep >/dev/null 2>&1; then
        # A pcscd that was stopped but not yet reaped (a zombie) or is shutting down is not running.
        for p in $(pgrep -x pcscd); do
            case "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" in Z|X|"") ;; *) echo "$p"; return 0;; esac
        done
        return 0
    fi
    p=$(cat /run/pcscd/pcscd.pid 2>/dev/null || true)
    if [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "pcscd" ]; then echo "$p"; fi
}

vpcd_configured() {
    grep -qs libifdvpcd /etc/reader.conf.d/* 2>/dev/null
}

if ! command -v pcscd >/dev/null 2>&1 || ! vpcd_configured; then
    if [ "${CI:-}" = "true" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        log "installing pcscd vsmartcard-vpcd opensc (CI)"
        export DEBIAN_FRONTEND=noninteractive
        timeout 600 apt-get update -qq >&2 || true
        timeout 900 apt-get install -y -qq pcscd vsmartcard-vpcd opensc >&2
    fi
fi
if ! command -v pcscd >/dev/null 2>&1; then
    log "pcscd not found; install it: apt-get install -y pcscd vsmartcard-vpcd opensc"
    exit 1
fi
if ! vpcd_configured; then
    log "no vpcd reader configured in /etc/reader.conf.d (install vsmartcard-vpcd)"
    exit 1
fi

pid=$(running_pcscd)
if [ -n "$pid" ]; then
    log "pcscd already running (pid $pid), not starting another"
    echo "pcscd already running (pid $pid)"
    # it may have just been started by someone else: give it a moment to listen
    for _ in $(seq 1 $((PCSCD_WAIT * 4))); do
        if [ -S "$SOCKET" ] && port_listens "$VPCD_PORT"; then exit 0; fi
        [ -n "$(running_pcscd)" ] || break
        sleep 0.25
    done
    # A pcscd that another test stopped a moment ago may still be shutting down: once it is gone,
    # start our own; one that stays and never listens is another's, and we say so.
    if [ -z "$(running_pcscd)" ]; then
        log "pcscd (pid $pid) has exited meanwhile; starting our own"
    else
        log "running pcscd does not listen on vpcd port $VPCD_PORT (was it started before vpcd was installed?)"
        exit 1
    fi
fi

mkdir -p /run/pcscd 2>/dev/null || true
log "starting pcscd --foreground (log: $PCSCD_LOG)"
pcscd --foreground >"$PCSCD_LOG" 2>&1 &
pid=$!
if [ -n "$PIDFILE" ]; then echo "$pid" >"$PIDFILE"; fi

for _ in $(seq 1 $((PCSCD_WAIT * 4))); do
    if ! kill -0 "$pid" 2>/dev/null; then
        log "pcscd exited; its log:"
        cat "$PCSCD_LOG" >&2 || true
        [ -n "$PIDFILE" ] && rm -f "$PIDFILE"
        exit 1
    fi
    if [ -S "$SOCKET" ] && port_listens "$VPCD_PORT"; then
        echo "started pcscd (pid $pid)"
        exit 0
    fi
    sleep 0.25
done
log "pcscd did not come up within ${PCSCD_WAIT}s"
kill "$pid" 2>/dev/null || true
[ -n "$PIDFILE" ] && rm -f "$PIDFILE"
exit 1
