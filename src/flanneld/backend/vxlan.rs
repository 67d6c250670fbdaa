//! vxlan: a kernel VXLAN device `flannel.<VNI>` (and `flannel-v6.<VNI>` for IPv6), and per peer
//! three entries, added in this order so the kernel never has to ARP: a permanent neighbour
//! (peer subnet's .0 -> peer VTEP MAC), an FDB entry (VTEP MAC -> peer PublicIP) and an onlink
//! route (peer subnet via its .0). The device MAC is chosen before creation (so udev's
//! MACAddressPolicy cannot replace it) and a compatible existing device is kept with its MAC, so
//! restarts are hitless and peers' entries stay valid.

use anyhow::{anyhow, bail, Context, Result};
use ipnet::IpNet;
use serde_json::json;
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use super::{flannel_routes, lease_nets, networks, Backend};
use crate::flanneld::extiface::{is_link_local, ExtIface};
use crate::flanneld::subnet::config::{backend_bool, get_uint, NetworkConfig};
use crate::flanneld::subnet::lease::{Lease, LeaseAttrs};
use crate::flanneld::subnet::manager::OwnLease;
use crate::sys::netlink::{
    format_mac, parse_mac, Handle, IpFamily, Link, Route, Vxlan, SCOPE_NOWHERE,
};

/// VXLAN over IPv4 costs 50 bytes: outer IP 20, UDP 8, VXLAN 8, inner Ethernet 14.
const OVERHEAD: u32 = 50;
/// Over IPv6 the outer header is 40 bytes: 70 in all. (Upstream uses 50 here too, which the
/// kernel refuses for a device on a 1500-byte link.)
const OVERHEAD6: u32 = 70;

/// One VXLAN device (per address family).
struct Device {
    name: String,
    spec: Vxlan,
    mtu: u32,
    link: Link,
    mac: [u8; 6],
    v6: bool,
    /// Made by this run (not found from an earlier one).
    created: bool,
}

pub struct VxlanBackend {
    h: Handle,
    ext: ExtIface,
    nets: Vec<(IpNet, u8)>,
    own: Vec<IpNet>,
    v4: Device,
    v6: Option<Device>,
    direct_routing: bool,
    vni: u32,
}

/// Whether an existing device can be kept, by upstream's rules: a field set on both sides must
/// agree (MTU and learning are not compared).
fn compatible(have: &Vxlan, want: &Vxlan) -> bool {
    have.vni == want.vni
        && (have.link == 0 || want.link == 0 || have.link == want.link)
        && (have.local.is_none() || want.local.is_none() || have.local == want.local)
        && have.group == want.group
        && have.l2miss == want.l2miss
        && (have.port == 0 || want.port == 0 || have.port == want.port)
        && have.gbp == want.gbp
}

