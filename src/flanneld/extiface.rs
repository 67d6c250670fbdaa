//! Choosing flanneld's external interface and the address it advertises, as upstream does:
//! `-iface` (names or IPs, in order), then `-iface-regex` (matched against address text, then
//! names), then `-iface-can-reach` (the kernel's route lookup), else the interface owning
//! `-public-ip`, else the interface of the default route.

use anyhow::{anyhow, bail, Context, Result};
use ipnet::IpNet;
use regex::Regex;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::sys::netlink::{Address, Handle, Link};

/// `IFA_F_PERMANENT`: configured, not learned (SLAAC/DHCP-style dynamic).
const IFA_F_PERMANENT: u32 = 0x80;
/// `IFA_F_DEPRECATED`: preferred lifetime over; never chosen.
const IFA_F_DEPRECATED: u32 = 0x20;
/// `IFA_F_TEMPORARY` (privacy address).
const IFA_F_TEMPORARY: u32 = 0x01;

/// The flags that steer the choice.
#[derive(Debug, Clone, Default)]
pub struct ExtIfaceOptions {
    pub ifaces: Vec<String>,
    pub iface_regex: Vec<String>,
    pub can_reach: Option<IpAddr>,
    pub public_ip: Option<Ipv4Addr>,
    pub public_ipv6: Option<Ipv6Addr>,
    pub ipv6: bool,
}

/// The chosen interface.
#[derive(Debug, Clone)]
pub struct ExtIface {
    pub link: Link,
    /// The interface's own IPv4 address (what the vxlan device binds to).
    pub iface_addr: Ipv4Addr,
    /// What peers are told to send to (`-public-ip`, else `iface_addr`).
    pub ext_addr: Ipv4Addr,
    pub iface_addr6: Option<Ipv6Addr>,
    pub ext_addr6: Option<Ipv6Addr>,
}

fn usable(a: &Address) -> bool {
    let ip = a.addr.addr();
    let global_or_ll = match ip {
        IpAddr::V4(v) => !v.is_loopback() && !v.is_unspecified() && !v.is_multicast(),
        IpAddr::V6(v) => !v.is_loopback() && !v.is_unspecified() && !v.is_multicast(),
    };
    global_or_ll && a.flags & IFA_F_DEPRECATED == 0
}

/// IPv4 169.254/16 or IPv6 fe80::/10.
pub fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => v.is_link_local(),
        IpAddr::V6(v) => v.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// The addresses of one family on `index`, best first: global before link-local, permanent
/// before dynamic, non-temporary before temporary.
fn ranked(addrs: &[Address], index: i32, v6: bool) -> Vec<IpAddr> {
    let mut v: Vec<&Address> = addrs
        .iter()
        .filter(|a| a.index as i32 == index && a.addr.addr().is_ipv6() == v6 && usable(a))
        .collect();
    v.sort_by_key(|a| {
        (
            is_link_local(a.addr.addr()),
            a.flags & IFA_F_PERMANENT == 0,
            a.flags & IFA_F_TEMPORARY != 0,
        )
    });
    v.into_iter().map(|a| a.addr.addr()).collect()
}

fn first_v4(addrs: &[Address], index: i32) -> Option<Ipv4Addr> {
    ranked(addrs, index, false)
        .into_iter()
        .find_map(|ip| match ip {
            IpAddr::V4(v) => Some(v),
            IpAddr::V6(_) => None,
        })
}

fn first_v6(addrs: &[Address], index: i32) -> Option<Ipv6Addr> {
    ranked(addrs, index, true)
        .into_iter()
        .find_map(|ip| match ip {
            IpAddr::V6(v) if !is_link_local(ip) => Some(v),
            _ => None,
        })
}

fn owner_of(addrs: &[Address], ip: IpAddr) -> Option<i32> {
    addrs
        .iter()
        .find(|a| a.addr.addr() == ip)
        .map(|a| a.index as i32)
}

