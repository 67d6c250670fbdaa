//! portmap's `impl Plugin`: ADD forwards the mappings to the container's addresses from
//! prevResult and passes the result on; DEL removes the container's chains (iptables) or rules
//! (nftables, [`super::nft`]); CHECK looks for every rule ADD made.

use super::rules::{self, Table};
use super::{container_addrs, nft, Backend, PortMapConf, KEYS};
use crate::cni::result::CniResult;
use crate::cni::{CmdArgs, NetConf, Plugin};
use crate::plugins::undo::Undo;
use crate::sys::firewall::Iptables;
use anyhow::{bail, Context, Result};
use ipnet::IpNet;
use std::os::fd::AsRawFd;

pub struct Portmap;

/// Serialises this plugin's read-modify-write of the nat table: two ADDs that both found a
/// shared rule missing would both add it.
const LOCK: &str = "/run/weft/portmap.lock";

/// Held until dropped: closing the file releases the flock.
pub(super) struct Lock {
    _file: std::fs::File,
}

impl Lock {
    pub(super) fn take() -> Result<Lock> {
        std::fs::create_dir_all("/run/weft").context("failed to create /run/weft")?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK)
            .with_context(|| format!("failed to open {LOCK}"))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error()).context(format!("failed to lock {LOCK}"));
        }
        Ok(Lock { _file: f })
    }
}

fn prev_result(conf: &NetConf) -> Result<Option<CniResult>> {
    Ok(conf
        .prev_result
        .as_ref()
        .map(|p| CniResult::parse_prev(p, conf.result_version()))
        .transpose()?)
}

/// Sets up the forwarding to `container` in its family's nat table. A lost race with another
/// program that changed the table between our read and write is retried from a new read.
fn forward(pc: &PortMapConf, id: &str, container: IpNet) -> Result<()> {
    let v6 = container.addr().is_ipv6();
    let ipt = Iptables::new(v6).context("failed to open iptables")?;
    let chain = rules::dnat(pc, id, container);
    let _lock = Lock::take()?;
    let mut tries = 0;
    loop {
        let table = Table::parse(&ipt.save("nat")?);
        match ipt.restore(&rules::add_script(&table, pc, &chain)) {
            Ok(()) => return Ok(()),
            Err(_) if tries < 2 => tries += 1,
            Err(e) => return Err(e).context("unable to setup DNAT"),
        }
    }
}

/// A family's nat table could not be read: that family is not in use here.
#[derive(Debug)]
struct Unreadable;

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cannot read the nat table")
    }
}

impl std::error::Error for Unreadable {}

/// Removes container `id`'s chains from one family's nat table.
fn remove(ipt: &Iptables, net: &str, id: &str) -> Result<()> {
    let _lock = Lock::take()?;
    let saved = ipt.save("nat").map_err(|e| e.context(Unreadable))?;
    let table = Table::parse(&saved);
    if let Some(script) = rules::del_script(&table, net, id) {
        let fam = if ipt.is_v6() { "ipv6" } else { "ipv4" };
        ipt.restore(&script)
            .with_context(|| format!("could not tear down {fam} dnat"))?;
    }
    Ok(())
}

fn unforward(v6: bool, net: &str, id: &str) -> Result<()> {
    remove(&Iptables::new(v6)?, net, id)
}

/// Deletes the conntrack entries of the UDP host ports (see [`crate::sys::conntrack`]) once
/// the rules are in place, so new traffic meets them. A failure is only logged, as the
/// reference only logs it.
fn forget_stale_udp(pc: &PortMapConf, v6: bool) {
    let ports: Vec<u16> = pc
        .mappings
        .iter()
        .filter(|m| m.protocol.eq_ignore_ascii_case("udp") && m.applies_to(v6))
        .map(|m| m.host_port as u16)
        .collect();
    if ports.is_empty() {
        return;
    }
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    if let Err(e) =
        crate::sys::conntrack::delete_by_dst_port(family, libc::IPPROTO_UDP as u8, &ports)
    {
        log::warn!("failed to delete stale UDP conntrack entries for ports {ports:?}: {e}");
    }
}

/// iptables for one family if it can be used here (the reference's `maybeGetIptables`).
fn usable(v6: bool) -> Option<Iptables> {
    let ipt = Iptables::new(v6).ok()?;
    ipt.chain_exists("nat", "OUTPUT").ok().filter(|e| *e)?;
    Some(ipt)
}

/// 127.0.0.0/8 may cross a routing boundary on the host interface that routes to the
/// container, so a connection to 127.0.0.1:hostPort can be forwarded.
fn enable_localnet_routing(container: IpNet) -> Result<()> {
    let h = crate::sys::netlink::Handle::open()?;
    let Ok(route) = h.route_get(container.addr()) else {
        return Ok(());
    };
    let Some(oif) = route.oif else {
        return Ok(());
    };
    let link = h.link_by_index(oif)?;
    crate::sys::sysctl::ensure(&format!("net/ipv4/conf/{}/route_localnet", link.name), "1")
        .context("unable to enable route_localnet")
}

