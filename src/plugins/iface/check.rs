//! CHECK helpers shared by bridge and ptp: is what a previous ADD reported still in place?

use crate::cni::result::{CniResult, Interface};
use crate::sys::netlink::{Handle, Link, MAIN_TABLE};
use anyhow::{bail, Result};

/// The prevResult interface named `ifname` whose sandbox is `netns` (compared as strings, as
/// the reference does). Every IP that names an interface must name this one: CHECK looks for
/// all of them on it, and an index past the list is a prevResult no ADD produced.
pub fn find_container_iface<'r>(
    res: &'r CniResult,
    ifname: &str,
    netns: &str,
) -> Result<(usize, &'r Interface)> {
    let Some((idx, intf)) = res
        .interfaces
        .iter()
        .enumerate()
        .find(|(_, i)| i.name == ifname && i.sandbox == netns)
    else {
        bail!("Sandbox in prevResult  doesn't match configured netns: {netns}");
    };
    for (k, ip) in res.ips.iter().enumerate() {
        match ip.interface {
            Some(i) if i != idx => bail!(
                "prevResult ips[{k}] ({}) names interface {i}, not {ifname} (interface {idx} of {})",
                ip.address,
                res.interfaces.len()
            ),
            _ => {}
        }
    }
    Ok((idx, intf))
}

/// The container end: exists in the namespace, is a veth, has the reported MAC.
pub fn check_container_veth(h: &Handle, intf: &Interface) -> Result<Link> {
    if intf.sandbox.is_empty() {
        bail!("Interface {} is expected to be in a sandbox", intf.name);
    }
    let link = h.link_by_name(&intf.name).map_err(|e| {
        anyhow::anyhow!(
            "Container Interface name in prevResult: {} not found: {e}",
            intf.name
        )
    })?;
    if link.kind != "veth" {
        bail!("Error: Container interface {} not of type veth", link.name);
    }
    check_mac(&link, intf)?;
    Ok(link)
}

/// The MAC the result reported, if any, is the link's.
pub fn check_mac(link: &Link, intf: &Interface) -> Result<()> {
    if !intf.mac.is_empty() && !intf.mac.eq_ignore_ascii_case(&link.mac_string()) {
        bail!(
            "Interface MAC {} doesn't match container MAC: {}",
            intf.mac,
            link.mac_string()
        );
    }
    Ok(())
}

/// What CHECK verifies inside the container: every IP is on `link` with exactly its prefix and
/// the main table has a route to its subnet; every route is in the main table (its gateway too,
/// when it names one). One route dump serves both.
pub fn check_ips_and_routes(h: &Handle, link: &Link, res: &CniResult) -> Result<()> {
    let addrs = h.addresses(Some(link.index as u32))?;
    let routes = h.routes()?;
    for ip in &res.ips {
        if !addrs.iter().any(|a| a.addr == ip.address) {
            bail!(
                "Failed to match addr {} on interface {}",
                ip.address,
                link.name
            );
        }
        let prefix = ip.address.trunc();
        if !routes
            .iter()
            .any(|r| r.table == MAIN_TABLE && r.dst == prefix)
        {
            bail!("Expected route to {prefix} not found in routing table");
        }
    }
    for want in &res.routes {
        let found = routes.iter().any(|r| {
            r.table == MAIN_TABLE
                && r.dst == want.dst.trunc()
                && (want.gw.is_none() || r.gw == want.gw)
        });
        if !found {
            let gw = want
                .gw
                .map(|g| g.to_string())
                .unwrap_or_else(|| "<nil>".into());
            bail!(
                "Expected Route {{Dst:{} GW:{gw}}} not found in routing table",
                want.dst
            );
        }
    }
    Ok(())
}
