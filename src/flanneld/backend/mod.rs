//! flanneld's data-plane backends behind one trait. A backend is built before the lease is
//! acquired (the vxlan device's MAC goes into the lease), configured once the lease is known, then
//! fed peer changes and periodic reconciliations from one thread: calls never overlap.

pub mod alloc;
pub mod hostgw;
pub mod udp;
pub mod vtep_mac;
pub mod vxlan;

use anyhow::{bail, Result};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::flanneld::extiface::ExtIface;
use crate::flanneld::subnet::config::NetworkConfig;
use crate::flanneld::subnet::lease::{Lease, LeaseAttrs};
use crate::flanneld::subnet::manager::OwnLease;
use crate::sys::netlink::Route;

/// One data plane.
pub trait Backend: Send {
    /// `BackendType` in leases ("" for udp and alloc, which write none).
    fn lease_type(&self) -> &'static str;
    /// Whether peers are programmed at all (alloc only allocates subnets).
    fn forwards(&self) -> bool {
        true
    }
    /// FLANNEL_MTU.
    fn mtu(&self) -> u32;
    /// What this host's lease value says.
    fn lease_attrs(&self) -> LeaseAttrs;
    /// Called once the lease is known: device addresses and the like.
    fn configure(&mut self, own: &OwnLease) -> Result<()>;
    /// Programs the route (and whatever else) to reach `peer`.
    fn add_peer(&mut self, peer: &Lease) -> Result<()>;
    /// Undoes [`Backend::add_peer`] for the lease as it was last programmed.
    fn remove_peer(&mut self, peer: &Lease) -> Result<()>;
    /// Makes the kernel match the wanted state again: re-creates a deleted device, re-adds
    /// missing entries and removes ones no lease accounts for. Returns how many it fixed.
    fn reconcile(&mut self, peers: &[&Lease]) -> Result<usize>;
    /// When flanneld gives up before [`Backend::configure`]: removes what [`create`] made (a
    /// device that was there before stays).
    fn abandon(&mut self) {}
}

/// Builds the backend the config names.
pub fn create(cfg: &NetworkConfig, ext: &ExtIface) -> Result<Box<dyn Backend>> {
    match cfg.backend_type.as_str() {
        "vxlan" => Ok(Box::new(vxlan::VxlanBackend::new(cfg, ext)?)),
        "host-gw" => Ok(Box::new(hostgw::HostGw::new(cfg, ext)?)),
        "udp" => Ok(Box::new(udp::UdpBackend::new(cfg, ext)?)),
        "alloc" => Ok(Box::new(alloc::Alloc::new(ext))),
        other => bail!(
            "backend type {other:?} is not supported by this weft (supported: vxlan, host-gw, udp, alloc)"
        ),
    }
}

/// Whether a lease is one a backend of type `ty` can reach (mixed-backend networks do not
/// interwork, as upstream).
pub fn accepts(ty: &str, peer: &Lease) -> bool {
    ty.is_empty() || peer.attrs.backend_type == ty
}

/// The routes in the main table a backend may own: inside one of the flannel networks, not our own
/// subnet, of subnet length.
pub(crate) fn flannel_routes<'a>(
    routes: &'a [Route],
    cfg_nets: &'a [(IpNet, u8)],
    own: &'a [IpNet],
) -> impl Iterator<Item = &'a Route> + 'a {
    routes.iter().filter(move |r| {
        r.table == crate::sys::netlink::MAIN_TABLE
            && cfg_nets
                .iter()
                .any(|(n, len)| n.contains(&r.dst) && r.dst.prefix_len() == *len)
            && !own.contains(&r.dst)
    })
}

/// The flannel networks and subnet lengths of `cfg`, per family present.
pub(crate) fn networks(cfg: &NetworkConfig) -> Vec<(IpNet, u8)> {
    let mut v = vec![(IpNet::V4(cfg.network()), cfg.subnet_len)];
    if let Some(n6) = cfg.ipv6_network {
        v.push((IpNet::V6(n6), cfg.ipv6_subnet_len));
    }
    v
}

/// A lease's subnets as `IpNet`s.
pub(crate) fn lease_nets(v4: Ipv4Net, v6: Option<Ipv6Net>) -> Vec<IpNet> {
    let mut v = vec![IpNet::V4(v4)];
    v.extend(v6.map(IpNet::V6));
    v
}
