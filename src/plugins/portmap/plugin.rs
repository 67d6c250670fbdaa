//! portmap's `impl Plugin`: ADD forwards the mappings to the container's addresses from
//! prevResult and passes the result on; DEL removes the container's chains; CHECK looks for
//! every rule ADD made.

use super::rules::{self, Table};
use super::{container_addrs, PortMapConf, KEYS};
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
struct Lock {
    _file: std::fs::File,
}

impl Lock {
    fn take() -> Result<Lock> {
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

/// Removes container `id`'s chains from one family's nat table.
fn remove(ipt: &Iptables, net: &str, id: &str) -> Result<()> {
    let _lock = Lock::take()?;
    let table = Table::parse(&ipt.save("nat")?);
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
        let mut undo = Undo::new();
        if let Some(addr) = v4 {
            forward(&pc, &args.container_id, addr)?;
            undo.push("remove the IPv4 port forwarding", || {
                unforward(false, &pc.name, &args.container_id)
            });
            if pc.snat {
                enable_localnet_routing(addr)?;
            }
        }
        if let Some(addr) = v6 {
            forward(&pc, &args.container_id, addr)?;
        }
        undo.commit();
        Ok(prev)
    }

    fn del(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        // Only the chain names matter here: they come from the network name and the container
        // id, so whatever else the config says, the container's chains go.
        let (v4, v6) = (usable(false), usable(true));
        if v4.is_none() && v6.is_none() {
            bail!("neither iptables nor ip6tables is usable");
        }
        for ipt in [v4, v6].into_iter().flatten() {
            remove(&ipt, &conf.name, &args.container_id)?;
        }
        Ok(())
    }

    fn check(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        let pc = PortMapConf::load(conf)?;
        let Some(prev) = prev_result(conf)? else {
            bail!("Required prevResult missing");
        };
        if pc.mappings.is_empty() {
            return Ok(());
        }
        let (v4, v6) = container_addrs(&prev, &args.ifname);
        for addr in [v4, v6].into_iter().flatten() {
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
