//! Link notifications: `ip monitor link` in the namespace of the thread that opens them.

use super::{Error, Link, Result, NLMSG_HDRLEN};
use neli::consts::socket::{Msg, NlFamily};
use neli::socket::NlSocket;
use neli::utils::Groups;
use std::os::fd::{AsRawFd, RawFd};

/// SO_ATTACH_FILTER (asm-generic/socket.h; the libc crate does not define it for glibc).
const SO_ATTACH_FILTER: libc::c_int = 26;

/// A non-blocking socket joined to RTNLGRP_LINK. Only notifications sent after it was opened
/// arrive, so open it before the change it is to see.
pub struct LinkEvents {
    socket: NlSocket,
    buf: Vec<u8>,
}

impl LinkEvents {
    /// Notifications of the removal of link `index` only. A socket filter drops every other
    /// one in the kernel: on a busy host the namespace's link notifications would otherwise
    /// wake the reader and fill its buffer.
    pub fn deletions_of(index: i32) -> Result<LinkEvents> {
        LinkEvents::filtered(libc::RTM_DELLINK, index)
    }

    /// Notifications of changes to link `index` only (RTM_NEWLINK: its flags, operational
    /// state, master...), filtered as [`LinkEvents::deletions_of`].
    pub fn changes_of(index: i32) -> Result<LinkEvents> {
        LinkEvents::filtered(libc::RTM_NEWLINK, index)
    }

    fn filtered(kind: u16, index: i32) -> Result<LinkEvents> {
        let op = "subscribe to link notifications";
        let err = |e: std::io::Error| Error::new(op, e.to_string());
        let socket = NlSocket::new(NlFamily::Route).map_err(err)?;
        let mut filter = link_filter(kind, index);
        let prog = libc::sock_fprog {
            len: filter.len() as libc::c_ushort,
            filter: filter.as_mut_ptr(),
        };
        // SAFETY: `prog` points at `filter`, alive for the call; the kernel copies it.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_ATTACH_FILTER,
                &prog as *const libc::sock_fprog as *const libc::c_void,
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        // Joined only once the filter is in place, so nothing unfiltered is queued.
        socket
            .bind(None, Groups::new_groups(&[libc::RTNLGRP_LINK]))
            .map_err(err)?;
        socket.nonblock().map_err(err)?;
        Ok(LinkEvents {
            socket,
            buf: vec![0; 32 * 1024],
        })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Reads every queued notification and says whether one announced the removal of the link
    /// with `index`. An error means notifications were lost (ENOBUFS: the socket's buffer
    /// overflowed on a busy host) or the socket failed; the caller must then learn the outcome
    /// another way.
    pub fn saw_deleted(&mut self, index: i32) -> Result<bool> {
        let mut seen = false;
        self.drain(|kind, body| seen |= is_deletion_of(kind, body, index))?;
        Ok(seen)
    }

    /// Reads every queued notification and returns the newest state of link `index` they
    /// announced, if any. Errors as [`LinkEvents::saw_deleted`].
    pub fn latest(&mut self, index: i32) -> Result<Option<Link>> {
        let mut last = None;
        self.drain(|kind, body| {
            if kind == libc::RTM_NEWLINK && index_of(body) == Some(index) {
                last = Link::from_body(body).or(last.take());
            }
        })?;
        Ok(last)
    }

    /// Hands the type and body of every message of every queued datagram to `each`.
    fn drain(&mut self, mut each: impl FnMut(u16, &[u8])) -> Result<()> {
        loop {
            let n = match self.socket.recv(&mut self.buf[..], Msg::DONTWAIT) {
                Ok((n, _)) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::new("read link notifications", e.to_string())),
            };
            for_each_message(&self.buf[..n], &mut each);
        }
    }
}

/// A classic BPF program that accepts a datagram only if it starts with a message of type
/// `kind` for link `index`. BPF loads are big-endian and netlink fields native-endian, hence
/// the byte order of the constants.
fn link_filter(kind: u16, index: i32) -> [libc::sock_filter; 6] {
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let kind = u16::from_be_bytes(kind.to_ne_bytes()) as u32;
    let index = u32::from_be_bytes(index.to_ne_bytes());
    let reject = 0;
    [
        // nlmsg_type
        op(libc::BPF_LD | libc::BPF_H | libc::BPF_ABS, 0, 0, 4),
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 3, kind),
        // ifinfomsg.ifi_index, after the 16-byte header
        op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 20),
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, index),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, reject),
    ]
}

/// The messages of the datagram `buf`, as (type, body); stops at a malformed length.
fn for_each_message(mut buf: &[u8], each: &mut impl FnMut(u16, &[u8])) {
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return;
        }
        let kind = u16::from_ne_bytes(buf[4..6].try_into().expect("2 bytes"));
        each(kind, &buf[NLMSG_HDRLEN..len]);
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
    }
}

/// True for the RTM_DELLINK of link `index`.
fn is_deletion_of(kind: u16, body: &[u8], index: i32) -> bool {
    kind == libc::RTM_DELLINK && index_of(body) == Some(index)
}

/// The link index of an ifinfomsg body (family, pad, type (u16), then the index).
fn index_of(body: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(body.get(4..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, index: i32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&32u32.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[0, 0, 1, 0]);
        m.extend_from_slice(&index.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m
    }

    fn dellink_in(buf: &[u8], index: i32) -> bool {
        let mut seen = false;
        for_each_message(buf, &mut |kind, body| {
            seen |= is_deletion_of(kind, body, index)
        });
        seen
    }

    #[test]
    fn finds_only_a_dellink_for_the_index() {
        let mut two = msg(libc::RTM_NEWLINK, 7);
        two.extend(msg(libc::RTM_DELLINK, 8));
        assert!(dellink_in(&two, 8));
        assert!(!dellink_in(&two, 7));
        assert!(!dellink_in(&msg(libc::RTM_NEWLINK, 8), 8));
        // Truncated or lying lengths end the scan instead of reading past the datagram.
        assert!(!dellink_in(&msg(libc::RTM_DELLINK, 8)[..20], 8));
        let mut lying = msg(libc::RTM_DELLINK, 8);
        lying[0] = 200;
        assert!(!dellink_in(&lying, 8));
    }
}
