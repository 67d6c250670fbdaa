//! The MAC of a VXLAN device flanneld creates (the lease's VtepMAC), and what it says about a
//! lease found for our public IP.
//!
//! Upstream picks a random MAC each time it creates the device, so after a reboot the host's
//! VTEP is new, and a lease naming another VTEP cannot be told from this host's own previous
//! one. weft derives the MAC from the machine's identity (/etc/machine-id) and the public IP the
//! lease advertises: a reboot makes the same VTEP again, so peers' neighbour and FDB entries stay
//! valid, and a derived MAC other than ours in the lease of our public IP is another weft host's
//! device. The first two bytes mark a MAC as derived; a lease written by upstream or by an older
//! weft has a random MAC and is taken over as upstream would. Without a machine id the MAC is
//! random, as upstream's.

use anyhow::Result;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::path::Path;

use crate::flanneld::subnet::lease::LeaseAttrs;
use crate::sys::netlink::{format_mac, parse_mac};

/// Locally administered and unicast (the low bits of the first byte: 10), then a byte of our own.
/// A random MAC carries this mark once in 16384.
const MARK: [u8; 2] = [0x06, 0x57];

/// Where the machine's identity is read (systemd's, then D-Bus's copy of it).
const MACHINE_ID: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];

/// The machine id, trimmed; None when neither file holds one.
pub fn machine_id() -> Option<Vec<u8>> {
    MACHINE_ID.iter().find_map(|p| {
        let text = crate::sys::small_file::read(Path::new(p)).ok()?;
        let id = text.trim_ascii();
        (!id.is_empty()).then(|| id.to_vec())
    })
}

/// The MAC this machine gives the device of `family` (v6: the flannel-v6 device) advertised as
/// `public`.
pub fn derived(machine_id: &[u8], public: IpAddr, v6: bool) -> [u8; 6] {
    let mut h = Sha256::new();
    h.update(b"weft vxlan VtepMAC\0");
    h.update(machine_id);
    h.update([0]);
    h.update(public.to_string().as_bytes());
    h.update(if v6 { b"\0v6" } else { b"\0v4" });
    let d = h.finalize();
    [MARK[0], MARK[1], d[0], d[1], d[2], d[3]]
}

pub fn is_derived(mac: &[u8; 6]) -> bool {
    mac[..2] == MARK
}

/// The MAC for a device to be created: derived when the machine has an id, else random.
pub fn for_new_device(public: IpAddr, v6: bool) -> Result<[u8; 6]> {
    if let Some(id) = machine_id() {
        return Ok(derived(&id, public, v6));
    }
    log::info!("vxlan: no machine id in {MACHINE_ID:?}; the VTEP MAC is random");
    let mut b = [0u8; 6];
    crate::sys::random::fill(&mut b)?;
    b[0] = (b[0] & 0xfe) | 0x02;
    Ok(b)
}

/// The IPv4 VtepMAC a vxlan lease names.
fn vtep_mac(a: &LeaseAttrs) -> Option<[u8; 6]> {
    if a.backend_type != "vxlan" {
        return None;
    }
    let data = a.backend_data.as_ref()?.as_object()?;
    parse_mac(crate::cni::json::get_ci(data, "VtepMAC")?.as_str()?)
}

/// When the lease found for our public IP (`theirs`) names another weft host's VTEP than the
/// one we advertise (`ours`): that MAC.
pub fn other_hosts_vtep(theirs: &LeaseAttrs, ours: &LeaseAttrs) -> Option<String> {
    let (t, o) = (vtep_mac(theirs)?, vtep_mac(ours)?);
    (t != o && is_derived(&t)).then(|| format_mac(&t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lease(mac: &str) -> LeaseAttrs {
        LeaseAttrs {
            public_ip: "192.168.77.1".parse().unwrap(),
            public_ipv6: None,
            backend_type: "vxlan".into(),
            backend_data: Some(json!({"VNI": 1, "VtepMAC": mac})),
            backend_v6_data: None,
        }
    }

    #[test]
    fn derived_macs_are_stable_marked_local_unicast_and_differ_per_input() {
        let ip: IpAddr = "192.168.77.1".parse().unwrap();
        let a = derived(b"0123456789abcdef0123456789abcdef", ip, false);
        assert_eq!(a, derived(b"0123456789abcdef0123456789abcdef", ip, false));
        assert!(is_derived(&a));
        assert_eq!(a[0] & 0x03, 0x02, "locally administered unicast");
        assert_ne!(a, derived(b"0123456789abcdef0123456789abcdee", ip, false));
        assert_ne!(a, derived(b"0123456789abcdef0123456789abcdef", ip, true));
        let other: IpAddr = "192.168.77.2".parse().unwrap();
        assert_ne!(
            a,
            derived(b"0123456789abcdef0123456789abcdef", other, false)
        );
    }

    #[test]
    fn only_another_derived_vtep_is_another_hosts() {
        let ip: IpAddr = "192.168.77.1".parse().unwrap();
        let mine = format_mac(&derived(b"host-a", ip, false));
        let theirs = format_mac(&derived(b"host-b", ip, false));
        assert_eq!(
            other_hosts_vtep(&lease(&theirs), &lease(&mine)),
            Some(theirs.clone())
        );
        assert_eq!(other_hosts_vtep(&lease(&mine), &lease(&mine)), None);
        // Upstream's or an older weft's random MAC: taken over, as upstream does.
        assert_eq!(
            other_hosts_vtep(&lease("6e:b9:d5:e1:19:85"), &lease(&mine)),
            None
        );
        let mut hostgw = lease(&theirs);
        hostgw.backend_type = "host-gw".into();
        assert_eq!(other_hosts_vtep(&hostgw, &lease(&mine)), None);
    }
}
