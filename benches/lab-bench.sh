#!/usr/bin/env bash
# lab-bench.sh -- vswitch against the Linux kernel and Open vSwitch, in one run, on this
# machine.
#
# For each scenario it builds every variant from scratch in network namespaces named
# vsb<pid>-*, measures it with the same iperf3 and ping workloads (REPS times), tears it
# down, and finally writes the report: a table with the medians and the ratios
# vswitch / kernel and vswitch / OVS (printed, and in OUT_DIR/latest.md + latest.csv)
# and a bar chart (OUT_DIR/latest.svg).
#
# Scenarios (one file each in benches/lab/):
#   l2       two containers on one host:        Linux bridge | OVS | OVS+TSO | ports | vswitch
#   overlay  two hosts over an underlay veth:   kernel vxlan + bridge | OVS vxlan | OVS+TSO
#                                               (OVS 3.3+) | ports | vswitch
#   nat      a container reaching an outside namespace that has no route back to it:
#            kernel routing + iptables MASQUERADE | vswitch's NAT
# OVS is Open vSwitch's userspace datapath (datapath_type=netdev), with and without
# other_config:userspace-tso-enable=true, one private instance per namespace. "ports" is
# vswitch's port layer with no switch (vswitch/examples/port_forward.rs) between the two
# veths: how much of the gap to the kernel is port I/O, how much the switch. In the
# overlay scenario "ports" is the same for VXLAN: vswitch's ports, split and coalescing
# code on each host with no switch (vswitch/examples/vtep_forward.rs). "vswitch-wN" is
# vswitch with --workers N: the report sets it against the daemon's default number of
# workers (one per CPU), which is how that default was chosen on the 2-CPU development
# machine: --workers 2 against 1 with four streams (vswitch/src/daemon/workers.rs).
# "vswitch-bpN" is vswitch with [datapath] busy_poll_us = N: a worker keeps polling for N
# us after its last frame instead of sleeping, which trades a busy CPU while traffic
# flows for the round trip (the default sleeps; the report sets the two side by side).
#
# Usage:  sudo benches/lab-bench.sh            (builds vswitch in release mode first)
# Knobs:  SCENARIOS="l2 overlay nat"
#         VARIANTS="kernel ovs ovs-tso ports vswitch vswitch-w1 vswitch-bp10000"
#         REPS=3 TCP_T=10 UDP_T=3 PINGS=200  VSWITCH=path/to/vswitch
#         PORT_FORWARD=path/to/port_forward, VTEP_FORWARD=path/to/vtep_forward (the
#         "ports" variant's forwarders; built with vswitch when VSWITCH is not given)
#         WORKERS=N (the "vswitch" variant runs --workers N; default: the daemon's own
#         default, which the "vswitch-wN" variants are measured against)
#         OUT_DIR=benches/results (where latest.md, latest.csv, latest.svg go)
#         NOTE="..." (a remark printed in the report and on the chart, e.g. "smoke run")
# Smoke:  REPS=1 TCP_T=2 UDP_T=1 PINGS=20 OUT_DIR=/tmp/smoke sudo -E benches/lab-bench.sh
set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB=$ROOT/benches/lab
REPS=${REPS:-3}
TCP_T=${TCP_T:-10}
UDP_T=${UDP_T:-3}
PINGS=${PINGS:-200}
SCENARIOS=${SCENARIOS:-"l2 overlay nat"}
VARIANTS=${VARIANTS:-"kernel ovs ovs-tso ports vswitch vswitch-w1 vswitch-bp10000"}
OUT_DIR=${OUT_DIR:-$ROOT/benches/results}
P="vsb$$"
RUN=$(mktemp -d /tmp/vswitch-bench.XXXXXX)
RAW="$RUN/raw.tsv"
META="$RUN/meta.tsv"

. "$LAB/common.sh"
. "$LAB/ovs.sh"
. "$LAB/l2.sh"
. "$LAB/overlay.sh"
. "$LAB/nat.sh"
trap 'cleanup; rm -rf "$RUN"' EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || die "run as root (network namespaces)"
for t in ip iperf3 ping ethtool python3; do
    command -v $t >/dev/null || die "$t is missing (apt-get install iproute2 iperf3 iputils-ping ethtool python3)"