impl Device {
    /// Finds a compatible device or makes a new one with `mac` (see [`super::vtep_mac`]; a
    /// re-created device keeps its old one, so peers' entries stay valid), then sets MTU and
    /// brings it up.
    fn ensure(
        h: &Handle,
        name: &str,
        spec: &Vxlan,
        mtu: u32,
        v6: bool,
        mac: [u8; 6],
    ) -> Result<Device> {
        match h.vxlan_by_name(name) {
            Ok(Some((link, have))) if compatible(&have, spec) => {
                log::info!("vxlan: reusing {name} (MAC {})", link.mac_string());
                return Device::finish(h, name, spec, mtu, link, v6, false);
            }
            Ok(Some((link, have))) => {
                log::warn!("vxlan: {name} exists with other options ({have:?}); re-creating it");
                h.delete_link(link.index)
                    .with_context(|| format!("failed to delete incompatible {name}"))?;
            }
            Ok(None) => {
                if let Ok(other) = h.link_by_name(name) {
                    log::warn!(
                        "vxlan: {name} exists as a {:?} link; replacing it",
                        other.kind
                    );
                    h.delete_link(other.index)
                        .with_context(|| format!("failed to delete {name}"))?;
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e).with_context(|| format!("failed to look up {name}")),
        }
        h.create_vxlan(name, spec, Some(mac), Some(mtu))
            .with_context(|| format!("failed to create {name}"))?;
        let link = h.link_by_name(name)?;
        if link.mac != mac {
            bail!(
                "{name} came up with MAC {} instead of {}: something (udev MACAddressPolicy?) changed it",
                link.mac_string(),
                format_mac(&mac)
            );
        }
        log::info!(
            "vxlan: created {name} (VNI {}, MAC {})",
            spec.vni,
            format_mac(&mac)
        );
        Device::finish(h, name, spec, mtu, link, v6, true)
    }

    fn finish(
        h: &Handle,
        name: &str,
        spec: &Vxlan,
        mtu: u32,
        link: Link,
        v6: bool,
        created: bool,
    ) -> Result<Device> {
        if link.mtu != mtu {
            h.set_link_mtu(link.index, mtu)?;
        }
        // Router advertisements on a tunnel device would only add bogus routes.
        let _ = crate::sys::sysctl::ensure(&format!("net/ipv6/conf/{name}/accept_ra"), "0");
        let mac: [u8; 6] = link
            .mac
            .as_slice()
            .try_into()
            .map_err(|_| anyhow!("{name} has no Ethernet address"))?;
        Ok(Device {
            name: name.to_string(),
            spec: spec.clone(),
            mtu,
            link,
            mac,
            v6,
            created,
        })
    }

    /// `addr` (/32 or /128) as the device's only address of its family (IPv6 link-local ones
    /// stay), as upstream keeps it: an address of an earlier Network would otherwise stay
    /// after a restart with a new one. The device is flannel's own; then up.
    fn set_address(&self, h: &Handle, addr: IpNet) -> Result<()> {
        let addrs = h.addresses(Some(self.link.index as u32))?;
        let mut have = false;
        for a in addrs {
            let ip = a.addr.addr();
            if ip.is_ipv6() != self.v6 {
                continue;
            }
            if a.addr == addr {
                have = true;
            } else if !(self.v6 && is_link_local(ip)) {
                log::info!(
                    "vxlan: removing stale address {} from {}",
                    a.addr,
                    self.name
                );
                h.delete_address(self.link.index, a.addr)?;
            }
        }
        if !have {
            h.add_address(self.link.index, addr)
                .with_context(|| format!("failed to add {addr} to {}", self.name))?;
        }
        h.set_link_up(self.link.index, true)?;
        Ok(())
    }
}

/// What one peer needs on one device.
struct PeerEntry {
    subnet: IpNet,
    vtep_ip: IpAddr,
    mac: [u8; 6],
    public: IpAddr,
}

impl VxlanBackend {
    pub fn new(cfg: &NetworkConfig, ext: &ExtIface) -> Result<VxlanBackend> {
        let b = &cfg.backend;
        let vni = get_uint(b, "VNI")?.unwrap_or(1);
        let vni = u32::try_from(vni)
            .ok()
            .filter(|v| *v < 1 << 24)
            .ok_or_else(|| anyhow!("Backend.VNI {vni} is out of range (0-16777215)"))?;
        let port = get_uint(b, "Port")?.unwrap_or(0);
        let port =
            u16::try_from(port).map_err(|_| anyhow!("Backend.Port {port} is out of range"))?;
        let base_mtu = match get_uint(b, "MTU")? {
            Some(m) if m > 0 => {
                u32::try_from(m).map_err(|_| anyhow!("Backend.MTU {m} is out of range"))?
            }
            _ => ext.link.mtu,
        };
        let overhead = if cfg.enable_ipv6 { OVERHEAD6 } else { OVERHEAD };
        if base_mtu <= overhead + 1280 {
            bail!("MTU {base_mtu} leaves no room for VXLAN's {overhead} bytes");
        }
        let mtu = base_mtu - OVERHEAD;
        let learning = backend_bool(b, "Learning")?;
        let gbp = backend_bool(b, "GBP")?;
        let spec = |local: IpAddr| Vxlan {
            vni,
            link: ext.link.index,
            local: Some(local),
            group: None,
            port,
            learning,
            gbp,
            l2miss: false,
        };
        let h = Handle::open()?;
        let v4 = Device::ensure(
            &h,
            &format!("flannel.{vni}"),
            &spec(IpAddr::V4(ext.iface_addr)),
            mtu,
            false,
            super::vtep_mac::for_new_device(IpAddr::V4(ext.ext_addr), false)?,
        )?;
        let v6 = if cfg.enable_ipv6 {
            let local = ext.iface_addr6.ok_or_else(|| {
                anyhow!("IPv6 is enabled but {} has no IPv6 address", ext.link.name)
            })?;
            Some(Device::ensure(
                &h,
                &format!("flannel-v6.{vni}"),
                &spec(IpAddr::V6(local)),
                base_mtu - OVERHEAD6,
                true,
                super::vtep_mac::for_new_device(IpAddr::V4(ext.ext_addr), true)?,
            )?)
        } else {
            None
        };
        Ok(VxlanBackend {
            h,
            ext: ext.clone(),
            nets: networks(cfg),
            own: Vec::new(),
            v4,
            v6,
            direct_routing: backend_bool(b, "DirectRouting")?,
            vni,
        })
    }