/// Picks the interface per `o`.
pub fn select(h: &Handle, o: &ExtIfaceOptions) -> Result<ExtIface> {
    let links = h.links().context("failed to list interfaces")?;
    let addrs = h.addresses(None).context("failed to list addresses")?;
    let by_index = |i: i32| links.iter().find(|l| l.index == i).cloned();
    let mut chosen: Option<(Link, Option<IpAddr>)> = None;

    for want in &o.ifaces {
        let found = match want.parse::<IpAddr>() {
            Ok(ip) => owner_of(&addrs, ip)
                .and_then(by_index)
                .map(|l| (l, Some(ip))),
            Err(_) => links
                .iter()
                .find(|l| &l.name == want)
                .cloned()
                .map(|l| (l, None)),
        };
        if found.is_some() {
            chosen = found;
            break;
        }
        log::warn!("-iface {want:?}: no such interface or address here; trying the next");
    }
    if chosen.is_none() && !o.iface_regex.is_empty() {
        chosen = by_regex(&links, &addrs, &o.iface_regex, o.ipv6)?;
    }
    if chosen.is_none() {
        if let Some(dst) = o.can_reach {
            let r = h
                .route_get(dst)
                .with_context(|| format!("-iface-can-reach {dst}: no route"))?;
            let link = r
                .oif
                .and_then(by_index)
                .ok_or_else(|| anyhow!("-iface-can-reach {dst}: the route has no device"))?;
            chosen = Some((link, r.src));
        }
    }
    let explicit = !o.ifaces.is_empty() || !o.iface_regex.is_empty() || o.can_reach.is_some();
    if chosen.is_none() && explicit {
        bail!("none of -iface, -iface-regex, -iface-can-reach matched an interface on this host");
    }
    if chosen.is_none() {
        if let Some(ip) = o.public_ip {
            let i = owner_of(&addrs, IpAddr::V4(ip)).ok_or_else(|| {
                anyhow!("-public-ip {ip} is not an address of this host; name the interface with -iface as well")
            })?;
            chosen = by_index(i).map(|l| (l, Some(IpAddr::V4(ip))));
        }
    }
    if chosen.is_none() {
        chosen = default_route_link(h, &links)?.map(|l| (l, None));
    }
    let (link, hinted) =
        chosen.ok_or_else(|| anyhow!("no default route: choose the interface with -iface"))?;
    if link.mtu == 0 {
        bail!("interface {} reports MTU 0", link.name);
    }
    let iface_addr = match hinted {
        Some(IpAddr::V4(v)) => v,
        _ => first_v4(&addrs, link.index)
            .ok_or_else(|| anyhow!("interface {} has no IPv4 address", link.name))?,
    };
    let iface_addr6 = match hinted {
        Some(IpAddr::V6(v)) => Some(v),
        _ => first_v6(&addrs, link.index),
    };
    if o.ipv6 && iface_addr6.is_none() {
        bail!(
            "IPv6 is enabled but interface {} has no global IPv6 address",
            link.name
        );
    }
    Ok(ExtIface {
        iface_addr,
        ext_addr: o.public_ip.unwrap_or(iface_addr),
        iface_addr6,
        ext_addr6: o.public_ipv6.or(iface_addr6),
        link,
    })
}

fn by_regex(
    links: &[Link],
    addrs: &[Address],
    patterns: &[String],
    ipv6: bool,
) -> Result<Option<(Link, Option<IpAddr>)>> {
    for p in patterns {
        let re =
            Regex::new(p).with_context(|| format!("-iface-regex {p:?} is not a valid regex"))?;
        for a in addrs {
            let ip = a.addr.addr();
            if ip.is_ipv6() && !ipv6 || !usable(a) {
                continue;
            }
            if re.is_match(&ip.to_string()) {
                if let Some(l) = links.iter().find(|l| l.index == a.index as i32) {
                    return Ok(Some((l.clone(), Some(ip).filter(IpAddr::is_ipv4))));
                }
            }
        }
        if let Some(l) = links.iter().find(|l| re.is_match(&l.name)) {
            return Ok(Some((l.clone(), None)));
        }
    }
    Ok(None)
}

fn default_route_link(h: &Handle, links: &[Link]) -> Result<Option<Link>> {
    let routes = h.routes().context("failed to list routes")?;
    let default = routes.iter().find(|r| {
        r.table == crate::sys::netlink::MAIN_TABLE
            && r.dst.prefix_len() == 0
            && matches!(r.dst, IpNet::V4(_))
            && r.oif.is_some()
    });
    Ok(default.and_then(|r| links.iter().find(|l| Some(l.index) == r.oif).cloned()))
}
