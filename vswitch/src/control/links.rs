//! Interfaces the control plane creates and configures over rtnetlink: the veth pair of a
//! container endpoint (one end created straight inside the container's namespace, with
//! its MAC, MTU, address and default route, and without the segmentation offloads an
//! AF_PACKET port cannot take: that one through ethtool), link up / MTU for the switch's
//! own ends, deletion. Each call runs its own short-lived current-thread runtime; calls
//! that act inside another namespace run on a dedicated thread that enters it first,
//! because a netlink (or ethtool) socket belongs to the namespace of the thread that
//! opened it.

use std::fs::File;
use std::net::Ipv4Addr;

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use fdb::MacAddr;

use crate::port::sys::ethtool as sys_ethtool;
use crate::port::sys::netns;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("network namespace '{0}' does not exist (see `ip netns list`)")]
    NoSuchNetns(String),
    #[error("cannot open network namespace '{name}': {source}")]
    OpenNetns {
        name: String,
        source: std::io::Error,
    },
    #[error("interface {0} already exists{1}: choose another name")]
    Exists(String, String),
    #[error("interface {0} does not exist")]
    NotFound(String),
    #[error("{op} failed: {msg}")]
    Netlink { op: String, msg: String },
    #[error("cannot start the netlink runtime: {0}")]
    Runtime(std::io::Error),
}

/// MTU of the switch's end of a veth pair: a veth's maximum.
pub const SWITCH_END_MTU: u32 = 65_535;

/// A container endpoint's veth pair, as `network connect --netns` makes it.
#[derive(Debug, Clone)]
pub struct VethSpec {
    /// Switch-side end, in the daemon's namespace.
    pub host_ifname: String,
    /// Container namespace, by `ip netns` name.
    pub netns: String,
    /// Name of the end inside the container.
    pub ifname: String,
    pub mac: MacAddr,
    pub mtu: u32,
    pub address: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
}

/// Opens a namespace the way `ip netns` names it.
pub fn open_netns(name: &str) -> Result<File, LinkError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(LinkError::NoSuchNetns(name.to_string()));
    }
    netns::open_named(name).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            LinkError::NoSuchNetns(name.to_string())
        } else {
            LinkError::OpenNetns {
                name: name.to_string(),
                source,
            }
        }
    })
}

/// Creates the pair, configures the container end completely and brings the switch end
/// up. On any failure, whatever was created is deleted again.
pub fn create_veth(spec: &VethSpec) -> Result<(), LinkError> {
    let ns = open_netns(&spec.netns)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&ns);
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(spec.ifname.clone())
        .setns_by_fd(fd)
        .address(spec.mac.0.to_vec())
        .mtu(spec.mtu)
        .build();
    // The switch end carries no IP: its MTU only limits what the container can hand the
    // switch. It is the largest a veth takes, so a frame larger than the network's MTU
    // (a container whose MTU was raised by hand) reaches the switch and gets its ICMP
    // "fragmentation needed" instead of vanishing in the veth.
    let msg = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth)
        .name(spec.host_ifname.clone())
        .mtu(SWITCH_END_MTU)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    let (host, ctr, ns_name) = (
        spec.host_ifname.clone(),
        spec.ifname.clone(),
        spec.netns.clone(),
    );
    run(|h| async move {
        h.link().add(msg).execute().await.map_err(|e| {
            let where_ = format!(" (here, or as {ctr} in namespace {ns_name})");
            map_err(e, "create veth", &host, &where_)
        })
    })?;
    // The switch end carries no addresses: keep the host's IPv6 stack from sending
    // router solicitations and MLD reports into the container through it.
    disable_ipv6(&spec.host_ifname);
    let result = set_up(&spec.host_ifname, None).and_then(|()| configure_container_end(&ns, spec));
    if result.is_err() {
        let _ = delete(&spec.host_ifname);
    }
    result
}

