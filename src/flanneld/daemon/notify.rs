//! systemd readiness: `READY=1` to `$NOTIFY_SOCKET` (a path, or an abstract name after `@`).

use anyhow::{Context, Result};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state`; without NOTIFY_SOCKET (not run by systemd) this does nothing.
pub fn notify(state: &str) -> Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(&path),
    }
    .with_context(|| format!("bad NOTIFY_SOCKET {path:?}"))?;
    let sock = UnixDatagram::unbound().context("failed to open a notify socket")?;
    sock.send_to_addr(state.as_bytes(), &addr)
        .with_context(|| format!("failed to notify systemd at {path:?}"))?;
    Ok(())
}
