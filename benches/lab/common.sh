# common.sh -- namespaces, cleanup and measuring for lab-bench.sh (sourced, not run).
#
# Everything this run creates is named $P-* (namespaces) or lives under $RUN (daemon
# state, OVS databases, iperf3 pid files); `cleanup` removes exactly that, and the main
# script calls it from its EXIT trap, so an interrupted run leaves nothing behind.

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }

our_ns() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" || true; }

# Stops every daemon of the current variant and deletes its namespaces.
cleanup() {
    local ns p
    ovs_stop_all
    for ns in $(our_ns); do for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done; done
    sleep 0.3
    for ns in $(our_ns); do for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done; done
    for ns in $(our_ns); do ip netns del "$ns" 2>/dev/null; done
    return 0
}

mkns() { local n; for n in "$@"; do ip netns add "$P-$n" && ip -n "$P-$n" link set lo up || return 1; done; }

# veth NS_A DEV_A NS_B DEV_B MTU: created inside the namespaces, never in the root one.
veth() {
    ip -n "$P-$1" link add "$2" type veth peer name "$4" netns "$P-$3" || return 1
    ip -n "$P-$1" link set "$2" mtu "$5" up
    ip -n "$P-$3" link set "$4" mtu "$5" up
}

# switch_end NS DEV: set up a veth end as vswitch sets up the switch ends it makes (the
# largest MTU a veth takes, no IPv6), for the "ports" variants that stand in for it.
switch_end() {
    ip -n "$P-$1" link set "$2" mtu 65535 &&
        ip netns exec "$P-$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
}

# tx_off NS DEV...: no transmit checksum offload (hence no TSO) on these devices. For the
# OVS variants without userspace TSO: netdev-linux cannot forward the partial-checksum
# super-frames a veth hands over with offloads on, and TCP stalls.
tx_off() {
    local ns=$1 d; shift
    for d in "$@"; do ip netns exec "$P-$ns" ethtool -K "$d" tx off >/dev/null 2>&1 || return 1; done
}

# ---------------------------------------------------------------- vswitch
# vs_start HOST [CONFIG]: the daemon in namespace $P-HOST, files under $RUN/HOST. With
# BUSY_POLL_US set (the vswitch-bpN variants), CONFIG gains [datapath] busy_poll_us.
vs_start() {
    local ns=$P-$1 d=$RUN/$1 cfg=${2:-}
    # Every repetition starts from an empty state: no networks left from the last one.
    rm -rf "$d/state"
    mkdir -p "$d"
    if [ -n "${BUSY_POLL_US:-}" ]; then
        # A second [datapath] table would make the daemon refuse the file.
        if [ -n "$cfg" ] && grep -q '^\[datapath\]' "$cfg"; then
            log "vs_start: $cfg has a [datapath] table already; cannot add busy_poll_us"
            return 1
        fi
        { [ -n "$cfg" ] && cat "$cfg"; printf '\n[datapath]\nbusy_poll_us = %s\n' "$BUSY_POLL_US"; } > "$d/busy-poll.toml"
        cfg=$d/busy-poll.toml
    fi
    VS_WORKERS=
    ip netns exec "$ns" "$VSWITCH" run --state-dir "$d/state" --socket "$d/sock" ${cfg:+--config "$cfg"} ${WORKERS:+--workers "$WORKERS"} 2> "$d/log" &
    for _ in $(seq 1 100); do
        if "$VSWITCH" --socket "$d/sock" network ls >/dev/null 2>&1; then
            # The daemon says how many workers it started ("1 worker", "2 workers, pinned").
            VS_WORKERS=$(grep -o '[0-9]\+ workers\?' "$d/log" | head -1 | cut -d' ' -f1)
            return 0
        fi
        sleep 0.05
    done
    log "vswitch did not start in $ns: $(cat "$d/log")"
    return 1
}
vs() { local h=$1; shift; "$VSWITCH" --socket "$RUN/$h/sock" "$@" >/dev/null || { log "vswitch $* failed"; return 1; }; }

