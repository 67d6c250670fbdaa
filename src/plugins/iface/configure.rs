//! Applies a result to the container interface, as the reference's `ipam.ConfigureIface`:
//! addresses, link up, IPv6 DAD settling, then routes.

use crate::cni::result::CniResult;
use crate::sys::netlink::{self, Handle, Link, IFA_F_DADFAILED, IFA_F_TENTATIVE};
use crate::sys::netns::NetNs;
use crate::sys::sysctl;
use anyhow::{anyhow, bail, Context, Result};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long IPv6 addresses may stay tentative on an up link (the reference's 5 s).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Configures `link` (in `ns`, reached through `h`) with the result's IPs whose `interface`
/// names it, sets it up, and adds the result's routes through it. A route without a gateway
/// goes via the first gateway of its family among those IPs.
pub fn configure_iface(ns: &NetNs, h: &Handle, link: &Link, res: &CniResult) -> Result<()> {
    if res.interfaces.is_empty() {
        bail!("no interfaces to configure");
    }
    let ifname = link.name.as_str();
    let (mut v4gw, mut v6gw): (Option<IpAddr>, Option<IpAddr>) = (None, None);
    let mut v6_ready = false;
    for ipc in &res.ips {
        let Some(idx) = ipc.interface else { continue };
        if res.interfaces.get(idx).is_none_or(|i| i.name != ifname) {
            bail!(
                "failed to add IP addr {} to {ifname:?}: invalid interface index",
                ipc.address
            );
        }
        if ipc.address.addr().is_ipv6() && !v6_ready {
            ns.run(|| enable_ipv6(ifname))?;
            v6_ready = true;
        }
        h.add_address(link.index, ipc.address)
            .with_context(|| format!("failed to add IP addr {} to {ifname:?}", ipc.address))?;
        match ipc.gateway {
            Some(gw @ IpAddr::V4(_)) if v4gw.is_none() => v4gw = Some(gw),
            Some(gw @ IpAddr::V6(_)) if v6gw.is_none() => v6gw = Some(gw),
            _ => {}
        }
    }
    h.set_link_up(link.index, true)
        .with_context(|| format!("failed to set {ifname:?} UP"))?;
    if v6gw.is_some() {
        settle_addresses(h, link.index, ifname)?;
    }
    for r in &res.routes {
        let gw = r.gw.or(if r.dst.addr().is_ipv4() { v4gw } else { v6gw });
        let mut route = netlink::Route::new(r.dst.trunc());
        route.gw = gw;
        route.oif = Some(link.index);
        route.priority = (r.priority != 0).then_some(r.priority);
        if let Some(t) = r.table {
            route.table = t as u32;
        }
        if let Some(s) = r.scope {
            route.scope = s as u8;
        }
        h.add_route_ecmp(&route).with_context(|| {
            let via = gw.map(|g| g.to_string()).unwrap_or_else(|| "<nil>".into());
            format!("failed to add route '{} via {via} dev {ifname}'", r.dst)
        })?;
    }
    Ok(())
}

/// Before the first IPv6 address: make sure IPv6 is on for `lo` and the interface, and that
/// addresses survive the link going down.
fn enable_ipv6(ifname: &str) -> Result<()> {
    for dev in ["lo", ifname] {
        let name = format!("net/ipv6/conf/{dev}/disable_ipv6");
        if sysctl::get(&name).is_ok_and(|v| v != "0") {
            sysctl::set(&name, "0")?;
        }
    }
    sysctl::set(&format!("net/ipv6/conf/{ifname}/keep_addr_on_down"), "1")
}

/// Waits for IPv6 addresses to leave the tentative state. Still tentative on a link that is
/// down is fine (DAD resumes when it comes up); a failed DAD is an error.
fn settle_addresses(h: &Handle, index: i32, ifname: &str) -> Result<()> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let addrs = h.addresses_of(Some(index as u32), true)?;
        let mut tentative = false;
        for a in &addrs {
            if a.flags & IFA_F_DADFAILED != 0 {
                bail!("link {ifname} has address {} in DADFAILED state", a.addr);
            }
            tentative |= a.flags & IFA_F_TENTATIVE != 0;
        }
        if !tentative {
            return Ok(());
        }
        if Instant::now() >= deadline {
            if !h.link_by_index(index)?.oper_up {
                return Ok(());
            }
            return Err(anyhow!(
                "link {ifname} still has tentative addresses after {} seconds",
                SETTLE_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
