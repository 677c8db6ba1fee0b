# ovs.sh -- private Open vSwitch instances for lab-bench.sh (sourced, not run).
#
# OVS runs with its userspace datapath (datapath_type=netdev): ovs-vswitchd reads the
# veth ends it is given with AF_PACKET, as vswitch does, so the comparison is userspace
# against userspace. Each namespace that needs a switch gets its own ovsdb-server and
# ovs-vswitchd with their database, sockets, pid files and logs under $RUN/ovs-NS; the
# system's OVS service (if any) is never touched. `ovs_stop_all` (called by `cleanup`,
# hence by the EXIT trap) stops every instance this run started.

OVS_SCHEMA=${OVS_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}
OVS_STARTED=()

ovs_available() {
    command -v ovs-vswitchd >/dev/null && command -v ovsdb-server >/dev/null &&
        command -v ovs-vsctl >/dev/null && [ -r "$OVS_SCHEMA" ]
}

ovs_dir() { echo "$RUN/ovs-$1"; }
# ovsctl NS ARGS...: ovs-vsctl against the instance of namespace $P-NS
ovsctl() { local d; d=$(ovs_dir "$1"); shift; ovs-vsctl --db=unix:"$d/db.sock" --timeout=20 "$@"; }

# ovs_start NS [tso]: database and switch daemon for namespace $P-NS; with `tso`,
# other_config:userspace-tso-enable=true is set before ovs-vswitchd reads its config.
ovs_start() {
    local ns=$1 tso=${2:-} d
    d=$(ovs_dir "$ns")
    ovs_available || { log "Open vSwitch is not installed (apt-get install openvswitch-switch)"; return 1; }
    mkdir -p "$d"
    ovsdb-tool create "$d/conf.db" "$OVS_SCHEMA" || return 1
    OVS_STARTED+=("$ns")
    OVS_RUNDIR=$d OVS_LOGDIR=$d OVS_DBDIR=$d ip netns exec "$P-$ns" \
        ovsdb-server "$d/conf.db" -vconsole:off --remote=punix:"$d/db.sock" --pidfile="$d/ovsdb-server.pid" \
        --unixctl="$d/ovsdb-server.ctl" --log-file="$d/ovsdb-server.log" --detach --no-chdir || return 1
    ovsctl "$ns" --no-wait init || return 1
    if [ "$tso" = tso ]; then
        ovsctl "$ns" --no-wait set Open_vSwitch . other_config:userspace-tso-enable=true || return 1
    fi
    OVS_RUNDIR=$d OVS_LOGDIR=$d OVS_DBDIR=$d ip netns exec "$P-$ns" \
        ovs-vswitchd unix:"$d/db.sock" -vconsole:off --pidfile="$d/ovs-vswitchd.pid" \
        --unixctl="$d/ovs-vswitchd.ctl" --log-file="$d/ovs-vswitchd.log" --detach --no-chdir || return 1
}

# ovs_stop_all: asks each instance to exit, makes sure its processes are gone, and
# removes its files (the next variant starts from an empty database).
ovs_stop_all() {
    local ns d f p
    for ns in "${OVS_STARTED[@]}"; do
        d=$(ovs_dir "$ns")
        ovs-appctl -t "$d/ovs-vswitchd.ctl" exit >/dev/null 2>&1
        ovs-appctl -t "$d/ovsdb-server.ctl" exit >/dev/null 2>&1
        for f in "$d/ovs-vswitchd.pid" "$d/ovsdb-server.pid"; do
            p=$(cat "$f" 2>/dev/null) || continue
            kill "$p" 2>/dev/null
            for _ in $(seq 1 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$p" 2>/dev/null
        done
        rm -rf "$d"
    done
    OVS_STARTED=()
}

# ovs_bridge NS BRIDGE: a bridge on the userspace datapath, its internal port up
ovs_bridge() {
    ovsctl "$1" add-br "$2" -- set bridge "$2" datapath_type=netdev || return 1
    ip -n "$P-$1" link set "$2" up
}
