//! The host side of a bridge attachment: the bridge itself, the port the host veth becomes,
//! and the `<bridge>.<vlan>` gateway link of VLAN setups.

use super::conf::BridgeConf;
use crate::sys::netlink::{Handle, Link, VethOptions};
use crate::sys::sysctl;
use anyhow::{anyhow, bail, Context, Result};

/// Default VLAN a new bridge port gets (the bridge's `default_pvid`).
const DEFAULT_VID: u16 = 1;

/// Creates the bridge if needed (an existing one keeps its MTU and VLAN filtering), turns on
/// promisc when asked, checks that the name is a bridge, and sets it up. A bridge that is
/// already there, up and as promiscuous as asked costs one lookup (the reference's create,
/// lookup and set-up would change nothing on it).
pub fn ensure_bridge(h: &Handle, conf: &BridgeConf) -> Result<Link> {
    let name = &conf.bridge;
    let existing = match h.link_by_name(name) {
        Ok(l) => Some(l),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(anyhow!(e).context(format!("could not lookup {name:?}"))),
    };
    let br = match existing {
        Some(l) => l,
        None => {
            match h.create_bridge(name, conf.mtu, conf.vlan_filtering()) {
                Ok(()) => {}
                // Made by a concurrent ADD since the lookup.
                Err(e) if e.is_exists() => {}
                Err(e) => return Err(anyhow!(e).context(format!("could not add {name:?}"))),
            }
            h.link_by_name(name)
                .with_context(|| format!("could not lookup {name:?}"))?
        }
    };
    if br.kind != "bridge" {
        bail!("{name:?} already exists but is not a bridge");
    }
    if conf.promisc_mode && !br.promisc {
        h.set_link_promisc(br.index, true)
            .with_context(|| format!("could not set promiscuous mode on {name:?}"))?;
    }
    // Errors ignored as the reference does: missing when IPv6 is off. The lookup reports the
    // setting, which spares every later ADD the /proc/sys walk (see Handle::set_ipv4_conf).
    if br.ipv6_accept_ra != Some(0) {
        let _ = sysctl::set(&format!("net/ipv6/conf/{name}/accept_ra"), "0");
    }
    if br.up && (br.promisc || !conf.promisc_mode) {
        return Ok(br);
    }
    h.set_link_up(br.index, true)
        .with_context(|| format!("failed to set {name:?} up"))?;
    Ok(h.link_by_index(br.index)?)
}

/// Gives `port`, already a port of `br` (see [`crate::plugins::iface::setup_veth`]'s `master`), the
/// hairpin and isolation flags and the VLANs of `conf`.
pub fn configure_port(h: &Handle, port: &Link, conf: &BridgeConf) -> Result<()> {
    h.set_port_flags(port.index, conf.hairpin_mode, conf.port_isolation)
        .with_context(|| format!("failed to setup hairpin mode for {}", port.name))?;
    if conf.vlan != 0 || !conf.vlan_trunk.is_empty() {
        set_port_vlans(
            h,
            port,
            conf.vlan,
            &conf.vlan_trunk,
            conf.preserve_default_vlan,
        )?;
    }
    Ok(())
}

fn set_port_vlans(
    h: &Handle,
    port: &Link,
    vlan: u16,
    trunk: &[u16],
    preserve_default: bool,
) -> Result<()> {
    if !preserve_default {
        for v in h.port_vlans(port.index)? {
            h.delete_port_vlan(port.index, v.vid)
                .with_context(|| format!("failed to remove default VLAN from {}", port.name))?;
        }
    }
    if vlan != 0 {
        h.add_port_vlan(port.index, vlan, true, true)
            .with_context(|| format!("failed to setup vlan tag on {}", port.name))?;
    }
    for &vid in trunk {
        h.add_port_vlan(port.index, vid, false, false)
            .with_context(|| format!("failed to setup vlan trunk on {}", port.name))?;
    }
    if vlan == 0 && !trunk.is_empty() {
        // A trunk port still needs a native VLAN for untagged frames.
        h.add_port_vlan(port.index, DEFAULT_VID, true, true)
            .with_context(|| format!("failed to setup native vlan on {}", port.name))?;
    }
    Ok(())
}

/// The `<bridge>.<vlan>` link that carries the gateway address of a VLAN: one end of a veth
/// pair made in the host namespace, its peer a port of the bridge in that VLAN.
pub fn ensure_vlan_gateway_link(
    h: &Handle,
    br: &Link,
    vlan: u16,
    preserve_default: bool,
) -> Result<Link> {
    let name = format!("{}.{vlan}", br.name);
    match h.link_by_name(&name) {
        Ok(l) => return Ok(l),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let peer = crate::plugins::iface::veth::random_host_name()?;
    h.create_veth(&name, &peer, VethOptions::default())
        .with_context(|| format!("failed to create vlan gateway {name:?}"))?;
    let made = (|| -> Result<Link> {
        let peer_link = h.link_by_name(&peer)?;
        h.set_link_master(peer_link.index, br.index)
            .with_context(|| format!("failed to connect {peer:?} to bridge {}", br.name))?;
        set_port_vlans(h, &peer_link, vlan, &[], preserve_default)?;
        h.set_link_up(peer_link.index, true)?;
        let link = h.link_by_name(&name)?;
        h.set_link_up(link.index, true)?;
        Ok(h.link_by_index(link.index)?)
    })();
    match made {
        Ok(l) => Ok(l),
        Err(e) => {
            if let Ok(l) = h.link_by_name(&name) {
                let _ = h.delete_link(l.index);
            }
            Err(e)
        }
    }
}