    fn entries(&self, peer: &Lease) -> Vec<(bool, PeerEntry)> {
        let mut out = Vec::new();
        let mac_of = |d: &Option<serde_json::Value>| {
            d.as_ref()
                .and_then(|v| {
                    crate::cni::json::get_ci(v.as_object()?, "VtepMAC")?
                        .as_str()
                        .map(str::to_string)
                })
                .and_then(|s| parse_mac(&s))
                // A group or all-zero MAC cannot name one VTEP; the kernel refuses it as an
                // FDB entry anyway.
                .filter(|m| m[0] & 1 == 0 && *m != [0; 6])
        };
        match mac_of(&peer.attrs.backend_data) {
            Some(mac) => out.push((
                false,
                PeerEntry {
                    subnet: IpNet::V4(peer.key.ipv4),
                    vtep_ip: IpAddr::V4(peer.key.ipv4.network()),
                    mac,
                    public: IpAddr::V4(peer.attrs.public_ip),
                },
            )),
            None => log::warn!(
                "vxlan: lease {} has no usable VtepMAC in BackendData; skipping it",
                peer.key.to_key()
            ),
        }
        if self.v6.is_some() {
            if let (Some(n6), Some(ip6), Some(mac)) = (
                peer.key.ipv6,
                peer.attrs.public_ipv6,
                mac_of(&peer.attrs.backend_v6_data),
            ) {
                out.push((
                    true,
                    PeerEntry {
                        subnet: IpNet::V6(n6),
                        vtep_ip: IpAddr::V6(n6.network()),
                        mac,
                        public: IpAddr::V6(ip6),
                    },
                ));
            }
        }
        out
    }

    fn dev(&self, v6: bool) -> &Device {
        match (&self.v6, v6) {
            (Some(d), true) => d,
            _ => &self.v4,
        }
    }

    /// With DirectRouting, a peer on our L2 segment is routed to directly (no encapsulation).
    fn direct(&self, public: IpAddr) -> bool {
        self.direct_routing
            && self
                .h
                .route_get(public)
                .is_ok_and(|r| r.gw.is_none() && r.oif == Some(self.ext.link.index))
    }

    fn route_for(&self, e: &PeerEntry, dev: &Device) -> Route {
        let mut r = Route::new(e.subnet);
        if self.direct(e.public) {
            r.gw = Some(e.public);
        } else {
            r.gw = Some(e.vtep_ip);
            r.oif = Some(dev.link.index);
            r.onlink = true;
        }
        r
    }