done
for s in $SCENARIOS; do
    case $s in l2 | overlay | nat) ;; *) die "unknown scenario $s (have: l2 overlay nat)" ;; esac
done
for v in $VARIANTS; do
    case $v in
    kernel | ovs | ovs-tso | ports | vswitch) ;;
    vswitch-w*) [[ ${v#vswitch-w} =~ ^[1-9][0-9]?$ ]] && [ "${v#vswitch-w}" -le 64 ] || die "variant $v: say a number of workers, 1-64 (vswitch-w2)" ;;
    vswitch-bp*) [[ ${v#vswitch-bp} =~ ^[1-9][0-9]{0,4}$ ]] && [ "${v#vswitch-bp}" -le 10000 ] || die "variant $v: say a busy-poll window in microseconds, 1-10000 (vswitch-bp10000)" ;;
    *) die "unknown variant $v (have: kernel ovs ovs-tso ports vswitch vswitch-wN vswitch-bpN)" ;;
    esac
done

if [ -z "${VSWITCH:-}" ]; then
    log "building vswitch (release)"
    (cd "$ROOT" && cargo build --release -q -p vswitch --bin vswitch --example port_forward --example vtep_forward) || die "build failed"
    VSWITCH="${CARGO_TARGET_DIR:-$ROOT/target}/release/vswitch"
    PORT_FORWARD=${PORT_FORWARD:-"${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/port_forward"}
    VTEP_FORWARD=${VTEP_FORWARD:-"${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/vtep_forward"}
fi
[ -x "$VSWITCH" ] || die "no vswitch binary at $VSWITCH"
case " $VARIANTS " in
*" ports "*)
    case " $SCENARIOS " in *" l2 "*) [ -x "${PORT_FORWARD:-}" ] ||
        die "no port_forward binary at '${PORT_FORWARD:-}' (give PORT_FORWARD=path, or leave VSWITCH unset to build it)" ;;
    esac
    case " $SCENARIOS " in *" overlay "*) [ -x "${VTEP_FORWARD:-}" ] ||
        die "no vtep_forward binary at '${VTEP_FORWARD:-}' (give VTEP_FORWARD=path, or leave VSWITCH unset to build it)" ;;
    esac
    ;;
esac

: > "$RAW"

# Repetitions alternate between the variants (kernel, OVS, vswitch, kernel, ...), each
# on a setup of its own: the machine's drift over a run (its first minutes are often
# the fastest) then weighs on every variant alike instead of on whichever ran first.
for s in $SCENARIOS; do
    for REP in $(seq 1 "$REPS"); do
        for v in $VARIANTS; do run_variant "$s" "$v"; done
    done
done

# ---------------------------------------------------------------- report
version() { "$@" 2>/dev/null | head -1 | awk '{print $NF}'; }
{
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'cpu\t%s\n' "$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
    printf 'cores\t%s\n' "$(nproc)"
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'vswitch\t%s\n' "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
    printf 'ovs\t%s\n' "$(version ovs-vswitchd --version)"
    printf 'iperf3\t%s\n' "$(iperf3 --version 2>/dev/null | head -1 | awk '{print $2}')"
    [ -n "${NOTE:-}" ] && printf 'note\t%s\n' "$NOTE"
    printf 'reps\t%s\ntcp_t\t%s\nudp_t\t%s\npings\t%s\n' "$REPS" "$TCP_T" "$UDP_T" "$PINGS"
} > "$META"
mkdir -p "$OUT_DIR"
python3 "$LAB/report.py" "$RAW" "$META" "$OUT_DIR/latest.md" "$OUT_DIR/latest.csv" || die "report failed"
python3 "$LAB/chart.py" "$OUT_DIR/latest.csv" "$META" "$OUT_DIR/latest.svg" || die "chart failed"
log "report: $OUT_DIR/latest.md, $OUT_DIR/latest.csv, $OUT_DIR/latest.svg"
