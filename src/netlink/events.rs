//! Link notifications: `ip monitor link` in the namespace of the thread that opens them.

use super::{Error, Result, NLMSG_HDRLEN};
use neli::consts::socket::{Msg, NlFamily};
use neli::socket::NlSocket;
use neli::utils::Groups;
use std::os::fd::{AsRawFd, RawFd};

/// A non-blocking socket joined to RTNLGRP_LINK. Only notifications sent after it was opened
/// arrive, so open it before the change it is to see.
pub struct LinkEvents {
    socket: NlSocket,
    buf: Vec<u8>,
}

impl LinkEvents {
    pub fn open() -> Result<LinkEvents> {
        let op = "subscribe to link notifications";
        let socket = NlSocket::connect(
            NlFamily::Route,
            None,
            Groups::new_groups(&[libc::RTNLGRP_LINK]),
        )
        .map_err(|e| Error::new(op, e.to_string()))?;
        socket
            .nonblock()
            .map_err(|e| Error::new(op, e.to_string()))?;
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
        loop {
            let n = match self.socket.recv(&mut self.buf[..], Msg::DONTWAIT) {
                Ok((n, _)) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(seen),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::new("read link notifications", e.to_string())),
            };
            seen |= dellink_in(&self.buf[..n], index);
        }
    }
}

/// True if the datagram `buf` holds an RTM_DELLINK for `index`.
fn dellink_in(mut buf: &[u8], index: i32) -> bool {
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return false;
        }
        let kind = u16::from_ne_bytes(buf[4..6].try_into().expect("2 bytes"));
        // struct ifinfomsg: family, pad, type (u16), then the index.
        let body = &buf[NLMSG_HDRLEN..len];
        if kind == libc::RTM_DELLINK && body.len() >= 8 {
            let their = i32::from_ne_bytes(body[4..8].try_into().expect("4 bytes"));
            if their == index {
                return true;
            }
        }
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
    }
    false
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