fn configure_container_end(ns: &File, spec: &VethSpec) -> Result<(), LinkError> {
    let spec = spec.clone();
    in_netns(ns, move || {
        keep_gso_describable(&spec.ifname, &spec.netns);
        run(|h| async move {
            let index = index_of(&h, &spec.ifname).await?;
            h.link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(|e| map_err(e, "set link up", &spec.ifname, ""))?;
            if let Some(addr) = spec.address {
                h.address()
                    .add(index, addr.addr().into(), addr.prefix_len())
                    .execute()
                    .await
                    .map_err(|e| map_err(e, "add address", &spec.ifname, ""))?;
            }
            if let Some(gw) = spec.gateway {
                let route = RouteMessageBuilder::<Ipv4Addr>::new()
                    .gateway(gw)
                    .output_interface(index)
                    .build();
                // A namespace already connected elsewhere keeps its default route.
                match h.route().add(route).execute().await {
                    Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                    r => r.map_err(|e| map_err(e, "add default route", &spec.ifname, ""))?,
                }
            }
            Ok(())
        })
    })
}

/// Segmentation offloads of encapsulations and of SCTP: a GSO frame of one of these
/// kinds cannot be described in the virtio_net_hdr an AF_PACKET port reads. Linux 6.18
/// reports a UDP-tunnel or GRE super-frame carrying TCP as plain TCP GSO (the header has
/// no tunnel bit), which no egress can then segment; for SCTP GSO `virtio_net_hdr_from_skb`
/// has no code and the frame is lost (read in the kernel source: the kernels here have
/// no SCTP, GRE or IPIP to try it with; VXLAN is what the tests run). So a
/// container running its own VXLAN (a nested overlay, a kind node) would see its bulk
/// TCP vanish on our network. With these off on its end of the veth, the container's
/// own stack segments such frames before they reach the switch.
const GSO_NOT_DESCRIBABLE: &[&str] = &[
    "tx-udp_tnl-segmentation",
    "tx-udp_tnl-csum-segmentation",
    "tx-gre-segmentation",
    "tx-gre-csum-segmentation",
    "tx-ipxip4-segmentation",
    "tx-ipxip6-segmentation",
    "tx-sctp-segmentation",
];

/// Turns the offloads of [`GSO_NOT_DESCRIBABLE`] off on `ifname` in the calling thread's
/// namespace, and returns those it found on and turned off. A failure is logged, not
/// fatal: the endpoint still carries everything else.
fn keep_gso_describable(ifname: &str, netns_name: &str) -> Vec<String> {
    let turned = sys_ethtool::Features::of(ifname).and_then(|f| {
        let was_on: Vec<&str> = GSO_NOT_DESCRIBABLE
            .iter()
            .copied()
            .filter(|n| f.is_on(n))
            .collect();
        let left = f.turn_off(&was_on)?;
        let off = was_on.iter().filter(|n| !left.iter().any(|l| l == *n));
        Ok((off.map(|n| n.to_string()).collect::<Vec<_>>(), left))
    });
    match turned {
        Ok((off, left)) => {
            if !left.is_empty() {
                tracing::warn!(
                    "{ifname} in {netns_name}: the kernel kept {} on; tunnelled TCP from \
                     that container may not cross the switch",
                    left.join(", ")
                );
            }
            off
        }
        Err(e) => {
            tracing::warn!(
                "{ifname} in {netns_name}: cannot turn off tunnel segmentation offloads \
                 ({e}); tunnelled TCP from that container may not cross the switch"
            );
            Vec::new()
        }
    }
}

/// [`keep_gso_describable`] for the end `ifname` of a veth inside namespace `netns_name`
/// (a veth that already existed when the daemon started, or whose offloads someone
/// turned back on): the offloads it found on and turned off.
pub fn limit_container_offloads(netns_name: &str, ifname: &str) -> Vec<String> {
    let (name, ns_name) = (ifname.to_string(), netns_name.to_string());
    let done = open_netns(netns_name)
        .and_then(|ns| in_netns(&ns, move || Ok(keep_gso_describable(&name, &ns_name))));
    done.unwrap_or_else(|e| {
        tracing::warn!("{ifname} in {netns_name}: cannot check its offloads: {e}");
        Vec::new()
    })
}