/// ADD with iptables: one family at a time; a failure after the IPv4 rules are in takes them
/// back.
fn add_iptables(pc: &PortMapConf, id: &str, v4: Option<IpNet>, v6: Option<IpNet>) -> Result<()> {
    let mut undo = Undo::new();
    if let Some(addr) = v4 {
        forward(pc, id, addr)?;
        forget_stale_udp(pc, false);
        undo.push("remove the IPv4 port forwarding", || {
            unforward(false, &pc.name, id)
        });
        if pc.snat {
            enable_localnet_routing(addr)?;
        }
    }
    if let Some(addr) = v6 {
        forward(pc, id, addr)?;
        forget_stale_udp(pc, true);
    }
    undo.commit();
    Ok(())
}

/// ADD with nftables: both families in one transaction, so a refused IPv6 half leaves no IPv4
/// rules either; a later failure (route_localnet) removes them again.
fn add_nftables(pc: &PortMapConf, id: &str, v4: Option<IpNet>, v6: Option<IpNet>) -> Result<()> {
    let addrs: Vec<IpNet> = [v4, v6].into_iter().flatten().collect();
    if addrs.is_empty() {
        return Ok(());
    }
    nft::forward(pc, id, &addrs)?;
    let mut undo = Undo::new();
    undo.push("remove the port forwarding", || nft::unforward(id));
    if let Some(addr) = v4 {
        forget_stale_udp(pc, false);
        if pc.snat {
            enable_localnet_routing(addr)?;
        }
    }
    if v6.is_some() {
        forget_stale_udp(pc, true);
    }
    undo.commit();
    Ok(())
}

impl Plugin for Portmap {
    const ABOUT: &'static str = concat!("CNI portmap plugin weft ", env!("CARGO_PKG_VERSION"));
    const KEYS: &'static [&'static str] = &KEYS;

    fn add(args: &CmdArgs, conf: &NetConf) -> Result<CniResult> {
        let pc = PortMapConf::load(conf)?;
        let Some(prev) = prev_result(conf)? else {
            bail!("must be called as chained plugin");
        };
        if pc.mappings.is_empty() {
            return Ok(prev);
        }
        let (v4, v6) = container_addrs(&prev, &args.ifname);
        match pc.backend {
            Backend::Iptables => add_iptables(&pc, &args.container_id, v4, v6)?,
            Backend::Nftables => add_nftables(&pc, &args.container_id, v4, v6)?,
        }
        Ok(prev)
    }

    fn del(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        if Backend::for_del(conf)? == Backend::Nftables {
            return nft::unforward(&args.container_id);
        }
        // Only the chain names matter here: they come from the network name and the container
        // id, so whatever else the config says, the container's chains go. A family whose
        // table cannot be read is skipped, unless neither can be.
        let mut unusable = Vec::new();
        for v6 in [false, true] {
            match Iptables::new(v6).and_then(|ipt| remove(&ipt, &conf.name, &args.container_id)) {
                Ok(()) => {}
                Err(e)
                    if e.downcast_ref::<Unreadable>().is_some() || Iptables::new(v6).is_err() =>
                {
                    unusable.push(format!("{e:#}"))
                }
                Err(e) => return Err(e),
            }
        }
        if unusable.len() == 2 {
            bail!(
                "neither iptables nor ip6tables is usable: {}",
                unusable.join("; ")
            );
        }
        Ok(())
    }

    fn check(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        let pc = PortMapConf::read(conf)?;
        let Some(prev) = prev_result(conf)? else {
            bail!("Required prevResult missing");
        };
        if pc.mappings.is_empty() {
            return Ok(());
        }
        let (v4, v6) = container_addrs(&prev, &args.ifname);
        for addr in [v4, v6].into_iter().flatten() {
            if pc.backend == Backend::Nftables {
                nft::check(&pc, &args.container_id, addr)?;
                continue;
            }
            let v6 = addr.addr().is_ipv6();
            let fam = if v6 { "ipv6" } else { "ipv4" };
            let ipt = usable(v6)
                .with_context(|| format!("could not check {fam} dnat: iptables is not usable"))?;
            let c = rules::dnat(&pc, &args.container_id, addr);
            if !ipt.chain_exists("nat", &c.name)? {
                bail!(
                    "could not check {fam} dnat: chain {} not found in iptables table nat",
                    c.name
                );
            }
            for r in &c.rules {
                let r: Vec<&str> = r.iter().map(String::as_str).collect();
                if !ipt.exists("nat", &c.name, &r)? {
                    bail!(
                        "could not check {fam} dnat: rule {r:?} in chain {} not found in table nat",
                        c.name
                    );
                }
            }
            for r in &c.entry_rules {
                let mut r: Vec<&str> = r.iter().map(String::as_str).collect();
                r.extend(["-j", &c.name]);
                if !ipt.exists("nat", rules::TOP_DNAT, &r)? {
                    bail!(
                        "could not check {fam} dnat: rule {r:?} in chain {} not found in table nat",
                        rules::TOP_DNAT
                    );
                }
            }
        }
        Ok(())
    }
}
