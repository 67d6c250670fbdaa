//! The udp backend's two endpoints: the TUN device `flannel0` and the UDP socket, and what the
//! packet threads share with the backend (the current device, drop counters).
//!
//! The TUN device is opened with virtio-net headers and TCP/UDP segmentation offload when the
//! kernel allows it (tun-rs): the kernel then hands over up to 64 KiB of one TCP flow per read,
//! and accepts coalesced segments per write, which is what makes a userspace tunnel fast.
//! A non-persistent TUN device disappears with its file descriptor, so the data path dies with
//! the daemon, as upstream's does.

use anyhow::{Context, Result};
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tun_rs::{DeviceBuilder, SyncDevice};

use super::encap::Discard;

/// Upstream's TUN name.
pub const TUN_NAME: &str = "flannel0";
/// `SOL_UDP` options from linux/udp.h (not in the libc crate for glibc).
pub const UDP_SEGMENT: libc::c_int = 103;
pub const UDP_GRO: libc::c_int = 104;
/// Socket buffers we ask for. Upstream keeps the defaults (about 200 KiB) and loses packets at
/// the receiving socket under load.
const SOCKET_BUFFER: usize = 4 << 20;

/// Opens the TUN device, with offloads unless `offload` is false or the kernel refuses them.
pub fn open_tun(name: &str, offload: bool) -> Result<SyncDevice> {
    let build = |offload: bool| {
        // Down until configured: up with IPv6 on, the kernel would send router solicitations
        // into the tunnel.
        DeviceBuilder::new()
            .name(name)
            .enable(false)
            .with(|b| {
                b.offload(offload);
            })
            .build_sync()
    };
    let dev = match build(offload) {
        Ok(d) => d,
        Err(e) if offload && e.raw_os_error() != Some(libc::EBUSY) => {
            log::warn!("udp: {name} without offloads: the kernel refused them ({e})");
            build(false).with_context(|| format!("failed to open TUN device {name}"))?
        }
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            return Err(e).with_context(|| {
                format!("TUN device {name} is held by another process (another flanneld?)")
            })
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("failed to open TUN device {name} (is /dev/net/tun present? the tun module loaded?)")
            })
        }
    };
    dev.set_nonblocking(true)
        .context("failed to make the TUN device non-blocking")?;
    Ok(dev)
}

/// Whether `dev` carries virtio-net headers (offloads on).
pub fn has_offload(dev: &SyncDevice) -> bool {
    dev.tcp_gso()
}

/// Binds the tunnel socket to the external interface's address, as upstream, with large
/// buffers and UDP GRO (coalesced receive) when the kernel has it.
pub fn bind_socket(addr: SocketAddrV4) -> Result<UdpSocket> {
    let s = UdpSocket::bind(addr).with_context(|| format!("failed to bind UDP {addr}"))?;
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        // FORCE ignores net.core.rmem_max/wmem_max; it needs CAP_NET_ADMIN, which flanneld has.
        if setsockopt_int(&s, libc::SOL_SOCKET, force, SOCKET_BUFFER as libc::c_int).is_err() {
            let _ = setsockopt_int(&s, libc::SOL_SOCKET, plain, SOCKET_BUFFER as libc::c_int);
        }
    }
    Ok(s)
}

/// Turns on UDP GRO; false when the kernel lacks it (then every datagram arrives alone).
pub fn enable_gro(s: &UdpSocket) -> bool {
    setsockopt_int(s, libc::SOL_UDP, UDP_GRO, 1).is_ok()
}

/// Whether the kernel does UDP segmentation offload (sendmsg with a UDP_SEGMENT cmsg).
pub fn can_gso(s: &UdpSocket) -> bool {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_UDP,
            UDP_SEGMENT,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0
}

fn setsockopt_int(
    s: &UdpSocket,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: the option value is a c_int that lives across the call.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The TUN device the packet threads should use. Replaced when the backend re-creates a
/// deleted device; a thread whose device went away (EBADFD) waits for the next one.
#[derive(Default)]
pub struct Slot {
    generation: AtomicU64,
    dev: Mutex<Option<Arc<SyncDevice>>>,
}

impl Slot {
    pub fn set(&self, dev: Arc<SyncDevice>) {
        *self.dev.lock().unwrap_or_else(|p| p.into_inner()) = Some(dev);
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The device published after generation `after`, waiting for it.
    pub fn next(&self, after: u64) -> (u64, Arc<SyncDevice>) {
        loop {
            let g = self.generation();
            if g != after {
                if let Some(d) = self.dev.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                    return (g, d);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// Packet counters, read by the backend for its periodic log line.
#[derive(Default)]
pub struct Stats {
    pub drops: [AtomicU64; Discard::ALL.len()],
    /// Packets sent to peers / written to the TUN device.
    pub tunnelled: AtomicU64,
    pub delivered: AtomicU64,
    /// Failed sendmmsg / TUN reads and writes.
    pub io_errors: AtomicU64,
}

impl Stats {
    #[inline]
    pub fn discard(&self, why: Discard) {
        self.drops[why.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self, why: Discard) -> u64 {
        self.drops[why.index()].load(Ordering::Relaxed)
    }
}
