//! TUN -> UDP: reads what the kernel routes into flannel0, finds each packet's host and sends it
//! there as the payload of one UDP datagram.
//!
//! Batching: reads continue until the device is empty or the buffer pool runs low, then one
//! sendmmsg sends the lot. Consecutive same-sized packets for one host go as one UDP GSO message
//! (UDP_SEGMENT): the kernel cuts it into ordinary datagrams, each one inner packet, so the
//! wire format is exactly upstream's. Nothing here allocates after start-up.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tun_rs::{SyncDevice, IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

use super::device::{has_offload, Slot, Stats, UDP_SEGMENT};
use super::encap::{self, Discard, ICMP_UNREACHABLE_MAX};
use super::table::Reader;

/// Packets held before a flush.
const POOL: usize = 4 * IDEAL_BATCH_SIZE;
/// Free buffers one read may need: a 64 KiB TCP segment cut at a small MSS.
const READ_ROOM: usize = IDEAL_BATCH_SIZE;
/// The kernel's UDP_MAX_SEGMENTS on older kernels, and the most one datagram may carry.
const GSO_MAX_SEGMENTS: usize = 64;
const GSO_MAX_BYTES: usize = 65_000;

pub struct Tx {
    pub slot: Arc<Slot>,
    pub sock: Arc<UdpSocket>,
    pub table: Reader,
    pub stats: Arc<Stats>,
    /// Source of our ICMP errors: the TUN device's address.
    pub tun_addr: Ipv4Addr,
    pub gso: bool,
    /// Largest packet the device may hand over (its MTU, at least 1500).
    pub packet_room: usize,
}

/// One message of a sendmmsg batch: a run of `count` pool packets from `first`.
#[derive(Clone, Copy, Default)]
struct Run {
    first: usize,
    count: usize,
    seg: usize,
}

/// CMSG_SPACE(sizeof(u16)) rounded up: room for one UDP_SEGMENT control message.
type CmsgBuf = [u64; 4];

