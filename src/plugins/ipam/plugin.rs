//! `host-local` IPAM: one address per range set from local ranges, state on disk in the same
//! layout as Go's host-local. GC (1.1.0) releases reservations of attachments the runtime no
//! longer knows.

use crate::cni::result::{CniResult, IpConfig};
use crate::cni::{CmdArgs, Error, NetConf, Plugin};
use crate::plugins::ipam::allocator::{allocate_with_held, AddressStore};
use crate::plugins::ipam::config::IpamConfig;
use crate::plugins::ipam::resolvconf;
use crate::plugins::ipam::store::DiskStore;
use anyhow::{anyhow, bail, Result};
use std::collections::HashSet;
use std::net::IpAddr;

pub struct HostLocal;

impl Plugin for HostLocal {
    const ABOUT: &'static str = concat!("CNI host-local plugin weft ", env!("CARGO_PKG_VERSION"));

    fn add(args: &CmdArgs, conf: &NetConf) -> Result<CniResult> {
        let cfg = IpamConfig::load(conf, &args.args)?;
        let mut result = CniResult::default();
        if let Some(path) = &cfg.resolv_conf {
            result.dns = resolvconf::read(path)?;
        }
        let mut store = DiskStore::open(&cfg.data_dir, &cfg.name)?;
        let mut pending: Vec<IpAddr> = cfg.requested.clone();
        let mut reserved: Vec<IpAddr> = Vec::new();
        let outcome = (|| -> Result<()> {
            let held = store.get_by_id(&args.container_id, &args.ifname)?;
            for (idx, set) in cfg.ranges.iter().enumerate() {
                let requested = pending
                    .iter()
                    .position(|ip| set.contains(*ip))
                    .map(|i| pending.remove(i));
                store.prepare(&args.container_id, &args.ifname)?;
                let mut locked = store.lock()?;
                let got = allocate_with_held(
                    &mut *locked,
                    set,
                    idx,
                    &args.container_id,
                    &args.ifname,
                    requested,
                    &held,
                )
                .map_err(|e| anyhow!("failed to allocate for range {idx}: {e:#}"))?;
                reserved.push(got.address.addr());
                result.ips.push(IpConfig {
                    interface: None,
                    address: got.address,
                    gateway: Some(got.gateway),
                });
            }
            if !pending.is_empty() {
                let list: Vec<String> = pending.iter().map(|ip| ip.to_string()).collect();
                bail!("failed to allocate all requested IPs: {}", list.join(" "));
            }
            store.sync()
        })();
        if let Err(e) = outcome {
            // Undo exactly what this ADD reserved; earlier reservations are not ours to drop.
            if let Ok(mut locked) = store.lock() {
                for ip in reserved {
                    if let Err(undo) = locked.release_ip(ip, &args.container_id, &args.ifname) {
                        log::warn!("host-local: rollback of {ip} failed: {undo:#}");
                    }
                }
            }
            return Err(e);
        }
        result.routes = cfg.routes;
        Ok(result)
    }

    fn del(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        // Only where the state lives (see `crate::cni::lenient`): ranges that no longer parse
        // must not keep an attachment's addresses from being released.
        let mut store = DiskStore::open(&IpamConfig::data_dir_of(conf), &conf.name)?;
        store.release_by_id(&args.container_id, &args.ifname)?;
        Ok(())
    }

    fn check(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        let cfg = IpamConfig::load(conf, &args.args)?;
        let mut store = DiskStore::open(&cfg.data_dir, &cfg.name)?;
        let locked = store.lock()?;
        if !locked.has_id(&args.container_id, &args.ifname)? {
            bail!(
                "host-local: Failed to find address added by container {}",
                args.container_id
            );
        }
        Ok(())
    }

    fn status(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        IpamConfig::load(conf, &args.args)?;
        Ok(())
    }

    fn gc(_args: &CmdArgs, conf: &NetConf) -> Result<()> {
        let valid = conf.valid_attachments.as_ref().ok_or_else(|| {
            Error::invalid_config("GC requires cni.dev/valid-attachments in the config")
        })?;
        let keep: HashSet<(&str, &str)> = valid
            .iter()
            .map(|a| (a.container_id.trim(), a.ifname.as_str()))
            .collect();
        let keep_ids: HashSet<&str> = valid.iter().map(|a| a.container_id.trim()).collect();
        let data_dir = IpamConfig::data_dir_of(conf);
        if !data_dir.join(&conf.name).is_dir() {
            return Ok(());
        }
        let mut store = DiskStore::open(&data_dir, &conf.name)?;
        let mut locked = store.lock()?;
        let mut errors = Vec::new();
        if let Err(e) = locked.sweep_orphans() {
            errors.push(format!("{e:#}"));
        }
        for r in locked.reservations()? {
            let live = match &r.ifname {
                Some(ifname) => keep.contains(&(r.container_id.as_str(), ifname.as_str())),
                None => keep_ids.contains(r.container_id.as_str()),
            };
            if !live {
                log::info!(
                    "host-local GC: releasing {} held by {}",
                    r.ip,
                    r.container_id
                );
                if let Err(e) = locked.remove(r.ip) {
                    errors.push(format!("{e:#}"));
                }
            }
        }
        if !errors.is_empty() {
            bail!("{}", errors.join("; "));
        }
        Ok(())
    }
}