    fn program(&self, e: &PeerEntry, dev: &Device) -> Result<()> {
        let route = self.route_for(e, dev);
        if route.oif.is_none() {
            return self
                .h
                .replace_route(&route)
                .with_context(|| format!("vxlan: direct route to {} via {}", e.subnet, e.public));
        }
        let idx = dev.link.index;
        self.h
            .replace_neighbour(idx, e.vtep_ip, e.mac, true)
            .with_context(|| format!("vxlan: neighbour {} on {}", e.vtep_ip, dev.name))?;
        if let Err(err) = self.h.replace_fdb(idx, e.mac, e.public) {
            let _ = self.h.delete_neighbour(idx, e.vtep_ip);
            return Err(err)
                .with_context(|| format!("vxlan: fdb {} dst {}", format_mac(&e.mac), e.public));
        }
        if let Err(err) = self.h.replace_route(&route) {
            let _ = self.h.delete_fdb(idx, e.mac, e.public);
            let _ = self.h.delete_neighbour(idx, e.vtep_ip);
            return Err(err).with_context(|| format!("vxlan: route to {}", e.subnet));
        }
        Ok(())
    }

    fn unprogram(&self, e: &PeerEntry, dev: &Device) {
        let idx = dev.link.index;
        let gone = |r: crate::sys::netlink::Result<()>, what: &str| {
            if let Err(err) = r {
                if !(err.is_not_found() || err.errno() == Some(libc::ESRCH)) {
                    log::warn!("vxlan: removing {what} for {}: {err}", e.subnet);
                }
            }
        };
        // Whichever form the route had (DirectRouting may have changed since), but only as we
        // make it: through our device to the VTEP, or through the external interface to the
        // peer. A route of the host's own to the same destination is never matched.
        let mut encap = Route::new(e.subnet);
        encap.gw = Some(e.vtep_ip);
        encap.oif = Some(idx);
        let mut direct = Route::new(e.subnet);
        direct.gw = Some(e.public);
        direct.oif = Some(self.ext.link.index);
        for mut r in [encap, direct] {
            r.scope = SCOPE_NOWHERE;
            gone(self.h.delete_route(&r), "route");
        }
        gone(self.h.delete_fdb(idx, e.mac, e.public), "fdb entry");
        gone(self.h.delete_neighbour(idx, e.vtep_ip), "neighbour");
    }

    /// Re-creates a device that vanished; true when it did.
    fn revive(&mut self, v6: bool) -> Result<bool> {
        let dev = self.dev(v6);
        match self.h.link_by_index(dev.link.index) {
            Ok(l) if l.name == dev.name && l.up => return Ok(false),
            Ok(l) if l.name == dev.name => {
                log::warn!("vxlan: {} was down; bringing it up", dev.name);
                self.h.set_link_up(l.index, true)?;
                return Ok(true);
            }
            _ => {}
        }
        log::warn!("vxlan: {} disappeared; re-creating it", dev.name);
        let (name, spec, mtu) = (dev.name.clone(), dev.spec.clone(), dev.mtu);
        let new = Device::ensure(&self.h, &name, &spec, mtu, v6, dev.mac)?;
        let own = self.own.clone();
        if let Some(addr) = own.iter().find(|n| n.addr().is_ipv6() == v6) {
            let host = IpNet::new(addr.network(), if v6 { 128 } else { 32 })?;
            new.set_address(&self.h, host)?;
        }
        if v6 {
            self.v6 = Some(new);
        } else {
            self.v4 = new;
        }
        Ok(true)
    }
}

impl Backend for VxlanBackend {
    fn lease_type(&self) -> &'static str {
        "vxlan"
    }

    /// The smaller of the devices' MTUs: pods get one MTU for both families.
    fn mtu(&self) -> u32 {
        self.v6
            .as_ref()
            .map_or(self.v4.mtu, |d| d.mtu.min(self.v4.mtu))
    }

