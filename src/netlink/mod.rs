//! rtnetlink, and the only module that speaks it (over neli). Each call names the `ip` command it
//! equals. Kernel errors keep their errno ([`Error::errno`]) so callers can treat "not found" and
//! "exists" as they should.
//!
//! A [`Handle`] is bound to the network namespace of the thread that opened it; open one inside a
//! container namespace with [`Handle::open_in`], then use it from any thread.

mod addr;
mod link;
mod route;

pub use addr::Address;
pub use link::{format_mac, parse_mac, Link, VethOptions};
pub use route::{Route, MAIN_TABLE};

use crate::netns::NetNs;
use neli::consts::socket::NlFamily;
use neli::err::RouterError;
use neli::router::synchronous::NlRouter;
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
}
