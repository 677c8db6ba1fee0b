//! The routing table: isolation by default, route-to pairs both ways, internal
//! networks, gateways, longest prefix, and what is never routed.

use fdb::NetworkId;

use super::*;
use crate::l3::route::*;

const N1: NetworkId = NetworkId(1);
const N2: NetworkId = NetworkId(2);
const N3: NetworkId = NetworkId(3);
const N4: NetworkId = NetworkId(4);

fn net(id: NetworkId, subnet: &str, gateway: &str, internal: bool) -> RouteNetwork {
    RouteNetwork {
        id,
        subnet: subnet.parse().unwrap(),
        gateway: gateway.parse().unwrap(),
        internal,
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Three networks: 1 and 2 may route to each other, 3 is isolated, 4 is internal.
fn table(uplink: bool) -> RouteTable {
    RouteTable::new(
        [
            net(N1, "10.0.0.0/24", "10.0.0.1", false),
            net(N2, "10.0.1.0/24", "10.0.1.1", false),
            net(N3, "10.0.2.0/24", "10.0.2.1", false),
            net(N4, "10.0.3.0/24", "10.0.3.1", true),
        ],
        [(N2, N1), (N1, N2), (N4, N1)],
        uplink,
    )
    .unwrap()
}

#[test]
fn networks_are_isolated_by_default() {
    let t = table(true);
    assert_eq!(t.route(N1, ip("10.0.2.5")), Route::Denied(N3));
    assert_eq!(t.route(N3, ip("10.0.0.2")), Route::Denied(N1));
    assert_eq!(t.route(N3, ip("10.0.1.3")), Route::Denied(N2));
    assert!(!t.allowed(N1, N3));
}

#[test]
fn route_to_pairs_work_both_ways() {
    let t = table(true);
    assert_eq!(t.route(N1, ip("10.0.1.3")), Route::Local(N2));
    assert_eq!(t.route(N2, ip("10.0.0.2")), Route::Local(N1));
    assert!(t.allowed(N2, N1) && t.allowed(N1, N2));
    assert_eq!(
        t.pairs(),
        &[(N1, N2), (N1, N4)],
        "normalised and deduplicated"
    );
}

#[test]
fn gateways_are_the_switch() {
    let t = table(true);
    assert_eq!(t.route(N1, ip("10.0.0.1")), Route::ToGateway);
    // Another network's gateway: only when routing there is allowed.
    assert_eq!(t.route(N1, ip("10.0.1.1")), Route::ToGateway);
    assert_eq!(t.route(N3, ip("10.0.0.1")), Route::Denied(N1));
}

#[test]
fn external_needs_an_uplink_and_a_network_that_is_not_internal() {
    let t = table(true);
    assert_eq!(t.route(N1, R), Route::External);
    assert_eq!(t.route(N3, ip("8.8.8.8")), Route::External);
    assert_eq!(t.route(N4, R), Route::NoRoute, "internal");
    // Internal closes only the way out: its route-to pair still works.
    assert_eq!(t.route(N4, ip("10.0.0.2")), Route::Local(N1));
    assert_eq!(t.route(N4, ip("10.0.3.1")), Route::ToGateway);

    let no_uplink = table(false);
    assert_eq!(no_uplink.route(N1, R), Route::NoRoute);
    assert_eq!(no_uplink.route(N1, ip("10.0.1.3")), Route::Local(N2));
}

#[test]
fn never_routes_what_is_not_one_host() {
    let t = table(true);
    for dst in [
        "255.255.255.255",
        "224.0.0.5",
        "239.1.1.1",
        "0.0.0.0",
        "0.1.2.3",
        "127.0.0.1",
        "169.254.1.1",
        "240.0.0.1",
    ] {
        assert_eq!(t.route(N1, ip(dst)), Route::NoRoute, "{dst}");
    }
    // Directed broadcasts and network addresses, of its own or an allowed network.
    for dst in ["10.0.0.255", "10.0.0.0", "10.0.1.255", "10.0.1.0"] {
        assert_eq!(t.route(N1, ip(dst)), Route::NoRoute, "{dst}");
    }
    // ... but an isolated network's are still isolation.
    assert_eq!(t.route(N1, ip("10.0.2.255")), Route::Denied(N3));
}

#[test]
fn own_subnet_through_the_router_goes_back_in() {
    let t = table(true);
    assert_eq!(t.route(N1, ip("10.0.0.9")), Route::Local(N1));
}

#[test]
fn unknown_source_network_has_no_route() {
    assert_eq!(table(true).route(NetworkId(99), R), Route::NoRoute);
    assert_eq!(RouteTable::default().route(N1, R), Route::NoRoute);
}

#[test]
fn longest_prefix_wins_when_subnets_nest() {
    let t = RouteTable::new(
        [
            net(N1, "10.0.0.0/16", "10.0.0.1", false),
            net(N2, "10.0.5.0/24", "10.0.5.1", false),
            net(N3, "10.0.5.128/25", "10.0.5.129", false),
        ],
        [(N1, N2), (N1, N3)],
        true,
    )
    .unwrap();
    assert_eq!(t.networks()[0].id, N3, "sorted longest first");
    assert_eq!(t.route(N1, ip("10.0.5.200")), Route::Local(N3));
    assert_eq!(t.route(N1, ip("10.0.5.20")), Route::Local(N2));
    assert_eq!(t.route(N1, ip("10.0.9.9")), Route::Local(N1));
    assert_eq!(t.route(N2, ip("10.0.5.200")), Route::Denied(N3));
    assert_eq!(t.network_of(ip("10.0.5.130")).map(|n| n.id), Some(N3));
}

#[test]
fn point_to_point_subnets_have_no_broadcast() {
    let t = RouteTable::new(
        [
            net(N1, "10.0.0.0/24", "10.0.0.1", false),
            net(N2, "192.0.2.0/31", "192.0.2.0", false),
        ],
        [(N1, N2)],
        true,
    )
    .unwrap();
    assert_eq!(t.route(N1, ip("192.0.2.1")), Route::Local(N2));
    assert_eq!(t.route(N1, ip("192.0.2.0")), Route::ToGateway);
}

#[test]
fn inconsistent_tables_are_refused() {
    let a = net(N1, "10.0.0.0/24", "10.0.0.1", false);
    let b = net(N2, "10.0.1.0/24", "10.0.1.1", false);
    assert_eq!(
        RouteTable::new([a, a], [], true),
        Err(RouteTableError::DuplicateNetwork(N1))
    );
    assert_eq!(
        RouteTable::new([a, b], [(N1, N3)], true),
        Err(RouteTableError::UnknownNetwork(N3))
    );
    assert_eq!(
        RouteTable::new([a, b], [(N1, N1)], true),
        Err(RouteTableError::SelfPair(N1))
    );
    for gw in ["10.0.1.1", "10.0.0.0", "10.0.0.255"] {
        let bad = net(N3, "10.0.0.0/24", gw, false);
        assert!(matches!(
            RouteTable::new([bad], [], true),
            Err(RouteTableError::GatewayOutsideSubnet { network: N3, .. })
        ));
    }
    assert!(
        RouteTableError::UnknownNetwork(N3)
            .to_string()
            .contains("net3")
    );
}

#[test]
fn source_check() {
    let t = table(true);
    assert!(t.source_ok(N1, A));
    assert!(!t.source_ok(N1, GW));
    assert!(!t.source_ok(N1, B));
    assert!(!t.source_ok(N1, ip("10.0.0.255")));
    assert!(!t.source_ok(NetworkId(99), A));
}

#[test]
fn route_names() {
    assert_eq!(Route::Denied(N1).name(), "denied");
    assert_eq!(Route::NoRoute.name(), "no_route");
}
