//! Kernel parameters under /proc/sys, of the network namespace of the *calling thread*: the
//! kernel picks the namespace when the file is opened, so a write made from inside
//! [`crate::sys::netns::NetNs::run`] lands in that namespace. Names use `/` (`net/ipv4/ip_forward`)
//! because interface names may contain dots (`cni0.100`).

use crate::sys::netlink::Handle;
use anyhow::{Context, Result};
use std::path::PathBuf;

fn path(name: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(name)
}

/// `sysctl NAME`, trimmed.
pub fn get(name: &str) -> Result<String> {
    let p = path(name);
    let v = std::fs::read_to_string(&p).with_context(|| format!("failed to read {p:?}"))?;
    Ok(v.trim().to_string())
}

/// `sysctl -w NAME=VALUE`.
pub fn set(name: &str, value: &str) -> Result<()> {
    let p = path(name);
    // No O_CREAT: the name must exist, and its last component can then be looked up without
    // the directory lock.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .and_then(|mut f| std::io::Write::write_all(&mut f, value.as_bytes()))
        .with_context(|| format!("failed to write {value:?} to {p:?}"))
}

/// Writes only when the value differs, so a read-only /proc/sys that already holds the wanted
/// value (a common container setup) is not an error.
pub fn ensure(name: &str, value: &str) -> Result<()> {
    if get(name).is_ok_and(|v| v == value) {
        return Ok(());
    }
    set(name, value)
}

/// Turns on IPv4 and/or IPv6 forwarding, as the reference plugins' forwarding helper does.
/// `h` (a handle in the same namespace) reads the current setting first: on a node with many
/// pods a /proc/sys/net lookup walks a dentry per namespace, and forwarding is almost always
/// on already.
pub fn enable_forwarding(h: &Handle, v4: bool, v6: bool) -> Result<()> {
    for (wanted, ipv6, name) in [
        (v4, false, "net/ipv4/ip_forward"),
        (v6, true, "net/ipv6/conf/all/forwarding"),
    ] {
        if wanted && !h.forwarding(ipv6).unwrap_or(false) {
            ensure(name, "1")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_reports_missing_names() {
        assert!(["0", "1"].contains(&get("net/ipv4/ip_forward").unwrap().as_str()));
        let e = get("net/ipv4/conf/weft-no-such-if/arp_notify").unwrap_err();
        assert!(format!("{e:#}").contains("weft-no-such-if"), "{e:#}");
    }
}
