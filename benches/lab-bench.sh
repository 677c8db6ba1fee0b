#!/usr/bin/env bash
# lab-bench.sh -- vswitch against the Linux kernel, in one run, on this machine.
#
# For each scenario it builds the kernel reference and the vswitch variant from scratch in
# network namespaces named vsb<pid>-*, measures both with the same iperf3 and ping
# workloads (alternating, REPS times), tears them down and prints one table with the
# medians and the ratio vswitch / kernel.
#
# Scenarios:
#   l2       two containers on one host: Linux bridge + veth   vs  vswitch (veth endpoints)
#   overlay  two hosts over an underlay veth (MTU 1500), a container on each (MTU 1450):
#            kernel vxlan + bridge (the flannel-style setup)   vs  vswitch on each host
#   nat      a container reaching an external namespace that has no route back to it:
#            kernel routing + iptables MASQUERADE              vs  vswitch's NAT + uplink
#
# Usage:  sudo benches/lab-bench.sh            (builds vswitch in release mode first)
# Knobs:  SCENARIOS="l2 overlay" REPS=3 TCP_T=10 UDP_T=3 PINGS=200 VSWITCH=path/to/vswitch
set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-3}
TCP_T=${TCP_T:-10}
PINGS=${PINGS:-200}
UDP_T=${UDP_T:-3}
SCENARIOS=${SCENARIOS:-"l2 overlay nat"}
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

# iperf_udp CLIENT SERVER_IP LEN -> received kpps and Gbit/s
iperf_udp() {
    local c=$1 ip=$2 len=$3
    timeout $((UDP_T + 25)) ip netns exec "$P-$c" iperf3 -c "$ip" -u -b 0 -l "$len" -t "$UDP_T" -J 2>/dev/null |
        python3 -c 'import json,sys
try:
    r=json.load(sys.stdin)["end"]["sum_received"]
    print("%.0f %.2f" % ((r["packets"]-r["lost_packets"])/r["seconds"]/1e3, r["bytes"]*8/r["seconds"]/1e9))
except Exception: print("ERR ERR")'
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
        if [ "$s" = overlay ]; then
            res=$(iperf_udp "$c" "$ip" 1400); record "$s" "$v" udp1400_kpps "${res% *}"; record "$s" "$v" udp1400_gbps "${res#* }"
            log "$s $v rep$r udp 1400: ${res% *} kpps ${res#* } Gbit/s"
            sleep 0.5
        fi
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

# two hosts h1, h2 over a veth underlay; containers c1 (on h1), c2 (on h2), MTU 1450
overlay_base() {
    mkns h1 h2 c1 c2
    veth h1 ul0 h2 ul0 1500
    ip -n "$P-h1" addr add 192.168.77.1/24 dev ul0; ip -n "$P-h2" addr add 192.168.77.2/24 dev ul0
}
overlay_kernel() {
    overlay_base
    local i o
    for i in 1 2; do
        o=$((3 - i))
        ip -n "$P-h$i" link add vxlan42 type vxlan id 42 local 192.168.77.$i remote 192.168.77.$o dstport 4789 dev ul0
        ip -n "$P-h$i" link add br0 type bridge
        ip -n "$P-h$i" link set vxlan42 master br0 up
        veth "c$i" eth0 "h$i" ve0 1450
        ip -n "$P-h$i" link set ve0 master br0
        ip -n "$P-h$i" link set br0 up
        ip -n "$P-c$i" addr add 10.88.0.$((16 * i + 1))/24 dev eth0
    done
    measure overlay kernel c1 c2 10.88.0.33
    cleanup
}
overlay_vswitch() {
    overlay_base
    local i o
    for i in 1 2; do
        o=$((3 - i))
        mkdir -p "$RUN/h$i"
        printf '[underlay]\nlocal = "192.168.77.%s"\ninterface = "ul0"\n' "$i" > "$RUN/h$i/vswitch.toml"
        vs_start "h$i" "$RUN/h$i/vswitch.toml"
        vs "h$i" peer add 192.168.77.$o
        vs "h$i" network create blue --driver overlay --vni 42 --subnet 10.88.0.0/24 --ip-range 10.88.0.$((16 * i))/28
        vs "h$i" network connect blue --netns "$P-c$i" --ip 10.88.0.$((16 * i + 1))
    done
    measure overlay vswitch c1 c2 10.88.0.33
    cleanup
}

# container c1 (10.99.0.2) -- host h -- ext0 veth -- ext (10.66.0.2, no route back)
nat_kernel() {
    command -v iptables >/dev/null || { log "iptables missing: no kernel NAT reference (apt-get install iptables)"; return; }
    mkns h c1 ext
    veth c1 eth0 h ve0 1500
    veth h ext0 ext eth0 1500
    ip -n "$P-c1" addr add 10.99.0.2/24 dev eth0; ip -n "$P-c1" route add default via 10.99.0.1
    ip -n "$P-h" addr add 10.99.0.1/24 dev ve0; ip -n "$P-h" addr add 10.66.0.1/24 dev ext0
    ip -n "$P-ext" addr add 10.66.0.2/24 dev eth0
    ip netns exec "$P-h" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$P-h" iptables -t nat -A POSTROUTING -s 10.99.0.0/24 -o ext0 -j MASQUERADE
    measure nat kernel c1 ext 10.66.0.2
    cleanup
}
nat_vswitch() {
    mkns h c1 ext
    veth h ext0 ext eth0 1500
    ip -n "$P-ext" addr add 10.66.0.2/24 dev eth0
    mkdir -p "$RUN/h"
    printf '[uplink]\ninterface = "ext0"\naddress = "10.66.0.1/24"\ngateway = "10.66.0.2"\n' > "$RUN/h/vswitch.toml"
    vs_start h "$RUN/h/vswitch.toml"
    vs h network create blue --subnet 10.99.0.0/24
    vs h network connect blue --netns "$P-c1" --ip 10.99.0.2
    measure nat vswitch c1 ext 10.66.0.2
    cleanup
}

for s in $SCENARIOS; do
    case $s in
        l2) l2_kernel; l2_vswitch ;;
        overlay) overlay_kernel; overlay_vswitch ;;
        nat) nat_kernel; nat_vswitch ;;
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
names = {"tcp1": "TCP x1 Gbit/s", "tcp4": "TCP x4 Gbit/s", "udp1400_kpps": "UDP 1400 B rx kpps",
         "udp1400_gbps": "UDP 1400 B rx Gbit/s", "rtt_us": "ping RTT us"}
refs = {"l2": "Linux bridge", "overlay": "kernel vxlan + bridge", "nat": "kernel MASQUERADE"}
print(f"\nvswitch lab bench: kernel {platform.release()}, {os.cpu_count()} CPUs; median of {reps} runs, iperf3 -t {secs}\n")
print("| scenario | workload | kernel | vswitch | vswitch / kernel |")
print("|---|---|---|---|---|")
for s in dict.fromkeys(k[0] for k in vals):
    for m in ("tcp1", "tcp4", "udp1400_kpps", "udp1400_gbps", "rtt_us"):
        k, w = med((s, "kernel", m)), med((s, "vswitch", m))
        if k is None and w is None:
            continue
        ratio = f"{w / k:.2f}x" if k and w else "-"
        f = (lambda x: "-" if x is None else (f"{x:.0f}" if m in ("rtt_us", "udp1400_kpps") else f"{x:.2f}"))
        print(f"| {s} ({refs.get(s, s)}) | {names[m]} | {f(k)} | {f(w)} | {ratio} |")
PYEOF