    fn lease_attrs(&self) -> LeaseAttrs {
        let data = |d: &Device| json!({"VNI": self.vni, "VtepMAC": format_mac(&d.mac)});
        LeaseAttrs {
            public_ip: self.ext.ext_addr,
            public_ipv6: self.v6.as_ref().and(self.ext.ext_addr6),
            backend_type: "vxlan".into(),
            backend_data: Some(data(&self.v4)),
            backend_v6_data: self.v6.as_ref().map(data),
        }
    }

    fn configure(&mut self, own: &OwnLease) -> Result<()> {
        self.own = lease_nets(own.key.ipv4, own.key.ipv6);
        let v4 = IpNet::new(IpAddr::V4(own.key.ipv4.network()), 32)?;
        self.v4.set_address(&self.h, v4)?;
        if let (Some(dev), Some(n6)) = (&self.v6, own.key.ipv6) {
            let host = IpNet::new(IpAddr::V6(n6.network()), 128)?;
            dev.set_address(&self.h, host)?;
        }
        Ok(())
    }

    fn add_peer(&mut self, peer: &Lease) -> Result<()> {
        for (v6, e) in self.entries(peer) {
            self.program(&e, self.dev(v6))?;
        }
        Ok(())
    }

    fn remove_peer(&mut self, peer: &Lease) -> Result<()> {
        for (v6, e) in self.entries(peer) {
            self.unprogram(&e, self.dev(v6));
        }
        Ok(())
    }

    fn abandon(&mut self) {
        for dev in std::iter::once(&self.v4).chain(&self.v6) {
            if dev.created {
                if let Err(e) = self.h.delete_link(dev.link.index) {
                    log::warn!("vxlan: could not delete {}: {e}", dev.name);
                }
            }
        }
    }

    fn reconcile(&mut self, peers: &[&Lease]) -> Result<usize> {
        let mut fixed = 0;
        let mut revived = self.revive(false)?;
        if self.v6.is_some() {
            revived |= self.revive(true)?;
        }
        // One dump of each table per pass: with a thousand peers, a dump per peer made every
        // pass quadratic and held up lease events for seconds.
        let routes = self.h.routes().context("vxlan: listing routes")?;
        let kernel = self.kernel_entries()?;
        let present_routes: HashSet<(IpNet, Option<IpAddr>, Option<i32>)> =
            routes.iter().map(|r| (r.dst, r.gw, r.oif)).collect();
        let mut wanted_routes = BTreeSet::new();
        let mut wanted_fdb = BTreeSet::new();
        let mut wanted_neigh = BTreeSet::new();
        for p in peers {
            for (v6, e) in self.entries(p) {
                let dev = self.dev(v6);
                let want = self.route_for(&e, dev);
                wanted_routes.insert(e.subnet);
                let idx = dev.link.index;
                if want.oif.is_some() {
                    wanted_fdb.insert((idx, e.mac));
                    wanted_neigh.insert((idx, e.vtep_ip));
                }
                let present = match want.oif {
                    Some(_) => present_routes.contains(&(want.dst, want.gw, want.oif)),
                    None => routes.iter().any(|r| r.dst == want.dst && r.gw == want.gw),
                };
                let entries = want.oif.is_none()
                    || (kernel.neigh.contains(&(idx, e.vtep_ip, e.mac))
                        && kernel.fdb.contains(&(idx, e.mac, e.public)));
                if revived || !present || !entries {
                    if !revived {
                        log::info!("vxlan: entries for {} are missing; adding them", e.subnet);
                    }
                    // One peer that cannot be programmed is logged and skipped, so the pass
                    // still restores every other peer.
                    match self.program(&e, dev) {
                        Ok(()) => fixed += 1,
                        Err(err) => log::error!("{err:#} (skipped in this pass)"),
                    }
                }
            }
        }
        fixed += self.remove_stale(&routes, &kernel, &wanted_routes, &wanted_fdb, &wanted_neigh);
        Ok(fixed)
    }
}

