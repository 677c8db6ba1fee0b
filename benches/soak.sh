#!/usr/bin/env bash
# soak.sh -- a long run of vswitch under iperf3, watching the daemon's memory and fds.
#
# Two containers on one switch (network namespaces vss<pid>-*, removed on exit). After a
# 10 s warm-up it records the daemon's resident memory (VmRSS) and open file descriptors,
# then runs iperf3 between the containers in 30 s rounds (alternating direction, new
# connections each round, a ping beside it) until MINUTES are up, and records them again.
# It fails (exit 1) if the daemon died, a round failed, RSS grew by more than
# max(RSS_SLACK_KB, 10 % of the start) or the fd count grew by more than FD_SLACK.
#
# Usage:  sudo benches/soak.sh [MINUTES]        (default 10; builds release first)
# Knobs:  VSWITCH=path/to/vswitch RSS_SLACK_KB=8192 FD_SLACK=0 ROUND_S=30
set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MINUTES=${1:-10}
RSS_SLACK_KB=${RSS_SLACK_KB:-8192}
FD_SLACK=${FD_SLACK:-0}
ROUND_S=${ROUND_S:-30}
P="vss$$"
RUN=$(mktemp -d /tmp/vswitch-soak.XXXXXX)
DAEMON=""

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (network namespaces)"
case "$MINUTES" in ''|*[!0-9]*) die "MINUTES must be a whole number, got '$MINUTES'";; esac
[ "$MINUTES" -ge 1 ] || die "MINUTES must be at least 1"
for t in ip iperf3 ping; do command -v $t >/dev/null || die "$t is missing (apt-get install iproute2 iperf3 iputils-ping)"; done

if [ -z "${VSWITCH:-}" ]; then
    log "building vswitch (release)"
    (cd "$ROOT" && cargo build --release -q -p vswitch) || die "build failed"
    VSWITCH="${CARGO_TARGET_DIR:-$ROOT/target}/release/vswitch"
fi
[ -x "$VSWITCH" ] || die "no vswitch binary at $VSWITCH"

cleanup() {
    local ns p
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-"); do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$RUN"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

vs() { "$VSWITCH" --socket "$RUN/vswitch.sock" "$@"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$DAEMON/status" 2>/dev/null; }
fds() { ls "/proc/$DAEMON/fd" 2>/dev/null | wc -l; }
alive() { [ -d "/proc/$DAEMON" ] && ! grep -q '^State:.*Z' "/proc/$DAEMON/status" 2>/dev/null; }

for n in h c1 c2; do ip netns add "$P-$n" && ip -n "$P-$n" link set lo up || die "cannot make namespaces"; done
ip netns exec "$P-h" "$VSWITCH" run --state-dir "$RUN/state" --socket "$RUN/vswitch.sock" \
    2>"$RUN/daemon.log" &
DAEMON=$!
for _ in $(seq 50); do vs network ls >/dev/null 2>&1 && break; sleep 0.2; done
vs network ls >/dev/null 2>&1 || die "daemon did not come up: $(cat "$RUN/daemon.log")"
vs network create soak --subnet 10.77.0.0/24 >/dev/null || die "network create failed"
vs network connect soak --netns "$P-c1" --ip 10.77.0.11 >/dev/null || die "connect c1 failed"
vs network connect soak --netns "$P-c2" --ip 10.77.0.12 >/dev/null || die "connect c2 failed"
ip netns exec "$P-c2" iperf3 -s -D -I "$RUN/iperf3.pid" >/dev/null || die "iperf3 server failed"
sleep 0.5
ip netns exec "$P-c1" ping -c 3 -W 2 10.77.0.12 >/dev/null || die "no ping between the containers"

# round SECONDS [-R]: one iperf3 run; prints its Gbit/s, fails if iperf3 does.
round() {
    ip netns exec "$P-c1" iperf3 -c 10.77.0.12 -t "$1" ${2:-} -J >"$RUN/round.json" 2>&1 || return 1
    sed -n '/"sum_received"/,/}/p' "$RUN/round.json" | grep '"bits_per_second"' | head -1 |
        sed 's/.*:[[:space:]]*//; s/,.*//' | awk '{printf "%.2f", $1 / 1e9}'
}

log "warm-up 10 s"
round 10 >/dev/null || die "warm-up iperf3 failed: $(tail -5 "$RUN/round.json")"
RSS0=$(rss_kb); FD0=$(fds)
log "start: RSS ${RSS0} kB, ${FD0} fds; soaking for $MINUTES min"

ip netns exec "$P-c1" ping -i 0.2 -W 2 10.77.0.12 >"$RUN/ping.txt" 2>&1 &
PING=$!
END=$(( $(date +%s) + MINUTES * 60 ))
n=0; failed=0
while [ "$(date +%s)" -lt "$END" ]; do
    left=$(( END - $(date +%s) )); t=$(( left < ROUND_S ? left : ROUND_S )); [ "$t" -ge 2 ] || break
    dir=""; [ $(( n % 2 )) = 1 ] && dir="-R"
    if g=$(round "$t" "$dir"); then
        log "round $n ${dir:-  } ${t}s: ${g} Gbit/s, RSS $(rss_kb) kB, $(fds) fds"
    else
        log "round $n failed: $(tail -3 "$RUN/round.json")"; failed=$((failed + 1))
    fi
    alive || break
    n=$((n + 1))
done
kill -INT "$PING" 2>/dev/null; wait "$PING" 2>/dev/null
alive || die "the daemon died: $(tail -20 "$RUN/daemon.log")"
RSS1=$(rss_kb); FD1=$(fds)
LOSS=$(grep -o '[0-9.]*% packet loss' "$RUN/ping.txt" || echo "?")

BOUND=$(( RSS0 / 10 > RSS_SLACK_KB ? RSS0 / 10 : RSS_SLACK_KB ))
printf '\n| | start | end | growth | bound |\n|---|---|---|---|---|\n'
printf '| RSS (kB) | %s | %s | %s | %s |\n' "$RSS0" "$RSS1" "$((RSS1 - RSS0))" "$BOUND"
printf '| open fds | %s | %s | %s | %s |\n' "$FD0" "$FD1" "$((FD1 - FD0))" "$FD_SLACK"
printf '\n%s iperf3 rounds (%s failed) in %s min; ping beside them: %s\n' "$n" "$failed" "$MINUTES" "$LOSS"

status=0
[ "$failed" = 0 ] || { log "FAIL: $failed iperf3 rounds failed"; status=1; }
[ $((RSS1 - RSS0)) -le "$BOUND" ] || { log "FAIL: RSS grew by $((RSS1 - RSS0)) kB (bound $BOUND kB)"; status=1; }
[ $((FD1 - FD0)) -le "$FD_SLACK" ] || { log "FAIL: fds grew by $((FD1 - FD0))"; status=1; }
[ "$status" = 0 ] && log "PASS"
exit $status
