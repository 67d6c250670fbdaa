//! Gateway addresses on a host device (the bridge), as the reference's `ensureAddr`.

use crate::sys::netlink::{Handle, Link};
use anyhow::{anyhow, bail, Context, Result};
use ipnet::IpNet;

/// Puts `addr` (gateway/prefix) on `link` unless it is already there. IPv4: any other IPv4
/// address is a conflict. IPv6: only an address whose subnet overlaps. A conflict is removed
/// when `force`, an error otherwise. Then pins the link's MAC to its current value, so a bridge
/// stops following the lowest port MAC.
pub fn ensure_addr(h: &Handle, link: &Link, addr: IpNet, force: bool) -> Result<()> {
    let v4 = addr.addr().is_ipv4();
    let existing = h
        .addresses_of(Some(link.index as u32), !v4)
        .with_context(|| format!("could not get list of IP addresses: {}", link.name))?;
    for a in &existing {
        if a.addr == addr {
            return Ok(());
        }
        let conflict = v4 || a.addr.contains(&addr.addr()) || addr.contains(&a.addr.addr());
        if !conflict {
            continue;
        }
        if !force {
            bail!(
                "{:?} already has an IP address different from {addr}",
                link.name
            );
        }
        h.delete_address(link.index, a.addr)
            .with_context(|| format!("failed to remove IP address from {:?}", link.name))?;
    }
    match h.add_address(link.index, addr) {
        Ok(()) => {}
        Err(e) if e.is_exists() => {}
        Err(e) => {
            return Err(anyhow!(e).context(format!("could not add IP address to {:?}", link.name)))
        }
    }
    let mac: [u8; 6] = link.mac.as_slice().try_into().map_err(|_| {
        anyhow!(
            "could not set bridge's mac: {:?} has no Ethernet address",
            link.name
        )
    })?;
    h.set_link_mac(link.index, mac)
        .context("could not set bridge's mac")?;
    Ok(())
}
