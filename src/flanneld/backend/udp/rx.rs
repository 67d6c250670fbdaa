//! UDP -> TUN: receives tunnelled packets and writes them into flannel0, from where the kernel
//! routes them to the pod.
//!
//! Batching: recvmmsg takes up to [`MSGS`] datagrams per call; with UDP GRO one "datagram" may be
//! many coalesced ones (the kernel says their size), each still one inner packet. The inner
//! packets go to the device through tun-rs, which coalesces consecutive TCP segments of one
//! flow into one large write when the device has offloads. Nothing here allocates after the
//! buffers have grown to their working size.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tun_rs::{GROTable, SyncDevice, IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

use super::device::{has_offload, Slot, Stats, UDP_GRO};
use super::encap;

/// Datagrams per recvmmsg.
const MSGS: usize = 16;
/// Room per datagram: a whole GRO train, or one datagram of any size.
const DATAGRAM_ROOM: usize = 65_536;

pub struct Rx {
    pub slot: Arc<Slot>,
    pub sock: Arc<UdpSocket>,
    pub stats: Arc<Stats>,
}

type CmsgBuf = [u64; 4];

/// Inner packets waiting for a TUN write.
struct Outbox {
    bufs: Vec<Vec<u8>>,
    n: usize,
    gro: GROTable,
}

impl Rx {
    pub fn run(self) {
        let (mut generation, mut dev) = self.slot.next(u64::MAX);
        let fd = self.sock.as_raw_fd();
        let mut room: Vec<Vec<u8>> = (0..MSGS).map(|_| vec![0u8; DATAGRAM_ROOM]).collect();
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut iovs: Vec<libc::iovec> = vec![unsafe { std::mem::zeroed() }; MSGS];
        let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; MSGS];
        let mut cmsgs: Vec<CmsgBuf> = vec![[0; 4]; MSGS];
        let mut out = Outbox {
            bufs: (0..IDEAL_BATCH_SIZE)
                .map(|_| Vec::with_capacity(VIRTIO_NET_HDR_LEN + 65_535))
                .collect(),
            n: 0,
            gro: GROTable::default(),
        };
        for (iov, r) in iovs.iter_mut().zip(&mut room) {
            *iov = libc::iovec {
                iov_base: r.as_mut_ptr().cast(),
                iov_len: DATAGRAM_ROOM,
            };
        }
        // The buffers never move, so the headers are set up once; the pointers into iovs and
        // cmsgs are taken after the last write through those Vecs.
        let (iov_base, cmsg_base) = (iovs.as_mut_ptr(), cmsgs.as_mut_ptr());
        for (k, m) in msgs.iter_mut().enumerate() {
            m.msg_hdr.msg_iov = iov_base.wrapping_add(k);
            m.msg_hdr.msg_iovlen = 1;
            m.msg_hdr.msg_control = cmsg_base.wrapping_add(k).cast();
        }
        let mut offset = frame_offset(&dev);
        loop {
            // The kernel shrinks these to what it wrote.
            for m in &mut msgs {
                m.msg_hdr.msg_controllen = std::mem::size_of::<CmsgBuf>() as _;
                m.msg_hdr.msg_flags = 0;
            }
            // SAFETY: every header points into buffers that outlive the call.
            let r = unsafe {
                libc::recvmmsg(
                    fd,
                    msgs.as_mut_ptr(),
                    MSGS as libc::c_uint,
                    libc::MSG_WAITFORONE as _,
                    std::ptr::null_mut(),
                )
            };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    self.stats.io_errors.fetch_add(1, Ordering::Relaxed);
                    log::debug!("udp: receive: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                continue;
            }
            for k in 0..r as usize {
                let len = msgs[k].msg_len as usize;
                if len == 0 {
                    self.stats.discard(encap::Discard::Runt);
                    continue;
                }
                let seg = gro_segment(&msgs[k].msg_hdr).unwrap_or(len).max(1);
                for chunk in room[k][..len].chunks(seg) {
                    self.push(&mut out, chunk, offset);
                    if out.n == out.bufs.len() && !self.flush(&mut out, &dev, offset) {
                        (generation, dev) = self.slot.next(generation);
                        offset = frame_offset(&dev);
                    }
                }
            }
            if !self.flush(&mut out, &dev, offset) {
                (generation, dev) = self.slot.next(generation);
                offset = frame_offset(&dev);
            }
        }
    }

    /// Checks one tunnelled packet and queues it for the device.
    #[inline]
    fn push(&self, out: &mut Outbox, pkt: &[u8], offset: usize) {
        let len = match encap::ipv4_len(pkt) {
            Ok(l) => l,
            Err(d) => {
                self.stats.discard(d);
                return;
            }
        };
        let b = &mut out.bufs[out.n];
        b.clear();
        b.resize(offset, 0);
        b.extend_from_slice(&pkt[..len]);
        if !encap::decrement_ttl(&mut b[offset..]) {
            self.stats.discard(encap::Discard::TtlExpired);
            return;
        }
        out.n += 1;
    }

    /// Writes the queued packets; false when the device is gone.
    fn flush(&self, out: &mut Outbox, dev: &SyncDevice, offset: usize) -> bool {
        if out.n == 0 {
            return true;
        }
        let n = std::mem::take(&mut out.n);
        match dev.send_multiple(&mut out.gro, &mut out.bufs[..n], offset) {
            Ok(_) => {
                self.stats.delivered.fetch_add(n as u64, Ordering::Relaxed);
                true
            }
            Err(e) if e.raw_os_error() == Some(libc::EBADFD) => false,
            Err(e) => {
                self.stats.io_errors.fetch_add(1, Ordering::Relaxed);
                log::debug!("udp: TUN write: {e}");
                true
            }
        }
    }
}

/// Where an inner packet starts in a TUN write: after the virtio-net header when the device
/// has offloads. A re-created device may have come up without them.
fn frame_offset(dev: &SyncDevice) -> usize {
    if has_offload(dev) {
        VIRTIO_NET_HDR_LEN
    } else {
        0
    }
}

/// The segment size of a GRO-coalesced datagram, from its control message.
fn gro_segment(h: &libc::msghdr) -> Option<usize> {
    // SAFETY: the kernel filled msg_control up to msg_controllen; the macros stay inside it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == UDP_GRO {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                return usize::try_from(v).ok().filter(|v| *v > 0);
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}
