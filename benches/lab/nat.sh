# nat.sh -- scenario "nat": a container reaching an outside namespace (sourced by lab-bench.sh).
#
#   c1 (10.99.0.2) --veth-- h (gateway 10.99.0.1; 10.66.0.1 on ext0) --veth-- ext (10.66.0.2)
#
# ext has no route back to 10.99.0.0/24: traffic only works if h masquerades it.
# kernel:  routing + iptables MASQUERADE on h;  vswitch: its NAT on an uplink it owns
# (vswitch-wN: the same with N workers).
# No OVS variant: OVS's userspace NAT needs a hand-written router (ARP, MAC rewrite,
# ct(nat) flows), which would measure our flow table more than OVS.

nat_kernel() {
    command -v iptables >/dev/null || { log "iptables missing (apt-get install iptables)"; return 1; }
    mkns h c1 ext
    veth c1 eth0 h ve0 1500 && veth h ext0 ext eth0 1500 || return 1
    ip -n "$P-c1" addr add 10.99.0.2/24 dev eth0; ip -n "$P-c1" route add default via 10.99.0.1
    ip -n "$P-h" addr add 10.99.0.1/24 dev ve0; ip -n "$P-h" addr add 10.66.0.1/24 dev ext0
    ip -n "$P-ext" addr add 10.66.0.2/24 dev eth0
    ip netns exec "$P-h" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$P-h" iptables -t nat -A POSTROUTING -s 10.99.0.0/24 -o ext0 -j MASQUERADE || return 1
    measure nat kernel c1 ext 10.66.0.2
}

# nat_vswitch_as VARIANT: vswitch (with WORKERS workers: vswitch-wN; busy polling: vswitch-bpN)
nat_vswitch_as() {
    mkns h c1 ext
    veth h ext0 ext eth0 1500 || return 1
    ip -n "$P-ext" addr add 10.66.0.2/24 dev eth0
    mkdir -p "$RUN/h"
    printf '[uplink]\ninterface = "ext0"\naddress = "10.66.0.1/24"\ngateway = "10.66.0.2"\n' > "$RUN/h/vswitch.toml"
    vs_start h "$RUN/h/vswitch.toml" || return 1
    vs h network create blue --subnet 10.99.0.0/24 || return 1
    vs h network connect blue --netns "$P-c1" --ip 10.99.0.2 || return 1
    measure nat "$1" c1 ext 10.66.0.2
}
nat_vswitch() { nat_vswitch_as vswitch; }
