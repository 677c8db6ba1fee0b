# overlay.sh -- scenario "overlay": two hosts over an underlay veth (sourced by lab-bench.sh).
#
#   c1 (10.88.0.17, MTU 1450) -- h1 ==ul0 192.168.77.1 -- 192.168.77.2 ul0== h2 -- c2 (10.88.0.33)
#                                   VXLAN VNI 42, UDP 4789, underlay MTU 1500
#
# kernel:  vxlan device + Linux bridge on each host (the flannel-style setup);
# ovs:     Open vSwitch userspace datapath with native tunnelling: br-int holds the
#          container's veth and a vxlan port, br-phy holds the underlay veth and the
#          underlay address (OVS routes and ARPs for the tunnel itself);
# ovs-tso: the same with userspace TSO, only where OVS can put TSO frames into a tunnel
#          (3.3 and later; 3.1 drops them);
# ports:   vswitch's ports and offload code with no switch on each host
#          (vswitch/examples/vtep_forward.rs): the container's veth bridged to the peer;
# vswitch: vswitch on each host, one peer each (vswitch-wN: N workers each).

# overlay_base [underlay-only]: namespaces, the underlay link and (unless underlay-only:
# vswitch makes its own) the containers' veths into their hosts
overlay_base() {
    mkns h1 h2 c1 c2 || return 1
    veth h1 ul0 h2 ul0 1500 || return 1
    [ "${1:-}" = underlay-only ] && return 0
    veth c1 eth0 h1 ve0 1450 && veth c2 eth0 h2 ve0 1450 || return 1
    ip -n "$P-c1" addr add 10.88.0.17/24 dev eth0
    ip -n "$P-c2" addr add 10.88.0.33/24 dev eth0
}

overlay_kernel() {
    overlay_base || return 1
    local i o
    for i in 1 2; do
        o=$((3 - i))
        ip -n "$P-h$i" addr add 192.168.77.$i/24 dev ul0
        ip -n "$P-h$i" link add vxlan42 type vxlan id 42 local 192.168.77.$i remote 192.168.77.$o dstport 4789 dev ul0 || return 1
        ip -n "$P-h$i" link add br0 type bridge
        ip -n "$P-h$i" link set vxlan42 master br0 up
        ip -n "$P-h$i" link set ve0 master br0
        ip -n "$P-h$i" link set br0 up
    done
    measure overlay kernel c1 c2 10.88.0.33
}

# overlay_ovs_common VARIANT [tso]
overlay_ovs_common() {
    overlay_base || return 1
    local i o
    for i in 1 2; do
        o=$((3 - i))
        ovs_start "h$i" "${2:-}" || return 1
        ovs_bridge "h$i" br-phy && ovs_bridge "h$i" br-int || return 1
        ovsctl "h$i" add-port br-phy ul0 || return 1
        ip -n "$P-h$i" addr add 192.168.77.$i/24 dev br-phy
        ovsctl "h$i" add-port br-int ve0 -- add-port br-int vx42 -- set interface vx42 type=vxlan \
            options:local_ip=192.168.77.$i options:remote_ip=192.168.77.$o options:key=42 \
            options:dst_port=4789 || return 1
        if [ -z "${2:-}" ]; then tx_off "c$i" eth0 || return 1; fi
    done
    measure overlay "$1" c1 c2 10.88.0.33
}
overlay_ovs() { overlay_ovs_common ovs; }
overlay_ovs_tso() {
    local v
    v=$(ovs-vswitchd --version 2>/dev/null | awk 'NR==1{print $NF}')
    if [ "$(printf '%s\n3.3\n' "$v" | sort -V | head -1)" != 3.3 ]; then
        log "overlay ovs-tso: Open vSwitch $v cannot put TSO frames into a tunnel (3.3+): skipped"
        record overlay ovs-tso status "not available: OVS $v has no tunnel TSO"
        return 0
    fi
    overlay_ovs_common ovs-tso tso
}

overlay_ports() {
    overlay_base || return 1
    local i o
    for i in 1 2; do
        o=$((3 - i))
        ip -n "$P-h$i" addr add 192.168.77.$i/24 dev ul0
        switch_end "h$i" ve0 || return 1
        ip netns exec "$P-h$i" "$VTEP_FORWARD" ve0 192.168.77.$i 192.168.77.$o 42 1450 ul0 \
            2> "$RUN/vtep_forward-h$i.log" &
    done
    measure overlay ports c1 c2 10.88.0.33 ||
        { log "vtep_forward said: $(cat "$RUN"/vtep_forward-h*.log)"; return 1; }
}

# overlay_vswitch_as VARIANT: vswitch (with WORKERS workers: vswitch-wN; busy polling: vswitch-bpN)
overlay_vswitch_as() {
    overlay_base underlay-only || return 1
    local i o
    for i in 1 2; do
        o=$((3 - i))
        ip -n "$P-h$i" addr add 192.168.77.$i/24 dev ul0
        mkdir -p "$RUN/h$i"
        printf '[underlay]\nlocal = "192.168.77.%s"\ninterface = "ul0"\n' "$i" > "$RUN/h$i/vswitch.toml"
        vs_start "h$i" "$RUN/h$i/vswitch.toml" || return 1
        vs "h$i" peer add 192.168.77.$o || return 1
        vs "h$i" network create blue --driver overlay --vni 42 --subnet 10.88.0.0/24 --ip-range 10.88.0.$((16 * i))/28 || return 1
        vs "h$i" network connect blue --netns "$P-c$i" --ip 10.88.0.$((16 * i + 1)) || return 1
    done
    measure overlay "$1" c1 c2 10.88.0.33
}
overlay_vswitch() { overlay_vswitch_as vswitch; }
