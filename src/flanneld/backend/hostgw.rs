//! host-gw: a route per peer subnet via the peer's PublicIP on the external interface. Needs the
//! hosts on one L2 segment; a peer that is not on-link is refused with a log line, not a failure.

use anyhow::{bail, Context, Result};
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{flannel_routes, lease_nets, networks, Backend};
use crate::flanneld::extiface::ExtIface;
use crate::flanneld::subnet::config::NetworkConfig;
use crate::flanneld::subnet::lease::{Lease, LeaseAttrs};
use crate::flanneld::subnet::manager::OwnLease;
use crate::sys::netlink::{Handle, Route, SCOPE_NOWHERE};

pub struct HostGw {
    h: Handle,
    ext: ExtIface,
    nets: Vec<(IpNet, u8)>,
    own: Vec<IpNet>,
}

impl HostGw {
    pub fn new(cfg: &NetworkConfig, ext: &ExtIface) -> Result<HostGw> {
        if ext.ext_addr != ext.iface_addr {
            bail!(
                "host-gw needs the public IP to be the interface's own address ({} != {}): this host is probably behind NAT; use vxlan",
                ext.ext_addr,
                ext.iface_addr
            );
        }
        Ok(HostGw {
            h: Handle::open()?,
            ext: ext.clone(),
            nets: networks(cfg),
            own: Vec::new(),
        })
    }

    /// The routes `peer` needs: one per family it has a subnet and a public address for.
    fn routes_for(&self, peer: &Lease) -> Vec<Route> {
        let mut out = Vec::new();
        let mut push = |dst: IpNet, gw: IpAddr| {
            let mut r = Route::new(dst);
            r.gw = Some(gw);
            r.oif = Some(self.ext.link.index);
            out.push(r);
        };
        push(IpNet::V4(peer.key.ipv4), IpAddr::V4(peer.attrs.public_ip));
        if let (Some(n6), Some(ip6), true) =
            (peer.key.ipv6, peer.attrs.public_ipv6, self.nets.len() > 1)
        {
            push(IpNet::V6(n6), IpAddr::V6(ip6));
        }
        out
    }

    /// Whether the kernel reaches `gw` directly over the external interface.
    fn on_link(&self, gw: IpAddr) -> bool {
        match self.h.route_get(gw) {
            Ok(r) => r.gw.is_none() && r.oif == Some(self.ext.link.index),
            Err(_) => false,
        }
    }

    fn program(&self, peer: &Lease) -> Result<()> {
        for r in self.routes_for(peer) {
            let gw = r.gw.unwrap_or(IpAddr::from([0u8; 4]));
            if !self.on_link(gw) {
                log::error!(
                    "host-gw: not adding a route to {} for the host at {gw}: it is not on-link on {} (host-gw needs every host on one L2 network; use vxlan otherwise)",
                    r.dst,
                    self.ext.link.name
                );
                continue;
            }
            self.h
                .replace_route(&r)
                .with_context(|| format!("host-gw: route to {} via {gw}", r.dst))?;
        }
        Ok(())
    }
}

impl Backend for HostGw {
    fn lease_type(&self) -> &'static str {
        "host-gw"
    }

    fn mtu(&self) -> u32 {
        self.ext.link.mtu
    }

    fn lease_attrs(&self) -> LeaseAttrs {
        LeaseAttrs {
            public_ip: self.ext.ext_addr,
            public_ipv6: if self.nets.len() > 1 {
                self.ext.ext_addr6
            } else {
                None
            },
            backend_type: "host-gw".into(),
            backend_data: None,
            backend_v6_data: None,
        }
    }

    fn configure(&mut self, own: &OwnLease) -> Result<()> {
        self.own = lease_nets(own.key.ipv4, own.key.ipv6);
        Ok(())
    }

    fn add_peer(&mut self, peer: &Lease) -> Result<()> {
        self.program(peer)
    }

    fn remove_peer(&mut self, peer: &Lease) -> Result<()> {
        for mut r in self.routes_for(peer) {
            r.scope = SCOPE_NOWHERE;
            match self.h.delete_route(&r) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(libc::ESRCH) || e.is_not_found() => {}
                Err(e) => return Err(e).context("host-gw: removing a peer route"),
            }
        }
        Ok(())
    }

    fn reconcile(&mut self, peers: &[&Lease]) -> Result<usize> {
        let routes = self.h.routes().context("host-gw: listing routes")?;
        let mut fixed = 0;
        let mut wanted = BTreeSet::new();
        for p in peers {
            for r in self.routes_for(p) {
                wanted.insert((r.dst, r.gw));
                let present = routes
                    .iter()
                    .any(|k| k.dst == r.dst && k.gw == r.gw && k.oif == r.oif);
                if !present {
                    log::info!("host-gw: route to {} is missing; adding it", r.dst);
                    // One peer that cannot be programmed is logged and skipped, so the pass
                    // still restores every other peer.
                    match self.program(p) {
                        Ok(()) => fixed += 1,
                        Err(err) => log::error!("{err:#} (skipped in this pass)"),
                    }
                    break;
                }
            }
        }
        let idx = self.ext.link.index;
        let stale: Vec<Route> = flannel_routes(&routes, &self.nets, &self.own)
            .filter(|r| r.oif == Some(idx) && r.gw.is_some() && !wanted.contains(&(r.dst, r.gw)))
            .cloned()
            .collect();
        for mut r in stale {
            log::info!("host-gw: removing stale route to {} (no lease)", r.dst);
            r.scope = SCOPE_NOWHERE;
            if let Err(e) = self.h.delete_route(&r) {
                log::warn!("host-gw: {e}");
            }
            fixed += 1;
        }
        Ok(fixed)
    }
}