# ---------------------------------------------------------------- measuring
# record SCENARIO VARIANT METRIC VALUE -> one line of $RAW
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$RAW"; }

# iperf_tcp CLIENT SERVER_IP ARGS... -> receiver-side Gbit/s, or ERR
iperf_tcp() {
    local c=$1 ip=$2; shift 2
    timeout $((TCP_T + 25)) ip netns exec "$P-$c" iperf3 -c "$ip" -t "$TCP_T" -J "$@" 2>/dev/null |
        python3 -c 'import json,sys
try: print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))
except Exception: print("ERR")'
}

# iperf_udp CLIENT SERVER_IP LEN -> "received-kpps Gbit/s", or "ERR ERR"
iperf_udp() {
    local c=$1 ip=$2 len=$3
    timeout $((UDP_T + 25)) ip netns exec "$P-$c" iperf3 -c "$ip" -u -b 0 -l "$len" -t "$UDP_T" -J 2>/dev/null |
        python3 -c 'import json,sys
try:
    r=json.load(sys.stdin)["end"]["sum_received"]
    print("%.0f %.2f" % ((r["packets"]-r["lost_packets"])/r["seconds"]/1e3, r["bytes"]*8/r["seconds"]/1e9))
except Exception: print("ERR ERR")'
}

# measure SCENARIO VARIANT CLIENT SERVER SERVER_IP: the same workloads for every
# variant, once (repetition $REP; lab-bench.sh rebuilds the setup for each, so the
# variants' repetitions alternate and a drift of the machine hits them all alike)
measure() {
    local s=$1 v=$2 c=$3 sv=$4 ip=$5 r=$REP res ok=0
    ip netns exec "$P-$sv" iperf3 -s -D --pidfile "$RUN/iperf3-$sv.pid" || { log "iperf3 server failed"; return 1; }
    sleep 0.3
    # warm-up: ARP, MAC learning, OVS flow setup
    for _ in $(seq 1 40); do ip netns exec "$P-$c" ping -c 1 -W 1 "$ip" >/dev/null 2>&1 && { ok=1; break; }; sleep 0.25; done
    if [ $ok = 0 ]; then
        log "$s $v: no connectivity to $ip"
        record "$s" "$v" status "no connectivity"
        return 1
    fi
    ip netns exec "$P-$c" ping -c 20 -i 0.05 -q "$ip" >/dev/null 2>&1
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
    case $v in vswitch*) record "$s" "$v" workers "${VS_WORKERS:-ERR}" ;; esac
    record "$s" "$v" status ok
}

# run_variant SCENARIO VARIANT: set up with ${SCENARIO}_${VARIANT} (which calls measure;
# vswitch-wN: ${SCENARIO}_vswitch_as with N workers; vswitch-bpN: the same with
# busy_poll_us = N), then tear down whatever happened. A failed setup is recorded, not
# fatal.
run_variant() {
    local s=$1 v=$2 fn="${1}_${2//-/_}" workers=${WORKERS:-} busy=
    case $v in
        vswitch-w*) fn="${s}_vswitch_as" workers=${v#vswitch-w} ;;
        vswitch-bp*) fn="${s}_vswitch_as" busy=${v#vswitch-bp} ;;
    esac
    if ! declare -F "$fn" >/dev/null; then
        if [ "$REP" = 1 ]; then
            log "$s: no $v variant (skipped)"
            record "$s" "$v" status "not available: benches/lab/$s.sh has no $v variant"
        fi
        return 0
    fi
    log "=== $s / $v (rep $REP)"
    if ! BUSY_POLL_US=$busy WORKERS=$workers "$fn" "$v"; then
        log "$s $v: setup or measurement failed"
        record "$s" "$v" status "setup or measurement failed in rep $REP"
    fi
    cleanup
}
