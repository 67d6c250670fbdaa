//! udp: upstream flannel's first backend. A TUN device `flannel0` holds the route to the whole
//! flannel network; weft reads what the kernel sends into it and tunnels each IPv4 packet as the
//! payload of one UDP datagram (port 8285) to the host whose lease holds the destination subnet,
//! and writes what arrives back into the device. See [`encap`] for the packet format.
//!
//! Upstream runs this as one C poll loop moving one packet per system call. weft runs one thread
//! per direction, batches the socket side (sendmmsg/recvmmsg with UDP GSO/GRO) and the device
//! side (TUN offloads), and stays wire-compatible: on the wire each datagram is one inner packet
//! of at most the device MTU, whichever host sends it.
//!
//! The lease carries no BackendType and the port is not advertised: every host of a network must
//! use the same Port. IPv4 only, as upstream.

pub mod device;
pub mod encap;
mod rx;
pub mod table;
mod tx;

use anyhow::{bail, Context, Result};
use ipnet::{IpNet, Ipv4Net};
use std::net::{SocketAddrV4, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Backend;
use crate::flanneld::extiface::ExtIface;
use crate::flanneld::subnet::config::{get_uint, NetworkConfig};
use crate::flanneld::subnet::lease::{Lease, LeaseAttrs};
use crate::flanneld::subnet::manager::OwnLease;
use crate::sys::netlink::{Handle, Route};
use device::{Slot, Stats, TUN_NAME};
use encap::Discard;

/// Outer IPv4 (20) and UDP (8) headers.
const OVERHEAD: u32 = 28;
const DEFAULT_PORT: u16 = 8285;
/// Set to 0 to open flannel0 without offloads (one packet per read and write, as the tun-tap
/// crate would): for measuring, and for kernels whose TUN offloads misbehave.
pub const OFFLOAD_ENV: &str = "WEFT_UDP_OFFLOAD";

pub struct UdpBackend {
    h: Handle,
    ext: ExtIface,
    port: u16,
    mtu: u32,
    network: Ipv4Net,
    offload: bool,
    slot: Arc<Slot>,
    table: Arc<table::Shared>,
    stats: Arc<Stats>,
    sock: Arc<UdpSocket>,
    /// Our own reference, so the device lives while the threads wait for a replacement.
    dev: Arc<tun_rs::SyncDevice>,
    tun_addr: Option<Ipv4Net>,
    started: bool,
    reported: [u64; Discard::ALL.len()],
}

impl UdpBackend {
    pub fn new(cfg: &NetworkConfig, ext: &ExtIface) -> Result<UdpBackend> {
        if cfg.enable_ipv6 {
            bail!("the udp backend carries IPv4 only (as upstream); use vxlan or host-gw for IPv6");
        }
        let port = match get_uint(&cfg.backend, "Port")? {
            None | Some(0) => DEFAULT_PORT,
            Some(p) => u16::try_from(p)
                .ok()
                .with_context(|| format!("Backend.Port {p} is not a UDP port"))?,
        };
        let mtu = ext
            .link
            .mtu
            .checked_sub(OVERHEAD)
            .filter(|m| *m >= 68)
            .with_context(|| {
                format!(
                    "{} has MTU {}: too small to carry a tunnel",
                    ext.link.name, ext.link.mtu
                )
            })?;
        let offload = std::env::var(OFFLOAD_ENV).map_or(true, |v| v != "0");
        let dev = Arc::new(device::open_tun(TUN_NAME, offload)?);
        let local = SocketAddrV4::new(ext.iface_addr, port);
        let sock = device::bind_socket(local)
            .context("the udp backend's port is taken (another flanneld on this host?)")?;
        Ok(UdpBackend {
            h: Handle::open()?,
            ext: ext.clone(),
            port,
            mtu,
            network: cfg.network(),
            offload,
            slot: Arc::new(Slot::default()),
            table: Arc::new(table::Shared::default()),
            stats: Arc::new(Stats::default()),
            sock: Arc::new(sock),
            dev,
            tun_addr: None,
            started: false,
            reported: [0; Discard::ALL.len()],
        })
    }

    fn endpoint(&self, peer: &Lease) -> SocketAddrV4 {
        SocketAddrV4::new(peer.attrs.public_ip, self.port)
    }

    /// The route that sends the whole flannel network into flannel0.
    fn network_route(&self, index: i32) -> Route {
        let mut r = Route::new(IpNet::V4(self.network));
        r.oif = Some(index);
        r
    }

    /// Gives flannel0 its MTU, address and route, and brings it up; returns how many of those
    /// were missing.
    fn set_up_device(&self) -> Result<usize> {
        let addr = self.tun_addr.context("udp: no lease yet")?;
        let link = self
            .h
            .link_by_name(TUN_NAME)
            .with_context(|| format!("udp: {TUN_NAME} is missing"))?;
        let mut fixed = 0;
        if link.mtu != self.mtu {
            self.h.set_link_mtu(link.index, self.mtu)?;
            fixed += 1;
        }
        // The kernel would otherwise send IPv6 router solicitations and MLD into the tunnel.
        let _ = crate::sys::sysctl::ensure(&format!("net/ipv6/conf/{TUN_NAME}/disable_ipv6"), "1");
        // Our ICMP errors come from flannel0's own address, as upstream's; without accept_local
        // the kernel drops them as martians and the sender never learns the net is unreachable.
        crate::sys::sysctl::ensure(&format!("net/ipv4/conf/{TUN_NAME}/accept_local"), "1")?;
        let have = self.h.addresses(Some(link.index as u32))?;
        if !have.iter().any(|a| a.addr == IpNet::V4(addr)) {
            self.h.add_address(link.index, IpNet::V4(addr))?;
            fixed += 1;
        }
        if !link.up {
            self.h.set_link_up(link.index, true)?;
            fixed += 1;
        }
        let want = self.network_route(link.index);
        let routes = self.h.routes()?;
        if !routes
            .iter()
            .any(|r| r.dst == want.dst && r.oif == want.oif && r.gw.is_none())
        {
            self.h
                .replace_route(&want)
                .with_context(|| format!("udp: route {} dev {TUN_NAME}", self.network))?;
            fixed += 1;
        }
        Ok(fixed)
    }

    fn start_threads(&mut self) -> Result<()> {
        self.slot.set(self.dev.clone());
        let gso = device::can_gso(&self.sock);
        let gro = device::enable_gro(&self.sock);
        log::info!(
            "udp: {TUN_NAME} MTU {}, offloads {}, UDP GSO {}, UDP GRO {}, port {}",
            self.mtu,
            on_off(device::has_offload(&self.dev)),
            on_off(gso),
            on_off(gro),
            self.port
        );
        let tx = tx::Tx {
            slot: self.slot.clone(),
            sock: self.sock.clone(),
            table: table::Reader::new(self.table.clone()),
            stats: self.stats.clone(),
            tun_addr: self.tun_addr.context("udp: no lease yet")?.addr(),
            gso,
            packet_room: (self.mtu as usize).max(1500),
        };
        let rx = rx::Rx {
            slot: self.slot.clone(),
            sock: self.sock.clone(),
            stats: self.stats.clone(),
        };
        std::thread::Builder::new()
            .name("udp-tx".into())
            .spawn(move || tx.run())
            .context("failed to start the udp send thread")?;
        std::thread::Builder::new()
            .name("udp-rx".into())
            .spawn(move || rx.run())
            .context("failed to start the udp receive thread")?;
        self.started = true;
        Ok(())
    }

    /// Logs the drop counters that moved since the last report.
    fn report_drops(&mut self) {
        let mut parts = Vec::new();
        for d in Discard::ALL {
            let now = self.stats.dropped(d);
            let delta = now - self.reported[d.index()];
            if delta > 0 {
                parts.push(format!("{delta} {}", d.name()));
            }
            self.reported[d.index()] = now;
        }
        if !parts.is_empty() {
            log::warn!(
                "udp: dropped packets since the last report: {} (totals: {} tunnelled, {} delivered, {} I/O errors)",
                parts.join(", "),
                self.stats.tunnelled.load(Ordering::Relaxed),
                self.stats.delivered.load(Ordering::Relaxed),
                self.stats.io_errors.load(Ordering::Relaxed)
            );
        }
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

impl Backend for UdpBackend {
    fn lease_type(&self) -> &'static str {
        ""
    }

    fn mtu(&self) -> u32 {
        self.mtu
    }

    fn lease_attrs(&self) -> LeaseAttrs {
        LeaseAttrs::public_ip_only(self.ext.ext_addr)
    }

    fn configure(&mut self, own: &OwnLease) -> Result<()> {
        // As upstream: the lease's network address, alone.
        self.tun_addr = Some(Ipv4Net::new(own.key.ipv4.network(), 32)?);
        self.set_up_device()?;
        if !self.started {
            self.start_threads()?;
        }
        Ok(())
    }

    fn add_peer(&mut self, peer: &Lease) -> Result<()> {
        let (net, to) = (peer.key.ipv4, self.endpoint(peer));
        self.table.update(|t| t.insert(net, to));
        Ok(())
    }

    fn remove_peer(&mut self, peer: &Lease) -> Result<()> {
        let net = peer.key.ipv4;
        self.table.update(|t| {
            t.remove(net);
        });
        Ok(())
    }

    fn reconcile(&mut self, peers: &[&Lease]) -> Result<usize> {
        self.report_drops();
        let mut fixed = 0;
        if self.h.link_by_name(TUN_NAME).is_err() {
            log::warn!("udp: {TUN_NAME} is gone; re-creating it");
            self.dev = Arc::new(device::open_tun(TUN_NAME, self.offload)?);
            self.slot.set(self.dev.clone());
            fixed += 1;
        }
        fixed += self.set_up_device()?;
        // The table is only ever changed here and by add/remove; re-derive it from the leases
        // anyway, so a missed event cannot leave a host unreachable for long.
        let want: Vec<(Ipv4Net, SocketAddrV4)> = peers
            .iter()
            .map(|p| (p.key.ipv4, self.endpoint(p)))
            .collect();
        let have = self.table.snapshot();
        let same = have.len() == want.len()
            && want
                .iter()
                .all(|(n, e)| have.lookup(n.network()) == Some(*e));
        if !same {
            self.table.update(|t| {
                *t = table::Table::default();
                for (n, e) in &want {
                    t.insert(*n, *e);
                }
            });
            fixed += 1;
        }
        Ok(fixed)
    }
}
