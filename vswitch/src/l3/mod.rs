//! The gateway and router of the local networks: what the switch answers as each
//! network's gateway and as the uplink's address, how it resolves the IPv4 neighbours
//! it forwards to, and where a routed packet goes.
//!
//! Sans-I/O and IPv4 only (networks have no IPv6 subnets yet, so no ND). Nothing here
//! reads a clock (time-dependent methods take `now`), does I/O, locks or logs; the
//! per-packet functions write into buffers the caller provides and do not allocate
//! (the one exception: a neighbour miss copies the frame that has to wait). Nothing
//! panics on any input bytes. Frames are untagged Ethernet II.
//!
//! - [`arp`]: parse an ARP frame; build a reply, a request, a gratuitous ARP;
//! - [`icmp_echo`]: the echo reply to a ping of one of our addresses;
//! - [`neigh`]: the neighbour cache of one L3 interface (states, retries, the queue of
//!   frames waiting for an answer, counters);
//! - [`route`]: the routing table (isolation by default, `--route-to` pairs, the
//!   uplink) and its decision for one packet;
//! - [`forward`]: TTL decrement, Ethernet rewrite, ICMP time exceeded.
//!
//! Errors are small `Copy` enums with a `name()` for the drop counters:
//! [`ArpError`], [`EchoError`], [`ForwardError`], [`TimeExceededError`].
//!
//! # What the datapath does around it
//!
//! For a frame from a local network `S` (router MAC `R`, gateway `G`):
//! - **ARP** ([`Arp::parse`]), in this order: a gratuitous one
//!   ([`Arp::is_gratuitous`]) goes to `S`'s cache as [`LearnKind::Gratuitous`]; a
//!   request whose target is `G` is answered with [`build_reply`] from `R` and, unless
//!   it is a probe ([`Arp::is_probe`]), teaches the cache its sender
//!   ([`LearnKind::Request`]); a reply to `R` goes to the cache as [`LearnKind::Reply`].
//!   Frames handed back by [`NeighCache::learn`] are sent now. Other ARP stays L2.
//!   Bindings the control plane knows (endpoints it addressed) can be set with
//!   [`NeighCache::insert_permanent`] and need no ARP at all.
//! - **IPv4 to `R`**: [`RouteTable::route`]`(S, dst)`:
//!   - `ToGateway`: an echo request gets [`build_echo_reply`]; anything else is dropped;
//!   - `Local(N)`: [`decrement_ttl`] (on `TtlExpired`, send [`build_time_exceeded`] from
//!     `G` if it may be built), then `N`'s [`NeighCache::lookup`] of `dst` with the frame
//!     as [`Waiting`]; on `Hit(mac)`, [`rewrite_l2`]`(R, mac)` and forward in `N`; on a
//!     `Miss` that asks for it, send [`build_request`] from `N`'s gateway;
//!   - `External`: decrement, NAT outbound, then the uplink cache's lookup of the next
//!     hop (or of `dst` when it is on the uplink's subnet), rewrite, send;
//!   - `Denied`, `NoRoute`: drop and count by [`Route::name`].
//! - **Timers**: call each cache's [`NeighCache::tick`] every 100 ms or so; send the
//!   requests it returns; the frames it gives up on may each get an ICMP host
//!   unreachable.
//! - **Uplink**: the same, with the uplink's address for `G` and its own cache; announce
//!   the address with [`build_gratuitous`] when the uplink comes up.
//!
//! A cache belongs to one worker. With several workers, the ARP reply may reach a
//! worker other than the one that asked: feed every learned binding to every worker's
//! cache (or keep the L3 path on one worker).

pub mod arp;
pub mod forward;
pub mod icmp_echo;
pub mod neigh;
pub mod route;
mod wire;

#[cfg(test)]
mod tests;

pub use arp::{ARP_FRAME_LEN, Arp, ArpError, ArpOp, build_gratuitous, build_reply, build_request};
pub use forward::{
    ForwardError, MAX_TIME_EXCEEDED_LEN, TimeExceededError, build_time_exceeded, decrement_ttl,
    rewrite_l2,
};
pub use icmp_echo::{EchoError, build_echo_reply, is_echo_request};
pub use neigh::{
    ArpRequest, LearnKind, Lookup, NeighCache, NeighConfig, NeighCounters, NeighEntry, NeighState,
    QueuedFrame, Tick, Waiting,
};
pub use route::{Route, RouteNetwork, RouteTable, RouteTableError};
pub use wire::{MIN_FRAME_LEN, is_unicast};
