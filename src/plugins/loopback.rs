//! `loopback`: bring `lo` up in the container and report its addresses. Unlike the reference,
//! the result is converted to the requested version rather than relabelled.

use crate::cni::result::{CniResult, Interface, IpConfig};
use crate::cni::{CmdArgs, NetConf, Plugin};
use crate::sys::netlink::Handle;
use crate::sys::netns;
use anyhow::{bail, Result};

pub struct Loopback;

fn open_lo(netns: &str) -> Result<(Handle, crate::sys::netlink::Link)> {
    let ns = netns::open_container(netns)?;
    let h = Handle::open_in(&ns)?;
    let lo = h.link_by_name("lo")?;
    Ok((h, lo))
}

impl Plugin for Loopback {
    const ABOUT: &'static str = concat!("CNI loopback plugin weft ", env!("CARGO_PKG_VERSION"));

    fn add(args: &CmdArgs, conf: &NetConf) -> Result<CniResult> {
        let prev = conf
            .prev_result
            .as_ref()
            .map(|p| CniResult::parse_prev(p, conf.result_version()))
            .transpose()?;
        let (h, lo) = open_lo(&args.netns)?;
        h.set_link_up(lo.index, true)?;
        let addrs = h.addresses(Some(lo.index as u32))?;
        if let Some(bad) = addrs.iter().find(|a| !a.addr.addr().is_loopback()) {
            bail!(
                "loopback interface found with non-loopback address {:?}",
                bad.addr.to_string()
            );
        }
        if let Some(prev) = prev {
            return Ok(prev);
        }
        let first = |v4: bool| addrs.iter().find(|a| a.addr.addr().is_ipv4() == v4);
        let ips = [first(true), first(false)]
            .into_iter()
            .flatten()
            .map(|a| IpConfig {
                interface: Some(0),
                address: a.addr,
                gateway: None,
            })
            .collect();
        Ok(CniResult {
            interfaces: vec![Interface {
                name: "lo".into(),
                mac: "00:00:00:00:00:00".into(),
                sandbox: args.netns.clone(),
                ..Default::default()
            }],
            ips,
            ..Default::default()
        })
    }

    fn del(args: &CmdArgs, _conf: &NetConf) -> Result<()> {
        if args.netns.is_empty() {
            return Ok(());
        }
        match open_lo(&args.netns) {
            Ok((h, lo)) => Ok(h.set_link_up(lo.index, false)?),
            // The namespace is already gone: nothing left to undo.
            Err(e) if netns::is_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn check(args: &CmdArgs, _conf: &NetConf) -> Result<()> {
        let (_, lo) = open_lo(&args.netns)?;
        if !lo.up {
            bail!("loopback interface is down");
        }
        Ok(())
    }
}
