//! What the metrics page says: every counter the daemon keeps, as Prometheus families.

use fdb::PortId;

use super::manager::Manager;
use super::metrics::Page;
use crate::datapath::counters::DropReason;

impl Manager {
    /// The whole metrics page.
    pub fn metrics(&self) -> String {
        let mut p = Page::default();
        self.port_metrics(&mut p);
        let f = self.fdb.counters();
        p.single(
            "vswitch_fdb_entries",
            "gauge",
            "MACs in the forwarding database.",
            f.entries,
        );
        p.single(
            "vswitch_fdb_static_entries",
            "gauge",
            "Static MACs in the forwarding database.",
            f.static_entries,
        );
        p.single(
            "vswitch_fdb_max_entries",
            "gauge",
            "Limit on learned MACs.",
            f.max_entries,
        );
        p.single(
            "vswitch_fdb_learned_total",
            "counter",
            "MACs learned.",
            f.learned,
        );
        p.single(
            "vswitch_fdb_moved_total",
            "counter",
            "MACs seen at a new location.",
            f.moved,
        );
        p.single(
            "vswitch_fdb_expired_total",
            "counter",
            "Learned MACs aged out.",
            f.expired,
        );
        p.single(
            "vswitch_fdb_refused_total",
            "counter",
            "New MACs refused at a limit.",
            f.refused,
        );
        p.single(
            "vswitch_ports_lost_total",
            "counter",
            "Ports whose interface was deleted under the switch.",
            self.ports_lost,
        );
        self.vxlan_metrics(&mut p);
        self.nat_metrics(&mut p);
        type Get = fn(&crate::datapath::worker::WorkerCounters) -> f64;
        let families: [(&str, &str, Get); 3] = [
            (
                "vswitch_worker_busy_seconds_total",
                "Time the worker spent working (not waiting).",
                |w| w.busy_ns.get() as f64 / 1e9,
            ),
            (
                "vswitch_worker_wakeups_total",
                "Times the worker woke up.",
                |w| w.wakeups.get() as f64,
            ),
            (
                "vswitch_worker_received_packets_total",
                "Frames and datagrams the worker read from its queues.",
                |w| w.received.get() as f64,
            ),
        ];
        for (name, help, get) in families {
            p.family(name, "counter", help);
            for (k, w) in self.workers.counters().iter().enumerate() {
                p.sample(name, &[("worker", &k.to_string())], get(w));
            }
        }
        p.finish()
    }

    fn port_metrics(&self, p: &mut Page) {
        let mut ports: Vec<(&PortId, &super::manager::Attached)> = self.ports.iter().collect();
        ports.sort_by_key(|(id, _)| **id);
        type Get = fn(&crate::datapath::counters::PortCounters) -> u64;
        let families: [(&str, &str, Get); 4] = [
            (
                "vswitch_port_receive_packets_total",
                "Frames received on the port.",
                |c| c.rx_packets.get(),
            ),
            (
                "vswitch_port_receive_bytes_total",
                "Bytes received on the port.",
                |c| c.rx_bytes.get(),
            ),
            (
                "vswitch_port_transmit_packets_total",
                "Frames sent out of the port.",
                |c| c.tx_packets.get(),
            ),
            (
                "vswitch_port_transmit_bytes_total",
                "Bytes sent out of the port.",
                |c| c.tx_bytes.get(),
            ),
        ];
        for (name, help, get) in families {
            p.family(name, "counter", help);
            for (id, a) in &ports {
                let port = id.0.to_string();
                p.sample(
                    name,
                    &[
                        ("port", &port),
                        ("network", &a.network),
                        ("endpoint", &a.endpoint),
                    ],
                    a.counters.sum(get),
                );
            }
        }
        p.family(
            "vswitch_port_drops_total",
            "counter",
            "Frames dropped, by port and reason.",
        );
        for (id, a) in &ports {
            let port = id.0.to_string();
            for r in DropReason::ALL {
                let n = a.counters.drops(r);
                if n > 0 {
                    let labels = [
                        ("port", port.as_str()),
                        ("network", &a.network),
                        ("endpoint", &a.endpoint),
                        ("reason", r.name()),
                    ];
                    p.sample("vswitch_port_drops_total", &labels, n);
                }
            }
        }
    }

