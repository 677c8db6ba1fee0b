#!/usr/bin/env bash
# lab-bench.sh -- vswitch against the Linux kernel, in one run, on this machine.
#
# For each scenario it builds the kernel reference and the vswitch variant from scratch in
# network namespaces named vsb<pid>-*, measures both with the same iperf3 and ping
# workloads (alternating, REPS times), tears them down and prints one table with the
# medians and the ratio vswitch / kernel.
#
# Scenarios:
#   l2   two containers on one host: Linux bridge + veth   vs  vswitch (veth endpoints)
#
# Usage:  sudo benches/lab-bench.sh            (builds vswitch in release mode first)
# Knobs:  SCENARIOS="l2" REPS=3 TCP_T=10 PINGS=200 VSWITCH=path/to/vswitch OUT=file.md
set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-3}
TCP_T=${TCP_T:-10}
PINGS=${PINGS:-200}
SCENARIOS=${SCENARIOS:-l2}
P="vsb$$"
RUN=$(mktemp -d /tmp/vswitch-bench.XXXXXX)
RAW="$RUN/raw.tsv"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (network namespaces)"
for t in ip iperf3 ping python3; do command -v $t >/dev/null || die "$t is missing (apt-get install iproute2 iperf3 iputils-ping python3)"; done

if [ -z "${VSWITCH:-}" ]; then
    log "building vswitch (release)"
    (cd "$ROOT" && cargo build --release -q -p vswitch) || die "build failed"
    VSWITCH="$ROOT/target/release/vswitch"
fi

# ---------------------------------------------------------------- cleanup
our_ns() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" || true; }
cleanup() {
    local ns p
    for ns in $(our_ns); do for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done; done
    sleep 0.3
    for ns in $(our_ns); do for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done; done
    for ns in $(our_ns); do ip netns del "$ns" 2>/dev/null; done
    return 0
}
trap 'cleanup; rm -rf "$RUN"' EXIT
trap 'exit 130' INT TERM

mkns() { local n; for n in "$@"; do ip netns add "$P-$n" && ip -n "$P-$n" link set lo up; done; }
# veth NS_A DEV_A NS_B DEV_B MTU: created inside the namespaces, never in the root one
veth() {
    ip -n "$P-$1" link add "$2" type veth peer name "$4" netns "$P-$3" || return 1
    ip -n "$P-$1" link set "$2" mtu "$5" up
    ip -n "$P-$3" link set "$4" mtu "$5" up
}

# vswitch daemon in namespace $1, files under $RUN/$1
vs_start() {
    local ns=$P-$1 d=$RUN/$1
    mkdir -p "$d"
    ip netns exec "$ns" "$VSWITCH" run --state-dir "$d/state" --socket "$d/sock" ${2:+--config "$2"} 2> "$d/log" &
    for _ in $(seq 1 100); do "$VSWITCH" --socket "$d/sock" network ls >/dev/null 2>&1 && return 0; sleep 0.05; done
    die "vswitch did not start in $ns: $(cat "$d/log")"
}
vs() { local h=$1; shift; "$VSWITCH" --socket "$RUN/$h/sock" "$@" >/dev/null || die "vswitch $*"; }
vs_pid() { pgrep -f -- "--socket $RUN/$1/sock" | head -1; }

# ---------------------------------------------------------------- measuring
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RAW"; }

# iperf_tcp CLIENT SERVER_IP ARGS... -> Gbit/s
iperf_tcp() {
    local c=$1 ip=$2; shift 2
    timeout $((TCP_T + 25)) ip netns exec "$P-$c" iperf3 -c "$ip" -t "$TCP_T" -J "$@" 2>/dev/null |
        python3 -c 'import json,sys
try: print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))
except Exception: print("ERR")'
}

