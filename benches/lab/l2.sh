# l2.sh -- scenario "l2": two containers on one host (sourced by lab-bench.sh).
#
#   c1 (10.77.0.2) --veth-- [ switch in namespace sw ] --veth-- c2 (10.77.0.3)
#
# The switch is the Linux bridge (kernel), Open vSwitch's userspace datapath with and
# without userspace TSO (ovs, ovs-tso), vswitch's port layer alone forwarding between
# the two veths (ports: vswitch/examples/port_forward.rs), or vswitch (with its
# default number of workers, or with N: vswitch-wN); everything else is the same.

# l2_base: namespaces and the containers' veths into sw (vswitch makes its own instead)
l2_base() {
    mkns sw c1 c2 || return 1
    veth c1 eth0 sw p1 1500 && veth c2 eth0 sw p2 1500 || return 1
    ip -n "$P-c1" addr add 10.77.0.2/24 dev eth0
    ip -n "$P-c2" addr add 10.77.0.3/24 dev eth0
}

l2_kernel() {
    l2_base || return 1
    ip -n "$P-sw" link add br0 type bridge && ip -n "$P-sw" link set br0 up || return 1
    ip -n "$P-sw" link set p1 master br0 && ip -n "$P-sw" link set p2 master br0 || return 1
    measure l2 kernel c1 c2 10.77.0.3
}

# l2_ovs_common VARIANT [tso]
l2_ovs_common() {
    l2_base || return 1
    ovs_start sw "${2:-}" || return 1
    ovs_bridge sw br0 || return 1
    ovsctl sw add-port br0 p1 -- add-port br0 p2 || return 1
    if [ -z "${2:-}" ]; then tx_off c1 eth0 && tx_off c2 eth0 || return 1; fi
    measure l2 "$1" c1 c2 10.77.0.3
}
l2_ovs() { l2_ovs_common ovs; }
l2_ovs_tso() { l2_ovs_common ovs-tso tso; }

l2_ports() {
    l2_base || return 1
    switch_end sw p1 && switch_end sw p2 || return 1
    ip netns exec "$P-sw" "$PORT_FORWARD" p1 p2 2> "$RUN/port_forward.log" &
    measure l2 ports c1 c2 10.77.0.3 || { log "port_forward said: $(cat "$RUN/port_forward.log")"; return 1; }
}

# l2_vswitch_as VARIANT: vswitch (with WORKERS workers: vswitch-wN; busy polling: vswitch-bpN)
l2_vswitch_as() {
    mkns sw c1 c2 || return 1
    vs_start sw || return 1
    vs sw network create bench --subnet 10.77.0.0/24 || return 1
    vs sw network connect bench --netns "$P-c1" --ip 10.77.0.2 || return 1
    vs sw network connect bench --netns "$P-c2" --ip 10.77.0.3 || return 1
    measure l2 "$1" c1 c2 10.77.0.3
}
l2_vswitch() { l2_vswitch_as vswitch; }