impl Tx {
    pub fn run(mut self) {
        let (mut generation, mut dev) = self.slot.next(u64::MAX);
        let mut orig = vec![0u8; VIRTIO_NET_HDR_LEN + 65_535];
        let mut bufs: Vec<Vec<u8>> = (0..POOL).map(|_| vec![0u8; self.packet_room]).collect();
        let mut sizes = vec![0usize; POOL];
        let mut dests: Vec<Option<SocketAddrV4>> = vec![None; POOL];
        let mut icmp = [0u8; VIRTIO_NET_HDR_LEN + ICMP_UNREACHABLE_MAX];
        let mut runs = vec![Run::default(); POOL];
        // SAFETY: all-zero is a valid value for these plain C structs.
        let mut iovs: Vec<libc::iovec> = vec![unsafe { std::mem::zeroed() }; POOL];
        let mut addrs: Vec<libc::sockaddr_in> = vec![unsafe { std::mem::zeroed() }; POOL];
        let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; POOL];
        let mut cmsgs: Vec<CmsgBuf> = vec![[0; 4]; POOL];
        loop {
            if !wait_readable(&dev) {
                (generation, dev) = self.slot.next(generation);
                continue;
            }
            let offload = has_offload(&dev);
            let table = self.table.refresh();
            let mut n = 0;
            let mut gone = false;
            while POOL - n >= READ_ROOM {
                match dev.recv_multiple(
                    &mut orig,
                    &mut bufs[n..n + READ_ROOM],
                    &mut sizes[n..n + READ_ROOM],
                    0,
                ) {
                    Ok(k) => {
                        for i in n..n + k {
                            dests[i] = classify(
                                &mut bufs[i],
                                &mut sizes[i],
                                table,
                                &self.stats,
                                self.tun_addr,
                                &mut icmp,
                                &dev,
                                offload,
                            );
                        }
                        n += k;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBADFD) => {
                        gone = true;
                        break;
                    }
                    Err(e) => {
                        // A frame the offload code could not split: lost, like a bad packet.
                        self.stats.io_errors.fetch_add(1, Ordering::Relaxed);
                        log::debug!("udp: TUN read: {e}");
                        break;
                    }
                }
            }
            let m = plan(&dests[..n], &sizes[..n], self.gso, &mut runs);
            for (j, r) in runs[..m].iter().enumerate() {
                let to = dests[r.first].expect("planned runs have a destination");
                addrs[j] = sockaddr(to);
                for i in r.first..r.first + r.count {
                    iovs[i] = libc::iovec {
                        iov_base: bufs[i].as_mut_ptr().cast(),
                        iov_len: sizes[i],
                    };
                }
            }
            // The headers point into iovs, addrs and cmsgs: take those pointers only after the
            // last write through the Vecs, so no later borrow of a Vec invalidates them.
            let (iov_base, addr_base, cmsg_base) =
                (iovs.as_mut_ptr(), addrs.as_mut_ptr(), cmsgs.as_mut_ptr());
            for (j, r) in runs[..m].iter().enumerate() {
                let h = &mut msgs[j].msg_hdr;
                h.msg_name = addr_base.wrapping_add(j).cast();
                h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                h.msg_iov = iov_base.wrapping_add(r.first);
                h.msg_iovlen = r.count as _;
                if r.count > 1 {
                    set_segment_cmsg(h, cmsg_base.wrapping_add(j), r.seg as u16);
                } else {
                    h.msg_control = std::ptr::null_mut();
                    h.msg_controllen = 0;
                }
            }
            self.send(&mut msgs[..m], &runs[..m]);
            if gone {
                (generation, dev) = self.slot.next(generation);
            }
        }
    }

    fn send(&self, msgs: &mut [libc::mmsghdr], runs: &[Run]) {
        let fd = self.sock.as_raw_fd();
        let mut off = 0;
        while off < msgs.len() {
            // SAFETY: every header points into buffers that outlive the call.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    msgs[off..].as_mut_ptr(),
                    (msgs.len() - off) as libc::c_uint,
                    0,
                )
            };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                // The first message failed (peer unreachable, no route): skip it.
                self.stats.io_errors.fetch_add(1, Ordering::Relaxed);
                log::debug!("udp: send: {e}");
                off += 1;
                continue;
            }
            let sent = r as usize;
            let pkts: usize = runs[off..off + sent].iter().map(|r| r.count).sum();
            self.stats
                .tunnelled
                .fetch_add(pkts as u64, Ordering::Relaxed);
            off += sent;
        }
    }
}

