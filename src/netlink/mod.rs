//! rtnetlink, and the only module that speaks it (over neli). Each call names the `ip` command it
//! equals. Kernel errors keep their errno ([`Error::errno`]) so callers can treat "not found" and
//! "exists" as they should.
//!
//! A [`Handle`] is bound to the network namespace of the thread that opened it; open one inside a
//! container namespace with [`Handle::open_in`], then use it from any thread.

mod addr;
mod bridge_port;
mod link;
mod neigh;
mod route;
mod vxlan;

pub use addr::{Address, IFA_F_DADFAILED, IFA_F_TENTATIVE};
pub use bridge_port::{BridgePort, PortVlan};
pub use link::{format_mac, parse_mac, Link, VethOptions};
pub use neigh::{IpFamily, Neighbour};
pub use route::{Route, MAIN_TABLE, SCOPE_NOWHERE};
pub use vxlan::Vxlan;

use crate::netns::NetNs;
use neli::consts::nl::NlmF;
use neli::consts::rtnl::{RtaType, Rtm};
use neli::consts::socket::NlFamily;
use neli::err::RouterError;
use neli::nl::NlPayload;
use neli::router::synchronous::NlRouter;
use neli::rtnl::{Rtattr, RtattrBuilder};
use neli::types::Buffer;
use neli::utils::Groups;
use std::fmt;

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

    pub(crate) fn from_router<T: fmt::Debug, P: fmt::Debug>(
        op: impl Into<String>,
        e: RouterError<T, P>,
    ) -> Error {
        match e {
            RouterError::Nlmsgerr(m) => Error {
                op: op.into(),
                errno: Some(-*m.error()),
                detail: std::io::Error::from_raw_os_error(-*m.error()).to_string(),
            },
            RouterError::Io(kind) => Error::new(op, std::io::Error::from(kind).to_string()),
            other => Error::new(op, format!("{other:?}")),
        }
    }

    pub(crate) fn not_found(op: impl Into<String>) -> Error {
        Error {
            op: op.into(),
            errno: Some(libc::ENODEV),
            detail: "no such device".into(),
        }
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

/// An rtnetlink socket bound to one network namespace.
pub struct Handle {
    router: NlRouter,
}

impl Handle {
    /// Opens a socket in the calling thread's namespace.
    pub fn open() -> Result<Handle> {
        let (router, _) = NlRouter::connect(NlFamily::Route, None, Groups::empty())
            .map_err(|e| Error::new("open rtnetlink socket", e.to_string()))?;
        // Extended acks give better kernel messages on newer kernels; failure to enable is harmless.
        let _ = router.enable_ext_ack(true);
        Ok(Handle { router })
    }

    /// Opens a socket inside `ns`.
    pub fn open_in(ns: &NetNs) -> anyhow::Result<Handle> {
        ns.run(|| Ok(Handle::open()?))
    }

    pub(crate) fn router(&self) -> &NlRouter {
        &self.router
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
        let recv = self
            .router()
            .send::<_, _, Rtm, P>(ty, flags, NlPayload::Payload(msg))
            .map_err(|e| Error::from_router(op(), e))?;
        let mut out = Vec::new();
        for reply in recv {
            let reply = reply.map_err(|e| Error::from_router(op(), e))?;
            if let Some(v) = reply.get_payload().and_then(&mut each) {
                out.push(v);
            }
        }
        Ok(out)
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
