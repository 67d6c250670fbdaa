//! Conntrack entries over ctnetlink (NETLINK_NETFILTER): portmap deletes the UDP entries whose
//! original destination is a host port it has just mapped. Without that, a client that sent to
//! the port before the mapping existed keeps matching its old, un-NATed entry until it times
//! out, and its datagrams never reach the container (the reference does the same).
//!
//! The messages are small and fixed, so they are built and read here on a plain netlink socket:
//! one dump of the table, then one delete per matching entry naming its original tuple (and its
//! zone). A delete without a tuple would flush the whole table, so none is sent without one.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_NETFILTER: i32 = 12;
const CT_NEW: u16 = 1 << 8;
const CT_GET: u16 = (1 << 8) | 1;
const CT_DELETE: u16 = (1 << 8) | 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_ZONE: u16 = 18;
/// nlmsghdr, then nfgenmsg.
const HEADER: usize = 16 + 4;

struct Socket(OwnedFd);

impl Socket {
    fn open() -> io::Result<Socket> {
        // SAFETY: socket(2) with constant arguments; the fd is owned from here on.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_NETFILTER,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a new descriptor nobody else owns.
        Ok(Socket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: the buffer is valid for its length; the kernel is the destination (a zeroed
        // sockaddr_nl).
        let n = unsafe {
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as u16;
            libc::sendto(
                self.0.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the buffer is valid and writable for its length.
        let n = unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

fn message(ty: u16, flags: u16, seq: u32, family: u8, attrs: &[u8]) -> Vec<u8> {
    let len = (HEADER + attrs.len()) as u32;
    let mut m = Vec::with_capacity(len as usize);
    m.extend(len.to_ne_bytes());
    m.extend(ty.to_ne_bytes());
    m.extend((NLM_F_REQUEST | flags).to_ne_bytes());
    m.extend(seq.to_ne_bytes());
    m.extend(0u32.to_ne_bytes());
    m.extend([family, 0, 0, 0]);
    m.extend(attrs);
    m
}

/// The netlink attributes in `buf`: (type without its flags, payload, the whole attribute).
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8], &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let ty = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            return None;
        }
        let (whole, payload) = (&buf[..len], &buf[4..len]);
        buf = &buf[((len + 3) & !3).min(buf.len())..];
        Some((ty, payload, whole))
    })
}

fn find(buf: &[u8], ty: u16) -> Option<(&[u8], &[u8])> {
    attrs(buf).find(|a| a.0 == ty).map(|(_, p, w)| (p, w))
}

/// The netlink messages in one datagram: (type, the payload after nlmsghdr).
fn messages(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 16 {
            return None;
        }
        let len = u32::from_ne_bytes(buf[..4].try_into().ok()?) as usize;
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        if len < 16 || len > buf.len() {
            return None;
        }
        let body = &buf[16..len];
        buf = &buf[((len + 3) & !3).min(buf.len())..];
        Some((ty, body))
    })
}

/// An NLMSG_ERROR's errno (0 for an ack).
fn errno(body: &[u8]) -> i32 {
    body.get(..4).map_or(0, |b| {
        -i32::from_ne_bytes(b.try_into().expect("four bytes"))
    })
}

/// Deletes every conntrack entry of `family` (AF_INET or AF_INET6) and IP protocol `proto`
/// whose original destination port is one of `ports`; returns how many went.
pub fn delete_by_dst_port(family: i32, proto: u8, ports: &[u16]) -> io::Result<usize> {
    let sock = Socket::open()?;
    sock.send(&message(CT_GET, NLM_F_DUMP, 1, family as u8, &[]))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut doomed: Vec<Vec<u8>> = Vec::new();
    'dump: loop {
        let n = sock.recv(&mut buf)?;
        for (ty, body) in messages(&buf[..n]) {
            match ty {
                NLMSG_DONE => break 'dump,
                NLMSG_ERROR => return Err(io::Error::from_raw_os_error(errno(body))),
                // A dump answers with one "new" message per entry.
                CT_NEW => {}
                _ => continue,
            }
            let Some(entry) = body.get(4..) else { continue };
            let Some((tuple, whole)) = find(entry, CTA_TUPLE_ORIG) else {
                continue;
            };
            let Some((p, _)) = find(tuple, CTA_TUPLE_PROTO) else {
                continue;
            };
            let num = find(p, CTA_PROTO_NUM).and_then(|(v, _)| v.first().copied());
            let dport = find(p, CTA_PROTO_DST_PORT)
                .and_then(|(v, _)| Some(u16::from_be_bytes(v.get(..2)?.try_into().ok()?)));
            if num == Some(proto) && dport.is_some_and(|d| ports.contains(&d)) {
                let mut attrs = whole.to_vec();
                if let Some((_, zone)) = find(entry, CTA_ZONE) {
                    attrs.extend(zone);
                    attrs.resize((attrs.len() + 3) & !3, 0);
                }
                doomed.push(attrs);
            }
        }
    }
    let mut deleted = 0;
    for (seq, attrs) in doomed.iter().enumerate() {
        sock.send(&message(
            CT_DELETE,
            NLM_F_ACK,
            seq as u32 + 2,
            family as u8,
            attrs,
        ))?;
        let n = sock.recv(&mut buf)?;
        for (ty, body) in messages(&buf[..n]) {
            match (ty, errno(body)) {
                (NLMSG_ERROR, 0) => deleted += 1,
                // Gone meanwhile: what we wanted.
                (NLMSG_ERROR, libc::ENOENT) => {}
                (NLMSG_ERROR, e) => return Err(io::Error::from_raw_os_error(e)),
                _ => {}
            }
        }
    }
    Ok(deleted)
}
