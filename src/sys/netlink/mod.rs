//! rtnetlink, and the only module that speaks it (over neli). Each call names the `ip` command it
//! equals. Kernel errors keep their errno ([`Error::errno`]) so callers can treat "not found" and
//! "exists" as they should.
//!
//! A [`Handle`] is bound to the network namespace of the thread that opened it; open one inside a
//! container namespace with [`Handle::open_in`], then use it from any thread.

mod addr;
mod bridge_port;
mod errno;
mod events;
mod link;
mod neigh;
mod netconf;
mod route;
mod vxlan;

pub use addr::{Address, IFA_F_DADFAILED, IFA_F_TENTATIVE};
pub use bridge_port::{BridgePort, PortVlan};
pub use events::LinkEvents;
pub use link::{format_mac, parse_mac, Link, VethOptions, IPV4_DEVCONF_ARP_NOTIFY};
pub use neigh::{IpFamily, Neighbour};
pub use route::{Route, MAIN_TABLE, SCOPE_NOWHERE};
pub use vxlan::Vxlan;

use crate::sys::netns::NetNs;
use neli::consts::nl::NlmF;
use neli::consts::rtnl::{RtaType, Rtm};
use neli::consts::socket::{Msg, NlFamily};
use neli::nl::{NlPayload, NlmsghdrBuilder};
use neli::rtnl::{Rtattr, RtattrBuilder};
use neli::socket::NlSocket;
use neli::types::Buffer;
use neli::utils::Groups;
use neli::{Size, ToBytes};
use std::fmt;
use std::sync::Mutex;

/// A netlink failure, with the kernel's errno when the kernel refused the request.
#[derive(Debug)]
pub struct Error {
    op: String,
    errno: Option<i32>,
    detail: String,
}

impl Error {
    pub(crate) fn new(op: impl Into<String>, detail: impl Into<String>) -> Error {
        Error {
            op: op.into(),
            errno: None,
            detail: detail.into(),
        }
    }

    pub(crate) fn from_errno(op: impl Into<String>, errno: i32) -> Error {
        Error {
            op: op.into(),
            errno: Some(errno),
            detail: errno::text(errno),
        }
    }

    pub(crate) fn not_found(op: impl Into<String>) -> Error {
        Error::from_errno(op, libc::ENODEV)
    }

    /// The kernel's errno, if the kernel answered with one.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// ENODEV / ENOENT / ESRCH / EADDRNOTAVAIL: the object is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno,
            Some(libc::ENODEV | libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL)
        )
    }

    /// EEXIST: the object is already there.
    pub fn is_exists(&self) -> bool {
        self.errno == Some(libc::EEXIST)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.detail)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// An address as the kernel wants it in an attribute: 4 or 16 bytes, network order.
pub(crate) fn ip_bytes(ip: std::net::IpAddr) -> neli::types::Buffer {
    match ip {
        std::net::IpAddr::V4(v) => neli::types::Buffer::from(v.octets().to_vec()),
        std::net::IpAddr::V6(v) => neli::types::Buffer::from(v.octets().to_vec()),
    }
}

/// An address attribute read back from the kernel.
pub(crate) fn ip_from(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// The (type, payload) pairs of a run of netlink attributes, flag bits cleared from the type;
/// stops at the first malformed one.
pub(crate) fn raw_attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16::from_ne_bytes(buf.get(0..2)?.try_into().ok()?) as usize;
        let ty = u16::from_ne_bytes(buf.get(2..4)?.try_into().ok()?) & 0x3fff;
        let payload = buf.get(4..len)?;
        buf = buf.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some((ty, payload))
    })
}

/// An rtnetlink socket bound to one network namespace.
///
/// Requests are answered on the calling thread: send, then read the socket until the answer's
/// end. (neli's router would add a reader thread and two cross-thread wake-ups to every request,
/// which cost more than the kernel's own work in a CNI ADD.) The lock keeps one request's
/// send and reads together when several threads share a handle.
pub struct Handle {
    socket: NlSocket,
    state: Mutex<Exchange>,
}

/// The last sequence number used and the receive buffer, reused by every request.
struct Exchange {
    seq: u32,
    buf: Vec<u8>,
}

/// The largest dump part the kernel sends to a reader with a buffer this big (it sizes dump
/// messages by the reader's buffer, up to 32 KiB).
const RECV_BUF: usize = 32 * 1024;
const NLMSG_HDRLEN: usize = 16;

impl Handle {
    /// Opens a socket in the calling thread's namespace.
    pub fn open() -> Result<Handle> {
        let socket = NlSocket::connect(NlFamily::Route, None, Groups::empty())
            .map_err(|e| Error::new("open rtnetlink socket", e.to_string()))?;
        // Errors then echo only the failed request's header, not the whole request.
        let _ = socket.enable_ext_ack(true);
        // The kernel then honours dump filters (an address dump for one link lists that link
        // only, not every address of the namespace) and rejects malformed requests instead of
        // guessing. Kernels before 4.20 lack it; callers filter the answers themselves too.
        let _ = socket.enable_strict_checking(true);
        Ok(Handle {
            socket,
            state: Mutex::new(Exchange {
                seq: 0,
                buf: vec![0; RECV_BUF],
            }),
        })
    }