# measure SCENARIO VARIANT CLIENT SERVER SERVER_IP
measure() {
    local s=$1 v=$2 c=$3 sv=$4 ip=$5 r res
    ip netns exec "$P-$sv" iperf3 -s -D --pidfile "$RUN/iperf3-$sv.pid" || die "iperf3 server"
    sleep 0.3
    for _ in $(seq 1 40); do ip netns exec "$P-$c" ping -c 1 -W 1 "$ip" >/dev/null 2>&1 && break; sleep 0.25; done
    ip netns exec "$P-$c" ping -c 20 -i 0.05 -q "$ip" >/dev/null 2>&1
    for r in $(seq 1 "$REPS"); do
        res=$(iperf_tcp "$c" "$ip"); record "$s" "$v" tcp1 "$res"; log "$s $v rep$r tcp x1: $res Gbit/s"
        sleep 0.5
        res=$(iperf_tcp "$c" "$ip" -P 4); record "$s" "$v" tcp4 "$res"; log "$s $v rep$r tcp x4: $res Gbit/s"
        sleep 0.5
        res=$(ip netns exec "$P-$c" ping -c "$PINGS" -i 0.01 -q "$ip" 2>/dev/null | awk -F'[/ ]' '/^rtt/{printf "%.0f", $8*1000}')
        record "$s" "$v" rtt_us "${res:-ERR}"; log "$s $v rep$r ping avg: ${res:-ERR} us"
    done
    kill "$(cat "$RUN/iperf3-$sv.pid")" 2>/dev/null
}

# ---------------------------------------------------------------- scenarios
l2_kernel() {
    mkns sw c1 c2
    ip -n "$P-sw" link add br0 type bridge && ip -n "$P-sw" link set br0 up
    veth c1 eth0 sw p1 1500; veth c2 eth0 sw p2 1500
    ip -n "$P-sw" link set p1 master br0; ip -n "$P-sw" link set p2 master br0
    ip -n "$P-c1" addr add 10.77.0.2/24 dev eth0; ip -n "$P-c2" addr add 10.77.0.3/24 dev eth0
    measure l2 kernel c1 c2 10.77.0.3
    cleanup
}
l2_vswitch() {
    mkns sw c1 c2
    vs_start sw
    vs sw network create bench --subnet 10.77.0.0/24
    vs sw network connect bench --netns "$P-c1" --ip 10.77.0.2
    vs sw network connect bench --netns "$P-c2" --ip 10.77.0.3
    measure l2 vswitch c1 c2 10.77.0.3
    cleanup
}

for s in $SCENARIOS; do
    case $s in
        l2) l2_kernel; l2_vswitch ;;
        *) die "unknown scenario $s" ;;
    esac
done

# ---------------------------------------------------------------- report
python3 - "$RAW" "$REPS" "$TCP_T" <<'PYEOF'
import sys, statistics, collections, platform, os
raw, reps, secs = sys.argv[1], sys.argv[2], sys.argv[3]
vals = collections.defaultdict(list)
for line in open(raw):
    s, v, m, x = line.rstrip("\n").split("\t")
    try: vals[(s, v, m)].append(float(x))
    except ValueError: pass
def med(k):
    return statistics.median(vals[k]) if vals.get(k) else None
names = {"tcp1": "TCP x1 Gbit/s", "tcp4": "TCP x4 Gbit/s", "rtt_us": "ping RTT us"}
refs = {"l2": "Linux bridge"}
print(f"\nvswitch lab bench: kernel {platform.release()}, {os.cpu_count()} CPUs; median of {reps} runs, iperf3 -t {secs}\n")
print("| scenario | workload | kernel | vswitch | vswitch / kernel |")
print("|---|---|---|---|---|")
for s in dict.fromkeys(k[0] for k in vals):
    for m in ("tcp1", "tcp4", "rtt_us"):
        k, w = med((s, "kernel", m)), med((s, "vswitch", m))
        ratio = f"{w / k:.2f}x" if k and w else "-"
        f = (lambda x: "-" if x is None else (f"{x:.0f}" if m == "rtt_us" else f"{x:.2f}"))
        print(f"| {s} ({refs.get(s, s)}) | {names[m]} | {f(k)} | {f(w)} | {ratio} |")
PYEOF