    fn vxlan_metrics(&self, p: &mut Page) {
        let Some(t) = &self.tunnel_counters else {
            return;
        };
        p.single(
            "vswitch_vxlan_receive_datagrams_total",
            "counter",
            "VXLAN datagrams received.",
            t.sum(|c| c.rx_datagrams.get()),
        );
        p.single(
            "vswitch_vxlan_receive_bytes_total",
            "counter",
            "VXLAN payload bytes received.",
            t.sum(|c| c.rx_bytes.get()),
        );
        p.single(
            "vswitch_vxlan_transmit_datagrams_total",
            "counter",
            "VXLAN datagrams sent.",
            t.sum(|c| c.tx_datagrams.get()),
        );
        p.single(
            "vswitch_vxlan_transmit_bytes_total",
            "counter",
            "VXLAN payload bytes sent.",
            t.sum(|c| c.tx_bytes.get()),
        );
        p.single(
            "vswitch_vxlan_transmit_dropped_total",
            "counter",
            "VXLAN sends refused or would block.",
            t.sum(|c| c.tx_dropped.get()),
        );
        p.family(
            "vswitch_vxlan_drops_total",
            "counter",
            "VXLAN datagrams dropped on receipt, by reason.",
        );
        for (reason, n) in t.decap_drops() {
            p.sample("vswitch_vxlan_drops_total", &[("reason", reason)], n);
        }
        p.family(
            "vswitch_vxlan_inner_drops_total",
            "counter",
            "Frames decapsulated from a peer that the switch then dropped, by reason.",
        );
        for (reason, n) in t.inner_drops() {
            p.sample("vswitch_vxlan_inner_drops_total", &[("reason", reason)], n);
        }
        let peers = t.peers();
        type Get = fn(&crate::datapath::tunnel::PeerStats) -> u64;
        let families: [(&str, &str, Get); 4] = [
            (
                "vswitch_vxlan_peer_receive_datagrams_total",
                "Datagrams received from a peer.",
                |c| c.rx_datagrams,
            ),
            (
                "vswitch_vxlan_peer_receive_bytes_total",
                "Bytes received from a peer.",
                |c| c.rx_bytes,
            ),
            (
                "vswitch_vxlan_peer_transmit_datagrams_total",
                "Datagrams sent to a peer.",
                |c| c.tx_datagrams,
            ),
            (
                "vswitch_vxlan_peer_transmit_bytes_total",
                "Bytes sent to a peer.",
                |c| c.tx_bytes,
            ),
        ];
        for (name, help, get) in families {
            p.family(name, "counter", help);
            for (ip, c) in &peers {
                p.sample(name, &[("peer", &ip.to_string())], get(c));
            }
        }
    }

    fn nat_metrics(&self, p: &mut Page) {
        let Some(nat) = &self.nat else { return };
        let c = nat.counters();
        p.single(
            "vswitch_conntrack_entries",
            "gauge",
            "Connections tracked.",
            c.entries,
        );
        p.single(
            "vswitch_conntrack_limit",
            "gauge",
            "Most connections tracked at once.",
            c.limit,
        );
        p.single(
            "vswitch_conntrack_created_total",
            "counter",
            "Connections created.",
            c.created,
        );
        p.single(
            "vswitch_conntrack_removed_total",
            "counter",
            "Connections removed (expired or their endpoint left).",
            c.removed,
        );
        p.family(
            "vswitch_conntrack_refused_total",
            "counter",
            "New flows refused, by reason.",
        );
        p.sample(
            "vswitch_conntrack_refused_total",
            &[("reason", "table_full")],
            c.refused_table_full,
        );
        p.sample(
            "vswitch_conntrack_refused_total",
            &[("reason", "ports_exhausted")],
            c.refused_ports_exhausted,
        );
        p.sample(
            "vswitch_conntrack_refused_total",
            &[("reason", "tuple_in_use")],
            c.refused_tuple_in_use,
        );
        p.family(
            "vswitch_nat_ports_used",
            "gauge",
            "External ports (ICMP identifiers) in use, by protocol.",
        );
        for u in &c.ports {
            p.sample(
                "vswitch_nat_ports_used",
                &[("proto", u.proto.name())],
                u.used,
            );
        }
        p.family(
            "vswitch_nat_ports_capacity",
            "gauge",
            "External ports in the range, by protocol.",
        );
        for u in &c.ports {
            p.sample(
                "vswitch_nat_ports_capacity",
                &[("proto", u.proto.name())],
                u.capacity,
            );
        }
        let router = self.router_counters.snapshot();
        p.family(
            "vswitch_router_drops_total",
            "counter",
            "Frames the router dropped, by reason (NAT reasons prefixed nat_).",
        );
        for (k, v) in router["drops"].as_object().into_iter().flatten() {
            p.sample(
                "vswitch_router_drops_total",
                &[("reason", k)],
                v.as_u64().unwrap_or(0),
            );
        }
        for (k, v) in router["nat_drops"].as_object().into_iter().flatten() {
            p.sample(
                "vswitch_router_drops_total",
                &[("reason", &format!("nat_{k}"))],
                v.as_u64().unwrap_or(0),
            );
        }
        for (name, key, help) in [
            (
                "vswitch_router_masqueraded_packets_total",
                "masqueraded",
                "Packets masqueraded out of the uplink.",
            ),
            (
                "vswitch_router_inbound_packets_total",
                "inbound",
                "Packets translated in from the uplink (replies, published ports, hairpin).",
            ),
            (
                "vswitch_router_routed_packets_total",
                "routed",
                "Packets routed between local networks.",
            ),
        ] {
            p.single(name, "counter", help, router[key].as_u64().unwrap_or(0));
        }
    }
}
