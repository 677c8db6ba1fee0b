//! Seeds of the `control` target: every request the CLI sends (encoded by the same
//! serde code, newline included, as the server reads them) and broken ones, the state
//! file, responses, daemon configs, lab files, port specs and ranges.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::str::FromStr;

use vswitch::control::api::{Attach, FdbTarget, NetworkConnect, NetworkCreate, Request, Response};
use vswitch::control::state::Driver;

use crate::harness::control::BASE_STATE;

fn line(r: &Request) -> Vec<u8> {
    let mut v = serde_json::to_vec(r).expect("a request encodes");
    v.push(b'\n');
    v
}

/// A literal address, subnet or MAC.
fn parse<T: FromStr>(x: &str) -> T
where
    T::Err: Debug,
{
    x.parse().expect("literal")
}

pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let s = |x: &str| x.to_string();
    let create = NetworkCreate {
        name: s("blue2"),
        subnet: Some(parse("10.90.0.0/24")),
        gateway: Some(parse("10.90.0.254")),
        ip_range: Some(parse("10.90.0.128/25")),
        aux_addresses: BTreeMap::from([(s("router"), parse("10.90.0.2"))]),
        mtu: Some(9000),
        labels: BTreeMap::from([(s("team"), s("net"))]),
        route_to: vec![s("blue")],
        ..NetworkCreate::default()
    };
    let overlay = NetworkCreate {
        name: s("ovl2"),
        driver: Driver::Overlay,
        vni: Some(4242),
        subnet: Some(parse("10.91.0.0/24")),
        mtu: Some(1400),
        ..NetworkCreate::default()
    };
    let connect = NetworkConnect {
        network: s("blue"),
        attach: Attach::Netns(s("ctr1")),
        name: Some(s("web")),
        ip: Some(parse("10.89.0.20")),
        mac: Some(parse("02:42:0a:59:00:14")),
        ifname: Some(s("eth1")),
        aliases: vec![s("www")],
    };
    let requests = [
        ("network_create", Request::NetworkCreate(create)),
        (
            "network_create_default",
            Request::NetworkCreate(NetworkCreate {
                name: s("x"),
                ..NetworkCreate::default()
            }),
        ),
        ("network_create_overlay", Request::NetworkCreate(overlay)),
        ("network_ls", Request::NetworkLs),
        (
            "network_inspect",
            Request::NetworkInspect {
                names: vec![s("blue"), s("ovl")],
            },
        ),
        ("network_connect", Request::NetworkConnect(connect)),
        (
            "network_connect_tap",
            Request::NetworkConnect(NetworkConnect {
                network: s("ovl"),
                attach: Attach::Tap(s("tap0")),
                name: None,
                ip: None,
                mac: None,
                ifname: None,
                aliases: vec![],
            }),
        ),
        (
            "network_disconnect",
            Request::NetworkDisconnect {
                network: s("blue"),
                endpoint: s("c1"),
            },
        ),
        (
            "network_rm",
            Request::NetworkRm {
                names: vec![s("blue")],
            },
        ),
        ("network_prune", Request::NetworkPrune),
        (
            "fdb_show",
            Request::FdbShow {
                network: Some(s("blue")),
            },
        ),
        (
            "fdb_add_vtep",
            Request::FdbAdd {
                network: s("ovl"),
                mac: parse("02:00:00:00:ee:01"),
                target: FdbTarget::Vtep(parse("192.0.2.2")),
            },
        ),
        (
            "fdb_add_port",
            Request::FdbAdd {
                network: s("blue"),
                mac: parse("02:00:00:00:ee:02"),
                target: FdbTarget::Port(s("c1")),
            },
        ),
        (
            "fdb_del",
            Request::FdbDel {
                network: s("ovl"),
                mac: parse("02:00:00:00:ee:01"),
            },
        ),
        (
            "peer_add",
            Request::PeerAdd {
                ip: parse("192.0.2.3"),
                vnis: vec![42, 16_777_215, 16_777_216],
            },
        ),
        (
            "peer_add_all",
            Request::PeerAdd {
                ip: parse("2001:db8::3"),
                vnis: vec![],
            },
        ),
        (
            "peer_rm",
            Request::PeerRm {
                ip: parse("192.0.2.2"),
            },
        ),
        ("peer_ls", Request::PeerLs),
        ("stats", Request::Stats),
        (
            "port_publish",
            Request::PortPublish {
                network: s("blue"),
                endpoint: s("c1"),
                spec: s("203.0.113.2:8080:80/tcp"),
            },
        ),
        (
            "port_unpublish",
            Request::PortUnpublish {
                network: s("blue"),
                endpoint: s("c1"),
                spec: s("5353:53/udp"),
            },
        ),
        ("port_ls", Request::PortLs),
        ("nat_ls", Request::NatLs),
    ];
    let mut out: Vec<(String, Vec<u8>)> = requests
        .iter()
        .map(|(name, r)| (format!("req_{name}"), line(r)))
        .collect();
    for (name, text) in [
        (
            "bad_unknown_field",
            r#"{"op":"network_inspect","names":["a"],"x":1}"#,
        ),
        ("bad_unknown_op", r#"{"op":"nope"}"#),
        ("bad_no_op", r#"{"names":["a"]}"#),
        (
            "bad_subnet",
            r#"{"op":"network_create","name":"a","subnet":"10.0.0/24"}"#,
        ),
        (
            "bad_mac",
            r#"{"op":"fdb_add","network":"a","mac":"zz","target":{"port":"p"}}"#,
        ),
        ("bad_truncated", r#"{"op":"network_create","name":"a","sub"#),
        (
            "bad_deep",
            r#"{"op":"network_inspect","names":[[[[[[[[[[[[[[[[[[[[["a"]]]]]]]]]]]]]]]]]]]]]}"#,
        ),
        (
            "bad_subnet_not_network",
            r#"{"op":"network_create","name":"a","subnet":"10.0.0.1/24","gateway":"10.0.0.0"}"#,
        ),
        (
            "bad_huge_range",
            r#"{"op":"network_create","name":"a","subnet":"0.0.0.0/1","ip_range":"0.0.0.0/0"}"#,
        ),
        (
            "bad_vni",
            r#"{"op":"network_create","name":"a","driver":"overlay","vni":0}"#,
        ),
        (
            "connect_gateway",
            r#"{"op":"network_connect","network":"blue","attach":{"netns":"n"},"ip":"10.89.0.1"}"#,
        ),
        (
            "resp_ok",
            r#"{"ok":{"id":"x","n":[1,2.5,-3e400,null,true]}}"#,
        ),
        ("resp_error", r#"{"error":"network 'x' not found"}"#),
        ("spec", "127.0.0.1:65535:1/udp"),
        ("spec_bad", "0:80/sctp"),
        ("port_range", "32768-60999"),
        ("port_range_bad", "9-3"),
    ] {
        out.push((name.into(), text.as_bytes().to_vec()));
    }
    out.push(("state".into(), BASE_STATE.as_bytes().to_vec()));
    let resp = serde_json::to_vec(&Response::Ok(serde_json::json!(["a", 1]))).expect("encodes");
    out.push(("resp_encoded".into(), resp));
    for (name, text) in configs() {
        out.push((format!("config_{name}"), text.as_bytes().to_vec()));
    }
    for (name, text) in [
        ("demo", vswitch::lab::topology::DEMO),
        (
            "three_hosts",
            include_str!("../../../labs/three-hosts.toml"),
        ),
        ("two_hosts", include_str!("../../../labs/two-hosts.toml")),
        (
            "bad_host_name",
            "name = \"l\"\n[underlay]\nsubnet = \"10.0.0.0/30\"\n[[host]]\nname = \"far-too-long\"\n",
        ),
        (
            "big_subnet",
            "name = \"l\"\n[underlay]\nsubnet = \"0.0.0.0/0\"\n[[host]]\nname = \"h1\"\n",
        ),
    ] {
        out.push((format!("lab_{name}"), text.as_bytes().to_vec()));
    }
    out
}

fn configs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("empty", ""),
        (
            "full",
            "state_dir = \"/var/lib/vswitch\"\nsocket = \"/run/vswitch/vswitch.sock\"\n\
             [fdb]\naging_secs = 300\nmax_entries = 65536\nmax_per_port = 4096\n\
             [ipam]\ndefault_pool = \"10.89.0.0/16\"\ndefault_prefix = 24\n\
             [datapath]\nbatch = 64\n\
             [underlay]\nlocal = \"192.0.2.1\"\nport = 4789\ninterface = \"eth1\"\nmtu = 1500\n\
             src_port_range = \"61000-61063\"\nudp_checksum = false\nmss_clamp = true\ngso = true\ngro = true\n\
             [uplink]\ninterface = \"eth0\"\naddress = \"203.0.113.2/24\"\ngateway = \"203.0.113.1\"\n\
             address6 = \"2001:db8::2/64\"\nextra_addresses = [\"203.0.113.3\"]\nmtu = 1500\n\
             [nat]\nport_range = \"32768-60999\"\nmax_entries = 65536\ntcp_loose = true\n\
             [nat.timeouts]\ntcp_syn_sent = 120\ntcp_established = 7440\nudp = 30\nicmp = 30\nfragment = 30\n",
        ),
        (
            "underlay6",
            "[underlay]\nlocal = \"2001:db8::1\"\nport = 8472\nsrc_port_range = \"50000-50015\"\n",
        ),
        (
            "nat_small",
            "[uplink]\ninterface = \"ext0\"\naddress = \"203.0.113.2/24\"\ngateway = \"203.0.113.1\"\n[nat]\nport_range = \"40000-40009\"\nmax_entries = 1\n",
        ),
        (
            "pool_wide",
            "[ipam]\ndefault_pool = \"0.0.0.0/0\"\ndefault_prefix = 30\n",
        ),
        ("bad_batch", "[datapath]\nbatch = 0\n"),
        ("bad_typo", "[fdb]\naging_sec = 10\n"),
        (
            "bad_nat_zero",
            "[uplink]\ninterface = \"e\"\naddress = \"203.0.113.2/24\"\ngateway = \"203.0.113.1\"\n[nat.timeouts]\nudp = 0\n",
        ),
        (
            "bad_src_ports",
            "[underlay]\nlocal = \"192.0.2.1\"\nsrc_port_range = \"1-65535\"\n",
        ),
    ]
}
