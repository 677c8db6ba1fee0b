//! The capture hub against a small topology: scopes, drops, limits, VXLAN datagrams.

use super::*;
use crate::datapath::topology::{NetworkInfo, PortInfo};

fn topo() -> Topology {
    let mut t = Topology::default();
    for (p, n) in [(1u32, 1u16), (2, 1), (3, 2)] {
        t.ports.insert(
            PortId(p),
            PortInfo {
                network: NetworkId(n),
                endpoint: format!("e{p}"),
            },
        );
    }
    t.networks.insert(
        NetworkId(1),
        NetworkInfo {
            name: "n1".into(),
            mtu: 1500,
            ports: vec![PortId(1), PortId(2)],
            vni: Vni::new(42),
            gateway: "10.0.0.1".parse().unwrap(),
            subnet: "10.0.0.0/24".parse().unwrap(),
            internal: false,
        },
    );
    t
}

fn vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; vtep::VXLAN_HLEN];
    vtep::VxlanRepr {
        vni: Vni::new(vni).unwrap(),
    }
    .write(&mut d)
    .unwrap();
    d.extend_from_slice(inner);
    d
}

#[test]
fn inactive_until_a_session_starts_and_after_it_stops() {
    let hub = CaptureHub::default();
    assert!(!hub.is_active());
    let (s, _rx) = hub.start(Scope::Port(PortId(1)), None, 4);
    assert!(hub.is_active());
    let (s2, _rx2) = hub.start(Scope::Uplink, None, 4);
    hub.stop(&s);
    assert!(hub.is_active());
    hub.stop(&s2);
    assert!(!hub.is_active());
    assert!(hub.is_empty());
}

#[test]
fn port_and_network_scopes_copy_what_they_see() {
    let hub = CaptureHub::default();
    let t = topo();
    let (_a, port1) = hub.start(Scope::Port(PortId(1)), None, 8);
    let net = Scope::Network {
        id: NetworkId(1),
        vni: Vni::new(42),
        outer: false,
    };
    let (_b, net1) = hub.start(net, None, 8);
    let frames: [&[u8]; 2] = [b"one", b"two"];
    hub.port_frames(&t, PortId(2), Direction::Tx, frames.iter().copied());
    hub.port_frames(&t, PortId(3), Direction::Rx, frames.iter().copied());
    hub.port_frames(&t, PortId(1), Direction::Rx, frames[..1].iter().copied());
    let got: Vec<Captured> = port1.try_iter().collect();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].point, got[0].dir),
        (Point::Port(PortId(1)), Direction::Rx)
    );
    let got: Vec<(Point, Vec<u8>)> = net1.try_iter().map(|c| (c.point, c.data)).collect();
    assert_eq!(
        got,
        vec![
            (Point::Port(PortId(2)), b"one".to_vec()),
            (Point::Port(PortId(2)), b"two".to_vec()),
            (Point::Port(PortId(1)), b"one".to_vec()),
        ]
    );
}

#[test]
fn a_full_channel_drops_and_counts_and_the_limit_stops_copying() {
    let hub = CaptureHub::default();
    let t = topo();
    let (s, rx) = hub.start(Scope::Port(PortId(1)), None, 2);
    let frames: [&[u8]; 5] = [b"a", b"b", b"c", b"d", b"e"];
    hub.port_frames(&t, PortId(1), Direction::Rx, frames.iter().copied());
    assert_eq!((s.copied(), s.dropped()), (2, 3));
    assert_eq!(rx.try_iter().count(), 2);
    let (s, rx) = hub.start(Scope::Port(PortId(1)), Some(3), 8);
    hub.port_frames(&t, PortId(1), Direction::Rx, frames.iter().copied());
    assert_eq!((s.copied(), s.dropped()), (3, 0));
    assert_eq!(rx.try_iter().count(), 3);
}

#[test]
fn tunnel_datagrams_inner_by_vni_or_outer_with_built_headers() {
    let hub = CaptureHub::default();
    let inner_scope = Scope::Network {
        id: NetworkId(1),
        vni: Vni::new(42),
        outer: false,
    };
    let (_a, inner) = hub.start(inner_scope, None, 8);
    let (_b, outer) = hub.start(Scope::Underlay, None, 8);
    let d42 = vxlan(42, b"inner-frame");
    let d43 = vxlan(43, b"other");
    let local: SocketAddr = "192.0.2.1:4789".parse().unwrap();
    let remote: SocketAddr = "192.0.2.2:50000".parse().unwrap();
    let dgs = [&d42, &d43].map(|p| Datagram {
        local,
        remote,
        payload: p,
    });
    hub.tunnel_datagrams(Direction::Rx, dgs.iter().copied());
    let got: Vec<Captured> = inner.try_iter().collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, b"inner-frame");
    assert_eq!(got[0].point, Point::Vtep(remote.ip()));
    let got: Vec<Captured> = outer.try_iter().collect();
    assert_eq!(got.len(), 2);
    let p = etherparse::SlicedPacket::from_ethernet(&got[0].data).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
        panic!("not IPv4");
    };
    assert_eq!(ip.header().source(), [192, 0, 2, 2]);
    assert_eq!(ip.header().destination(), [192, 0, 2, 1]);
    let Some(etherparse::TransportSlice::Udp(udp)) = p.transport else {
        panic!("not UDP");
    };
    assert_eq!((udp.source_port(), udp.destination_port()), (50000, 4789));
    assert_eq!(udp.payload(), &d42[..]);
}
