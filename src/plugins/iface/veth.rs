//! The veth pair between a container and the host, made the way the reference plugins make it.

use crate::sys::netlink::{Handle, Link, LinkEvents, VethOptions};
use crate::sys::netns;
use crate::sys::sysctl;
use anyhow::{anyhow, bail, Context, Result};
use ipnet::IpNet;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// Both ends of a new pair.
#[derive(Debug, Clone)]
pub struct VethPair {
    pub host: Link,
    pub container: Link,
}

/// `veth` and 8 random hex digits, the reference's host-side naming.
pub fn random_host_name() -> Result<String> {
    let mut b = [0u8; 4];
    crate::sys::random::fill(&mut b)?;
    Ok(format!(
        "veth{:02x}{:02x}{:02x}{:02x}",
        b[0], b[1], b[2], b[3]
    ))
}

/// Creates the pair with the container end named `ifname` (MTU and MAC as given) and the host
/// end randomly named, the host end up and, with `master`, already a port of that bridge; stops
/// the host end accepting router advertisements. `host` and `container` are handles opened in
/// the two namespaces, `container_ns` the container's; call from a thread in the host namespace
/// (the sysctl write).
///
/// The pair is made from the host side with the peer placed straight into the container (the
/// reference makes it from inside the container): the same links, addresses and state, but the
/// kernel's echo of the new host end, its up state and its master come with the one request.
pub fn setup_veth(
    host: &Handle,
    container: &Handle,
    container_ns: BorrowedFd<'_>,
    ifname: &str,
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
    master: Option<i32>,
) -> Result<VethPair> {
    let taken = || -> Result<bool> {
        match container.link_by_name(ifname) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    };
    let mut attempts = 0;
    let (host_name, echoed) = loop {
        let name = random_host_name()?;
        let opts = VethOptions {
            mtu,
            peer_mac: mac,
            peer_netns: Some(container_ns),
            up: true,
            master,
            ..Default::default()
        };
        match host.create_veth(&name, ifname, opts) {
            Ok(echoed) => break (name, echoed),
            // EEXIST names no side: either the container already has `ifname` (the error the
            // reference gives) or the random host name is taken (draw another, where the
            // reference simply fails).
            Err(e) if e.is_exists() => {
                if taken()? {
                    bail!("container veth name ({ifname:?}) already exists");
                }
                if attempts >= 10 {
                    return Err(e).context("failed to make veth pair");
                }
                attempts += 1;
            }
            Err(e) => return Err(e).context("failed to make veth pair"),
        }
    };
    let host_link = match echoed {
        Some(l) => l,
        None => host
            .link_by_name(&host_name)
            .with_context(|| format!("failed to lookup {host_name:?}"))?,
    };
    // Errors ignored as the reference does: the sysctl is missing when IPv6 is disabled.
    let _ = sysctl::set(&format!("net/ipv6/conf/{host_name}/accept_ra"), "0");
    let container_link = container
        .link_by_name(ifname)
        .with_context(|| format!("failed to lookup {ifname:?}"))?;
    Ok(VethPair {
        host: host_link,
        container: container_link,
    })
}

/// `ip link del IFNAME`, returning the global unicast addresses it had when `collect` (for
/// masquerade teardown; without it the addresses are not listed and the result is empty). A
/// missing link is not an error: the addresses are then empty.
pub fn delete_link_collect_addrs(h: Handle, ifname: &str, collect: bool) -> Result<Vec<IpNet>> {
    let link = match h.link_by_name(ifname) {
        Ok(l) => l,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let addrs = if collect {
        h.addresses(Some(link.index as u32))?
            .into_iter()
            .map(|a| a.addr)
            .filter(is_global_unicast)
            .collect()
    } else {
        Vec::new()
    };
    match super::unregister::delete_link(h, &link) {
        Ok(()) => Ok(addrs),
        Err(e) if e.is_not_found() => Ok(addrs),
        Err(e) => Err(anyhow!(e).context(format!("failed to delete {ifname:?}"))),
    }
}

/// DEL's part inside the container: deletes `ifname` in the namespace at `netns_path` and
/// returns its global unicast addresses if `collect`. A namespace that is already gone took
/// the interface with it, so that is success with no addresses.
pub fn delete_container_link(netns_path: &str, ifname: &str, collect: bool) -> Result<Vec<IpNet>> {
    match netns::open_container(netns_path) {
        Ok(ns) => delete_link_collect_addrs(Handle::open_in(&ns)?, ifname, collect),
        Err(e) if netns::is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Go's `IsGlobalUnicast`: not unspecified, loopback, multicast, link-local or broadcast.
fn is_global_unicast(n: &IpNet) -> bool {
    match n.addr() {
        std::net::IpAddr::V4(a) => {
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || a.is_link_local()
                || a.is_broadcast())
        }
        std::net::IpAddr::V6(a) => {
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || (a.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The reference's pauses between looks at a new port's operational state.
const OPER_UP_POLLS: [u64; 5] = [0, 50, 500, 1000, 1000];

/// Waits for a new bridge port to leave the disabled state, polling after 0, 50, 500, 1000 and
/// 1000 ms as the reference does. Fails with the last operational state seen.
pub fn wait_oper_up(h: &Handle, index: i32) -> Result<Link> {
    let mut last = None;
    for ms in OPER_UP_POLLS {
        std::thread::sleep(Duration::from_millis(ms));
        let l = h.link_by_index(index)?;
        if l.oper_up {
            return Ok(l);
        }
        last = Some(l);
    }
    Err(not_up(&last.expect("polled at least once")))
}

/// The reference's error for a port that did not come up in time.
fn not_up(l: &Link) -> anyhow::Error {
    anyhow!("bridge port in error state: {}", l.oper_state_name())
}

/// [`wait_oper_up`] on the kernel's notifications, for as long as the reference's polls take in
/// all: `events` ([`LinkEvents::changes_of`] the port) must have been opened before the change
/// that brings the port up. Why: a look takes RTNL, and right after the container's link-up
/// the kernel's IPv6 worker takes it to flood the new link-local address's announcements to
/// every port of the bridge; the port's new state is announced by the kernel's link watch as
/// soon as it is set, so the wait need not queue behind that flood. Lost notifications fall
/// back to polling.
pub fn wait_oper_up_notified(h: &Handle, mut events: LinkEvents, index: i32) -> Result<Link> {
    let deadline = Instant::now() + Duration::from_millis(OPER_UP_POLLS.iter().sum());
    loop {
        match events.latest(index) {
            Ok(Some(l)) if l.oper_up => return Ok(l),
            Ok(_) => {}
            Err(_) => return wait_oper_up(h, index),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut fd = libc::pollfd {
            fd: events.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one pollfd, alive for the call.
        if unsafe { libc::poll(&mut fd, 1, ms) } < 0
            && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
        {
            return wait_oper_up(h, index);
        }
    }
    let l = h.link_by_index(index)?;
    if l.oper_up {
        return Ok(l);
    }
    Err(not_up(&l))
}