    /// The socket's descriptor, for a forked child that keeps only it.
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.socket)
    }

    /// Opens a socket inside `ns`.
    pub fn open_in(ns: &NetNs) -> anyhow::Result<Handle> {
        ns.run(|| Ok(Handle::open()?))
    }

    /// Sends `msg` and maps every reply payload of type `P` through `each`, reading the whole
    /// answer (dump parts and ack) so nothing is left for the next request.
    pub(crate) fn request<Q, P, T>(
        &self,
        ty: Rtm,
        flags: NlmF,
        msg: Q,
        op: &dyn Fn() -> String,
        mut each: impl FnMut(&P) -> Option<T>,
    ) -> Result<Vec<T>>
    where
        Q: neli::Size + neli::ToBytes + fmt::Debug,
        P: neli::Size + neli::FromBytesWithInput<Input = usize> + fmt::Debug,
    {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Exchange { seq, buf } = &mut *state;
        *seq = seq.wrapping_add(1);
        let seq = *seq;
        let hdr = NlmsghdrBuilder::default()
            .nl_type(ty)
            .nl_flags(flags | NlmF::REQUEST)
            .nl_seq(seq)
            .nl_payload(NlPayload::Payload(msg))
            .build()
            .map_err(|e| Error::new(op(), e.to_string()))?;
        let mut out = std::io::Cursor::new(Vec::with_capacity(hdr.padded_size()));
        hdr.to_bytes(&mut out)
            .map_err(|e| Error::new(op(), e.to_string()))?;
        loop {
            match self.socket.send(out.get_ref(), Msg::empty()) {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::new(op(), e.to_string())),
            }
        }

        // A dump ends with NLMSG_DONE, a request with NLM_F_ACK with the ack (an error
        // message with errno 0); a plain get is answered by one message.
        let dump = flags.contains(NlmF::DUMP);
        let ack = flags.contains(NlmF::ACK);
        let mut found = Vec::new();
        loop {
            let n = match self.socket.recv(&mut buf[..], Msg::empty()) {
                Ok((n, _)) => n,
                // A signal handler without SA_RESTART ran; the answer is still coming.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::new(op(), e.to_string())),
            };
            let mut rest = &buf[..n];
            if rest.is_empty() {
                return Err(Error::new(op(), "netlink socket closed"));
            }
            while rest.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
                if len < NLMSG_HDRLEN || len > rest.len() {
                    return Err(Error::new(
                        op(),
                        format!("malformed netlink reply ({len} bytes)"),
                    ));
                }
                let kind = u16::from_ne_bytes(rest[4..6].try_into().expect("2 bytes"));
                let their_seq = u32::from_ne_bytes(rest[8..12].try_into().expect("4 bytes"));
                let body = &rest[NLMSG_HDRLEN..len];
                rest = &rest[len.next_multiple_of(4).min(rest.len())..];
                if their_seq != seq {
                    // The tail of an earlier request that failed half-way through its answer.
                    continue;
                }
                match kind {
                    k if k == libc::NLMSG_ERROR as u16 => {
                        let code = body
                            .get(0..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                            .ok_or_else(|| Error::new(op(), "truncated netlink error"))?;
                        if code == 0 {
                            return Ok(found);
                        }
                        return Err(Error::from_errno(op(), -code));
                    }
                    k if k == libc::NLMSG_DONE as u16 => return Ok(found),
                    k if k == libc::NLMSG_NOOP as u16 => {}
                    _ => {
                        let payload =
                            P::from_bytes_with_input(&mut std::io::Cursor::new(body), body.len())
                                .map_err(|e| Error::new(op(), e.to_string()))?;
                        if let Some(v) = each(&payload) {
                            found.push(v);
                        }
                        if !dump && !ack {
                            return Ok(found);
                        }
                    }
                }
            }
        }
    }

    /// Sends a request that only answers with an ack.
    pub(crate) fn ack<Q>(&self, ty: Rtm, flags: NlmF, msg: Q, op: &dyn Fn() -> String) -> Result<()>
    where
        Q: neli::Size + neli::ToBytes + fmt::Debug,
    {
        self.request::<Q, Buffer, ()>(ty, flags | NlmF::ACK, msg, op, |_| None)
            .map(|_| ())
    }
}

/// One rtnetlink attribute; a builder failure is reported under `op`.
pub(crate) fn attr<T, P>(op: &dyn Fn() -> String, ty: T, payload: P) -> Result<Rtattr<T, Buffer>>
where
    T: RtaType,
    P: neli::Size + neli::ToBytes,
{
    RtattrBuilder::default()
        .rta_type(ty)
        .rta_payload(payload)
        .build()
        .map_err(|e| Error::new(op(), e.to_string()))
}
