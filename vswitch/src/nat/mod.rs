//! NAT for the uplink: masquerade (SNAT) of local networks' traffic to the outside,
//! published ports (DNAT, like Docker's `-p`), hairpin, connection tracking with
//! per-state timeouts, and translation of ICMP errors including the packet they quote.
//!
//! Sans-I/O: [`Nat`] takes an IPv4 packet (a `&mut [u8]` starting at the IPv4 header)
//! and rewrites it in place, or says why not ([`NatDrop`]); lengths never change.
//! Every method takes `now` (a `Duration` since any fixed origin); nothing reads a
//! clock, and entries go only when [`Nat::expire`] is called. IPv4 only. No I/O, no
//! logging; nothing allocates per packet (creating a flow allocates its entry).
//!
//! ```
//! use std::time::Duration;
//! use vswitch::nat::{ChecksumState, Egress, Nat, NatConfig};
//!
//! let nat = Nat::new(NatConfig { external: "203.0.113.1".parse()?, ..NatConfig::default() })?;
//! let now = Duration::from_secs(1);
//! let build = |src: [u8; 4], sport, dst: [u8; 4], dport| {
//!     let mut v = Vec::new();
//!     etherparse::PacketBuilder::ipv4(src, dst, 64).udp(sport, dport).write(&mut v, b"q")?;
//!     Ok::<_, Box<dyn std::error::Error>>(v)
//! };
//! // A container's DNS query leaves from the external address...
//! let mut query = build([10, 0, 0, 2], 40000, [198, 51, 100, 7], 53)?;
//! let out = nat.outbound(now, &mut query, ChecksumState::Complete)?;
//! assert_eq!(out.egress, Egress::Uplink);
//! assert_eq!(query[12..16], [203, 0, 113, 1]);
//! let port = u16::from_be_bytes([query[20], query[21]]);
//! // ...and the answer finds its way back.
//! let mut answer = build([198, 51, 100, 7], 53, [203, 0, 113, 1], port)?;
//! let back = nat.inbound(now, &mut answer, ChecksumState::Complete)?;
//! assert_eq!((back.egress, back.dst), (Egress::Internal, "10.0.0.2".parse()?));
//! assert_eq!(answer[22..24], 40000u16.to_be_bytes());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Flows
//!
//! | kind | first packet | becomes | reply |
//! |---|---|---|---|
//! | [`NatKind::Snat`] | local `A:a -> R:r`, [`Nat::outbound`] | `EXT:p -> R:r` | `R:r -> EXT:p` ([`Nat::inbound`]) back to `R:r -> A:a` |
//! | [`NatKind::Dnat`] | uplink `C:c -> H:h`, [`Nat::inbound`] | `C:c -> T:t` | `T:t -> C:c` ([`Nat::outbound`]) to `H:h -> C:c` |
//! | [`NatKind::Hairpin`] | local `A:a -> H:h`, [`Nat::outbound`] | `EXT:p -> T:t` | `T:t -> EXT:p` ([`Nat::outbound`]) to `H:h -> A:a` |
//!
//! `EXT` is the external address, `p` a port from the configured range, `H:h` a
//! published host address and port, `T:t` its target container. For ICMP echo the
//! identifier plays the port (rewritten like one; not publishable).
//!
//! **Creation rules.** From a local network: any UDP datagram, an ICMP echo request,
//! a TCP SYN without ACK, and, with `tcp_loose` (default on, like Linux), a bare TCP
//! ACK (picked up as ESTABLISHED, so connections survive a daemon restart when their
//! source port is still free). Anything else without an entry is `no_flow`. From the
//! uplink, only to a published port: a UDP datagram or a TCP SYN. A local packet to
//! the switch's own address is hairpin if the port is published, else
//! `not_published`. ICMP errors never create entries.
//!
//! **Ports.** Masqueraded and hairpin flows each hold one port (ICMP: identifier) of
//! the range per protocol until they expire; the original source port is kept if it
//! is in the range and free; ports published on the external address are skipped.
//! When none is left a new flow is refused with `ports_exhausted`; when the table
//! holds `max_entries` connections, with `table_full`. Both are counted in
//! [`NatCounters`]; existing flows are not affected.
//!
//! **TCP** follows SYN / SYN-ACK / ACK / FIN each way / RST, with no sequence-window
//! checks (the endpoints do those; we only need to know when to let go): the diagram
//! is in `state.rs`'s doc. UDP is UNREPLIED until a reply, then STREAM. Default idle
//! timeouts ([`Timeouts`]): SYN_SENT 120 s, SYN_RECV 60 s, ESTABLISHED 7440 s,
//! FIN_WAIT 120 s, TIME_WAIT 120 s, CLOSE 10 s, UDP 30 s / 180 s, ICMP 30 s. Default
//! port range 32768-60999, table limit 65536.
//!
//! **ICMP errors** (types 3, 11, 12) about a tracked flow are translated in either
//! direction: the outer destination, the outer source when the quoted packet's
//! destination sent the error, the quoted packet (addresses, ports, its IPv4 and
//! transport checksums) and the ICMP checksum; the "fragmentation needed" MTU is left
//! as it is, so path-MTU discovery works through the NAT. See `icmp_error.rs`.
//!
//! **Checksums** are updated incrementally (RFC 1624) per [`ChecksumState`]: complete,
//! or partial (virtio_net_hdr `NEEDS_CSUM`, only the pseudo-header part changes). A
//! zero UDP checksum stays zero. See `packet.rs`.
//!
//! **Fragments** are not reassembled: the first one (which has the ports) is
//! translated like any packet and the later ones get the same addresses, if they come
//! after it; a later fragment seen first is dropped (`fragment`). See `fragments.rs`.
//!
//! # Concurrency
//!
//! One `Nat` is shared by all workers (`Send + Sync`, `&self` everywhere). The table
//! is a `papaya` concurrent map (lock-free reads); a packet of an existing flow takes
//! no lock: it pins the map, finds its entry and refreshes the last-seen time (an
//! atomic store, skipped when it would move by less than 1 ms) and the state (a
//! compare-and-swap, only when it changes). Creating a flow, expiring or removing
//! one, and reading the counters take one short mutex that owns the port pools (new
//! flows are rare relative to packets). Published ports are an `ArcSwap` snapshot
//! read only when a flow is created.
//!
//! # What the datapath does around it
//!
//! - A routed packet from a non-internal local network to an address outside every
//!   local network (this includes the switch's external and published host
//!   addresses): [`Nat::outbound`]. On `Ok`, [`Egress::Uplink`] (masquerade, replies
//!   of published ports): send out the uplink towards [`Translated::dst`] (next hop:
//!   the uplink's gateway); [`Egress::Internal`] (hairpin both ways): route
//!   [`Translated::dst`] to its network and endpoint, as if it came in on the uplink.
//! - A packet from the uplink to the external address or to a host address of a
//!   published port: [`Nat::inbound`]; on `Ok`, route [`Translated::dst`] (always
//!   [`Egress::Internal`]). Others (ARP, the host's own traffic) never reach NAT.
//! - `Err(reason)`: drop the packet and count `reason` per worker
//!   ([`NatDropCounts`]); never forward it untranslated.
//! - Pass [`ChecksumState::Partial`] when the frame came with virtio_net_hdr
//!   `NEEDS_CSUM` and keep the header as it is (offsets do not move). Decrement the
//!   TTL and do the MTU check as for any routed packet; the NAT does neither. Check
//!   the uplink MTU before [`Nat::outbound`] (the error then goes to the container
//!   untranslated). An ICMP error the switch builds about a packet it already
//!   translated inbound (too big for the internal network) goes through
//!   [`Nat::outbound`] like a container's: its quote and its source (the gateway,
//!   hidden behind the external address) are translated.
//! - If the switch should answer pings to the external address, answer them before
//!   [`Nat::inbound`], which drops echo requests (`no_flow`).
//! - Call [`Nat::expire`] about once a second, [`Nat::set_published`] when the
//!   published ports change, [`Nat::remove_endpoint`] when an endpoint leaves;
//!   `nat ls` is [`Nat::entries`], `stats` is [`Nat::counters`] plus the workers'
//!   [`NatDropCounts`].

mod config;
mod conn;
mod drop;
mod fragments;
mod icmp_error;
mod info;
mod packet;
mod ports;
mod preview;
mod published;
mod state;
mod table;
mod tuple;

#[cfg(test)]
mod tests;

pub use config::{NatConfig, NatConfigError, Timeouts, parse_port_range};
pub use conn::{Egress, NatKind};
pub use drop::{NatDrop, NatDropCounts};
pub use info::{ConnInfo, NatCounters, PortUsage};
pub use ports::Lane;
pub use preview::{Endpoints, Preview};
pub use published::{
    PortProto, PortSpec, PublishError, PublishedPort, PublishedPorts, check_conflict,
};
pub use state::ConnState;
pub use table::{Nat, Translated};
pub use tuple::{FlowTuple, Proto, Tuple};
pub use vtep::ChecksumState;