/// The permanent neighbours and FDB entries of our devices, as one pass of reconciliation saw them.
struct KernelEntries {
    neigh: HashSet<(i32, IpAddr, [u8; 6])>,
    fdb: HashSet<(i32, [u8; 6], IpAddr)>,
}

impl VxlanBackend {
    fn kernel_entries(&self) -> Result<KernelEntries> {
        let mut k = KernelEntries {
            neigh: HashSet::new(),
            fdb: HashSet::new(),
        };
        for dev in std::iter::once(&self.v4).chain(self.v6.as_ref()) {
            let idx = dev.link.index;
            let fam = if dev.v6 { IpFamily::V6 } else { IpFamily::V4 };
            for n in self.h.neighbours(Some(idx), fam)? {
                if let (Some(ip), Ok(mac), true) = (
                    n.ip,
                    <[u8; 6]>::try_from(n.mac.as_slice()),
                    n.is_permanent(),
                ) {
                    k.neigh.insert((idx, ip, mac));
                }
            }
            for f in self.h.fdb_entries(idx)? {
                if let (Some(ip), Ok(mac)) = (f.ip, <[u8; 6]>::try_from(f.mac.as_slice())) {
                    k.fdb.insert((idx, mac, ip));
                }
            }
        }
        Ok(k)
    }

    fn remove_stale(
        &self,
        routes: &[Route],
        kernel: &KernelEntries,
        wanted_routes: &BTreeSet<IpNet>,
        wanted_fdb: &BTreeSet<(i32, [u8; 6])>,
        wanted_neigh: &BTreeSet<(i32, IpAddr)>,
    ) -> usize {
        let mut n = 0;
        let devs: Vec<&Device> = std::iter::once(&self.v4).chain(self.v6.as_ref()).collect();
        let ours = |r: &Route| {
            r.oif
                .is_some_and(|o| devs.iter().any(|d| d.link.index == o))
                || (self.direct_routing && r.oif == Some(self.ext.link.index) && r.gw.is_some())
        };
        for r in flannel_routes(routes, &self.nets, &self.own) {
            if ours(r) && !wanted_routes.contains(&r.dst) {
                log::info!("vxlan: removing stale route to {} (no lease)", r.dst);
                let mut d = r.clone();
                d.scope = SCOPE_NOWHERE;
                if let Err(e) = self.h.delete_route(&d) {
                    log::warn!("vxlan: {e}");
                }
                n += 1;
            }
        }
        let name = |idx: i32| {
            devs.iter()
                .find(|d| d.link.index == idx)
                .map_or("?", |d| d.name.as_str())
        };
        for &(idx, ip, _) in &kernel.neigh {
            if !wanted_neigh.contains(&(idx, ip)) {
                log::info!("vxlan: removing stale neighbour {ip} on {}", name(idx));
                let _ = self.h.delete_neighbour(idx, ip);
                n += 1;
            }
        }
        for &(idx, mac, dst) in &kernel.fdb {
            if mac != [0; 6] && !wanted_fdb.contains(&(idx, mac)) {
                log::info!(
                    "vxlan: removing stale fdb entry {} on {}",
                    format_mac(&mac),
                    name(idx)
                );
                let _ = self.h.delete_fdb(idx, mac, dst);
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_follows_upstream() {
        let base = Vxlan {
            vni: 1,
            link: 2,
            local: Some("10.0.0.1".parse().unwrap()),
            port: 0,
            ..Vxlan::default()
        };
        let mut kernel = base.clone();
        kernel.port = 8472;
        assert!(
            compatible(&kernel, &base),
            "port 0 means the kernel default"
        );
        let mut other = base.clone();
        other.vni = 2;
        assert!(!compatible(&other, &base));
        other = base.clone();
        other.local = Some("10.0.0.9".parse().unwrap());
        assert!(!compatible(&other, &base));
        other = base.clone();
        other.learning = true;
        assert!(compatible(&other, &base), "learning is not compared");
        other = base.clone();
        other.gbp = true;
        assert!(!compatible(&other, &base));
    }
}