/// Brings a link in the daemon's namespace up, optionally setting its MTU first.
pub fn set_up(name: &str, mtu: Option<u32>) -> Result<(), LinkError> {
    let name = name.to_string();
    run(|h| async move {
        let index = index_of(&h, &name).await?;
        let mut b = LinkUnspec::new_with_index(index).up();
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        h.link()
            .set(b.build())
            .execute()
            .await
            .map_err(|e| map_err(e, "set link up", &name, ""))
    })
}

/// Deletes a link in the daemon's namespace (a veth takes its peer with it).
pub fn delete(name: &str) -> Result<(), LinkError> {
    let name = name.to_string();
    run(|h| async move {
        let index = index_of(&h, &name).await?;
        h.link()
            .del(index)
            .execute()
            .await
            .map_err(|e| map_err(e, "delete link", &name, ""))
    })
}

/// Whether a link of that name exists in the daemon's namespace.
pub fn exists(name: &str) -> bool {
    let name = name.to_string();
    run(|h| async move { index_of(&h, &name).await }).is_ok()
}

/// The link's MAC address, when it has one.
pub fn mac_of(name: &str) -> Result<Option<MacAddr>, LinkError> {
    let name = name.to_string();
    run(|h| async move {
        let msg = get(&h, &name).await?;
        Ok(msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(b) => MacAddr::from_slice(b),
            _ => None,
        }))
    })
}

/// Whether a link exists inside a named namespace.
pub fn exists_in(netns_name: &str, ifname: &str) -> Result<bool, LinkError> {
    let ns = open_netns(netns_name)?;
    let ifname = ifname.to_string();
    in_netns(&ns, move || {
        Ok(run(|h| async move { index_of(&h, &ifname).await }).is_ok())
    })
}

fn disable_ipv6(ifname: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6");
    // Absent when IPv6 is compiled out or disabled: nothing to do then.
    let _ = std::fs::write(path, "1");
}

async fn get(h: &Handle, name: &str) -> Result<LinkMessage, LinkError> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(msg),
        Ok(None) => Err(LinkError::NotFound(name.to_string())),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Err(LinkError::NotFound(name.to_string())),
        Err(e) => Err(map_err(e, "get link", name, "")),
    }
}

async fn index_of(h: &Handle, name: &str) -> Result<u32, LinkError> {
    Ok(get(h, name).await?.header.index)
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn map_err(e: rtnetlink::Error, op: &str, name: &str, where_: &str) -> LinkError {
    match errno(&e) {
        Some(libc::EEXIST) => LinkError::Exists(name.to_string(), where_.to_string()),
        Some(libc::ENODEV) => LinkError::NotFound(name.to_string()),
        Some(code) => LinkError::Netlink {
            op: format!("{op} {name}"),
            msg: std::io::Error::from_raw_os_error(code).to_string(),
        },
        None => LinkError::Netlink {
            op: format!("{op} {name}"),
            msg: e.to_string(),
        },
    }
}

/// Runs one netlink conversation on a fresh current-thread runtime.
fn run<T, F, Fut>(f: F) -> Result<T, LinkError>
where
    F: FnOnce(Handle) -> Fut,
    Fut: std::future::Future<Output = Result<T, LinkError>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(LinkError::Runtime)?;
    rt.block_on(async move {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(LinkError::Runtime)?;
        let task = tokio::spawn(conn);
        let out = f(handle).await;
        task.abort();
        out
    })
}

/// Runs `f` on a thread that has entered `ns`; the daemon's own threads never move.
fn in_netns<T: Send + 'static>(
    ns: &File,
    f: impl FnOnce() -> Result<T, LinkError> + Send + 'static,
) -> Result<T, LinkError> {
    let ns = ns.try_clone().map_err(LinkError::Runtime)?;
    std::thread::spawn(move || {
        netns::enter(&ns).map_err(LinkError::Runtime)?;
        f()
    })
    .join()
    .unwrap_or_else(|_| {
        Err(LinkError::Netlink {
            op: "namespace worker".into(),
            msg: "panicked".into(),
        })
    })
}