/// Checks one packet read from the TUN device and decides where it goes. Packets for nobody get
/// the ICMP error upstream sends; bad ones are counted.
#[allow(clippy::too_many_arguments)]
#[inline]
fn classify(
    buf: &mut [u8],
    size: &mut usize,
    table: &super::table::Table,
    stats: &Stats,
    tun_addr: Ipv4Addr,
    icmp: &mut [u8],
    dev: &SyncDevice,
    offload: bool,
) -> Option<SocketAddrV4> {
    let pkt = &mut buf[..*size];
    let len = match encap::ipv4_len(pkt) {
        Ok(l) => l,
        Err(d) => {
            stats.discard(d);
            return None;
        }
    };
    *size = len;
    let pkt = &mut pkt[..len];
    let Some(to) = table.lookup(encap::dst(pkt)) else {
        stats.discard(Discard::NoRoute);
        let hdr = if offload { VIRTIO_NET_HDR_LEN } else { 0 };
        icmp[..hdr].fill(0);
        if let Some(k) = encap::net_unreachable(pkt, tun_addr, &mut icmp[hdr..]) {
            if dev.send(&icmp[..hdr + k]).is_err() {
                stats.io_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        return None;
    };
    if !encap::decrement_ttl(pkt) {
        stats.discard(Discard::TtlExpired);
        return None;
    }
    Some(to)
}

/// Groups the packets with a destination into sendmmsg messages: with GSO, a run of packets
/// to one host where all but the last have the same size; without, one packet each.
/// Returns how many runs it wrote into `runs`.
fn plan(dests: &[Option<SocketAddrV4>], sizes: &[usize], gso: bool, runs: &mut [Run]) -> usize {
    let mut m = 0;
    let mut i = 0;
    while i < dests.len() {
        let Some(to) = dests[i] else {
            i += 1;
            continue;
        };
        let seg = sizes[i];
        let mut count = 1;
        let mut bytes = seg;
        if gso {
            while i + count < dests.len()
                && count < GSO_MAX_SEGMENTS
                && dests[i + count] == Some(to)
                && sizes[i + count] <= seg
                && bytes + sizes[i + count] <= GSO_MAX_BYTES
            {
                bytes += sizes[i + count];
                count += 1;
                if sizes[i + count - 1] < seg {
                    break; // a shorter segment can only be the last
                }
            }
        }
        runs[m] = Run {
            first: i,
            count,
            seg,
        };
        m += 1;
        i += count;
    }
    m
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

/// Points `h` at `buf` and writes one UDP_SEGMENT control message there.
fn set_segment_cmsg(h: &mut libc::msghdr, buf: *mut CmsgBuf, seg: u16) {
    // SAFETY: buf points at a live, 8-byte aligned CmsgBuf, larger than CMSG_SPACE(2); the
    // macros only compute offsets inside it.
    unsafe {
        let space = libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize;
        h.msg_control = buf.cast();
        h.msg_controllen = space as _;
        let c = libc::CMSG_FIRSTHDR(h);
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg);
    }
}

/// Blocks until the device has a packet; false when the device is gone.
fn wait_readable(dev: &SyncDevice) -> bool {
    let mut p = libc::pollfd {
        fd: dev.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, -1) };
        if r > 0 {
            return p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) == 0
                || p.revents & libc::POLLIN != 0;
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(last: u8) -> Option<SocketAddrV4> {
        Some(SocketAddrV4::new(Ipv4Addr::new(192, 168, 77, last), 8285))
    }

    fn runs_of(dests: &[Option<SocketAddrV4>], sizes: &[usize], gso: bool) -> Vec<(usize, usize)> {
        let mut runs = vec![Run::default(); dests.len()];
        let m = plan(dests, sizes, gso, &mut runs);
        runs[..m].iter().map(|r| (r.first, r.count)).collect()
    }

    #[test]
    fn same_host_same_size_is_one_message() {
        let d = [ep(2), ep(2), ep(2), ep(2)];
        assert_eq!(runs_of(&d, &[1400, 1400, 1400, 900], true), [(0, 4)]);
        assert_eq!(
            runs_of(&d, &[1400, 1400, 1400, 900], false),
            [(0, 1), (1, 1), (2, 1), (3, 1)]
        );
    }

    #[test]
    fn a_shorter_packet_ends_the_run_and_a_longer_one_starts_another() {
        let d = [ep(2), ep(2), ep(2), ep(2), ep(2)];
        assert_eq!(
            runs_of(&d, &[1400, 900, 1400, 1400, 1472], true),
            [(0, 2), (2, 2), (4, 1)]
        );
    }

    #[test]
    fn hosts_and_dropped_packets_split_runs() {
        let d = [ep(2), ep(3), None, ep(3), ep(2)];
        assert_eq!(
            runs_of(&d, &[100, 100, 100, 100, 100], true),
            [(0, 1), (1, 1), (3, 1), (4, 1)]
        );
    }

    #[test]
    fn runs_respect_the_kernel_limits() {
        let d = vec![ep(2); 100];
        let s = vec![1400; 100];
        // 46 * 1400 = 64400 <= 65000 < 47 * 1400.
        assert_eq!(runs_of(&d, &s, true), [(0, 46), (46, 46), (92, 8)]);
        let s = vec![64; 100];
        assert_eq!(runs_of(&d, &s, true), [(0, 64), (64, 36)]);
    }
}
