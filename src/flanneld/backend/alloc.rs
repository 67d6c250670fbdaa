//! The `alloc` backend: subnet allocation only. The lease is acquired, renewed and watched as for
//! the other backends and subnet.env is written, but nothing is forwarded: no device, no route,
//! no neighbour entry, and the peers' leases are left alone. As upstream, its lease names only
//! the public IP (no BackendType) and its MTU is the external interface's.

use super::Backend;
use crate::flanneld::extiface::ExtIface;
use crate::flanneld::subnet::lease::{Lease, LeaseAttrs};
use crate::flanneld::subnet::manager::OwnLease;
use anyhow::Result;

pub struct Alloc {
    ext: ExtIface,
}

impl Alloc {
    pub fn new(ext: &ExtIface) -> Alloc {
        Alloc { ext: ext.clone() }
    }
}

impl Backend for Alloc {
    fn lease_type(&self) -> &'static str {
        ""
    }

    fn forwards(&self) -> bool {
        false
    }

    fn mtu(&self) -> u32 {
        self.ext.link.mtu
    }

    fn lease_attrs(&self) -> LeaseAttrs {
        LeaseAttrs::public_ip_only(self.ext.ext_addr)
    }

    fn configure(&mut self, _own: &OwnLease) -> Result<()> {
        Ok(())
    }

    fn add_peer(&mut self, _peer: &Lease) -> Result<()> {
        Ok(())
    }

    fn remove_peer(&mut self, _peer: &Lease) -> Result<()> {
        Ok(())
    }

    fn reconcile(&mut self, _peers: &[&Lease]) -> Result<usize> {
        Ok(0)
    }
}
