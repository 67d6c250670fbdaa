//! Bridge port settings and port VLANs against the real kernel, inside throwaway namespaces,
//! checked with `bridge -j`.

use crate::common::*;
use std::process::{Command, Output};
use weft::sys::netlink::{BridgePort, Handle, PortVlan, VethOptions};

/// `bridge -n NS ARGS...`, whatever its outcome.
fn bridge_cmd(ns: &Netns, args: &[&str]) -> Output {
    Command::new("bridge")
        .arg("-n")
        .arg(&ns.name)
        .args(args)
        .output()
        .unwrap()
}

/// The text `bridge` prints for `errno` after "RTNETLINK answers: ".
fn strerror(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    s.split(" (os error").next().unwrap().to_string()
}

/// Asserts that `bridge ARGS` fails, and with `errno` when given.
fn bridge_fails(ns: &Netns, args: &[&str], errno: Option<i32>) {
    let out = bridge_cmd(ns, args);
    assert!(!out.status.success(), "bridge {args:?} succeeded: {out:?}");
    if let Some(e) = errno {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&strerror(e)), "bridge {args:?}: {err}");
    }
}

/// A bridge with one port `wt-p0` (its veth peer `wt-p1` stays out of the bridge).
struct Setup {
    bridge: i32,
    port: i32,
    outside: i32,
}

fn setup(h: &Handle, vlan_filtering: bool) -> Setup {
    h.create_bridge("wt-br0", None, vlan_filtering).unwrap();
    h.create_veth("wt-p0", "wt-p1", VethOptions::default())
        .unwrap();
    let bridge = h.link_by_name("wt-br0").unwrap().index;
    let port = h.link_by_name("wt-p0").unwrap().index;
    let outside = h.link_by_name("wt-p1").unwrap().index;
    h.set_link_master(port, bridge).unwrap();
    Setup {
        bridge,
        port,
        outside,
    }
}

const STP_STATES: [&str; 5] = [
    "disabled",
    "listening",
    "learning",
    "forwarding",
    "blocking",
];

/// Asserts that what weft reads is what `bridge -d link show` prints.
fn assert_port_matches(ns: &Netns, p: &BridgePort, name: &str) {
    let j = &ns.bridgej(&["-d", "link", "show", "dev", name])[0];
    assert_eq!(j["ifindex"], p.index, "{j}");
    // The STP state is not compared: a port moves between states on its own (carrier), so two
    // reads a moment apart may legitimately differ.
    assert!(
        STP_STATES.contains(&j["state"].as_str().unwrap_or("")),
        "{j}"
    );
    assert_eq!(
        (j["hairpin"].as_bool(), j["isolated"].as_bool()),
        (Some(p.hairpin), Some(p.isolated)),
        "{j}"
    );
    assert_eq!(
        (j["learning"].as_bool(), j["flood"].as_bool()),
        (Some(p.learning), Some(p.flood)),
        "{j}"
    );
    assert_eq!(
        (j["priority"].as_u64(), j["cost"].as_u64()),
        (Some(p.priority as u64), Some(p.cost as u64))
    );
}

#[test]
fn port_hairpin_and_isolated() {
    let ns = Netns::new("brp");
    let (_n, h) = ns.handle();
    let s = setup(&h, false);
    for i in [s.bridge, s.port, s.outside] {
        h.set_link_up(i, true).unwrap();
    }

    let p = h.bridge_port(s.port).unwrap();
    assert_eq!((p.index, p.master), (s.port, s.bridge));
    assert!(!p.hairpin && !p.isolated && p.learning && p.flood, "{p:?}");
    assert_port_matches(&ns, &p, "wt-p0");

    h.set_port_hairpin(s.port, true).unwrap();
    let p = h.bridge_port(s.port).unwrap();
    assert!(p.hairpin && !p.isolated, "{p:?}");
    assert_port_matches(&ns, &p, "wt-p0");

    h.set_port_isolated(s.port, true).unwrap();
    let p = h.bridge_port(s.port).unwrap();
    assert!(p.hairpin && p.isolated, "{p:?}");
    assert_port_matches(&ns, &p, "wt-p0");

    h.set_port_hairpin(s.port, false).unwrap();
    h.set_port_isolated(s.port, false).unwrap();
    let p = h.bridge_port(s.port).unwrap();
    assert!(!p.hairpin && !p.isolated, "{p:?}");
    assert_port_matches(&ns, &p, "wt-p0");

    // Not a port: the kernel has no bridge to hand the request to, and says so as it does to
    // `bridge`; reading finds no port.
    let e = h.set_port_hairpin(s.outside, true).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EOPNOTSUPP), "{e}");
    bridge_fails(
        &ns,
        &["link", "set", "dev", "wt-p1", "hairpin", "on"],
        e.errno(),
    );
    let e = h.set_port_isolated(s.bridge, true).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EOPNOTSUPP), "{e}");
    let e = h.bridge_port(s.outside).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(ns
        .bridgej(&["link", "show", "dev", "wt-p1"])
        .as_array()
        .unwrap()
        .is_empty());

    let e = h.set_port_hairpin(9999, true).unwrap_err();
    assert!(e.is_not_found(), "{e}");

    // Leaving the bridge takes the port settings with it.
    h.set_link_master(s.port, 0).unwrap();
    assert!(h.bridge_port(s.port).unwrap_err().is_not_found());
}

/// `bridge -j vlan show dev NAME` as weft's type, sorted by VID.
fn bridge_vlans(ns: &Netns, name: &str) -> Vec<PortVlan> {
    let j = ns.bridgej(&["vlan", "show", "dev", name]);
    let mut out = Vec::new();
    for port in j.as_array().unwrap() {
        assert_eq!(port["ifname"], name, "{j}");
        for v in port["vlans"].as_array().unwrap() {
            let flags = v["flags"].as_array().cloned().unwrap_or_default();
            let first = v["vlan"].as_u64().unwrap() as u16;
            // A range only when VLANs are compressed (`-c`), which is not asked for; be safe.
            let last = v["vlanEnd"].as_u64().map_or(first, |l| l as u16);
            for vid in first..=last {
                out.push(PortVlan {
                    vid,
                    pvid: flags.iter().any(|f| f == "PVID"),
                    untagged: flags.iter().any(|f| f == "Egress Untagged"),
                });
            }
        }
    }
    out.sort_by_key(|v| v.vid);
    out
}

fn sorted(mut v: Vec<PortVlan>) -> Vec<PortVlan> {
    v.sort_by_key(|v| v.vid);
    v
}

#[test]
fn port_vlans() {
    let ns = Netns::new("brv");
    let (_n, h) = ns.handle();
    // VLAN filtering needs CONFIG_BRIDGE_VLAN_FILTERING; without it every VLAN request the
    // kernel accepts is answered EOPNOTSUPP, and this test checks that weft's requests get
    // exactly what `bridge`'s get, including the ones the kernel rejects for their content.
    let supported = match h.create_bridge("wt-probe", None, true) {
        Ok(()) => true,
        Err(e) => {
            assert_eq!(e.errno(), Some(libc::EOPNOTSUPP), "{e}");
            false
        }
    };
    let s = setup(&h, supported);

    // VID 4095 is reserved: an EINVAL (rather than EOPNOTSUPP) shows that the kernel got as far
    // as reading the VLAN entry out of our IFLA_AF_SPEC, on either kind of kernel.
    let e = h.add_port_vlan(s.port, 4095, false, false).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EINVAL), "{e}");
    bridge_fails(&ns, &["vlan", "add", "dev", "wt-p0", "vid", "4095"], None);
    let e = h.delete_port_vlan(s.port, 4095).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EINVAL), "{e}");
    bridge_fails(
        &ns,
        &["vlan", "del", "dev", "wt-p0", "vid", "4095"],
        Some(libc::EINVAL),
    );

    // Not a port, not a link: no bridge to ask.
    let e = h.add_port_vlan(s.outside, 10, false, false).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EOPNOTSUPP), "{e}");
    bridge_fails(
        &ns,
        &["vlan", "add", "dev", "wt-p1", "vid", "10"],
        e.errno(),
    );
    assert!(h
        .add_port_vlan(9999, 10, false, false)
        .unwrap_err()
        .is_not_found());

    if !supported {
        let e = h.add_port_vlan(s.port, 10, true, true).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EOPNOTSUPP), "{e}");
        bridge_fails(
            &ns,
            &[
                "vlan", "add", "dev", "wt-p0", "vid", "10", "pvid", "untagged",
            ],
            e.errno(),
        );
        // The kernel ignores the outcome of a VLAN delete, so both succeed.
        h.delete_port_vlan(s.port, 10).unwrap();
        assert!(
            bridge_cmd(&ns, &["vlan", "del", "dev", "wt-p0", "vid", "10"])
                .status
                .success()
        );
        assert!(h.port_vlans(s.port).unwrap().is_empty());
        assert!(bridge_vlans(&ns, "wt-p0").is_empty());
        eprintln!("no CONFIG_BRIDGE_VLAN_FILTERING: checked the kernel's refusals only");
        return;
    }

    // A port of a filtering bridge starts in VLAN 1, PVID and untagged.
    let default = PortVlan {
        vid: 1,
        pvid: true,
        untagged: true,
    };
    assert_eq!(h.port_vlans(s.port).unwrap(), vec![default]);
    assert_eq!(bridge_vlans(&ns, "wt-p0"), vec![default]);

    h.add_port_vlan(s.port, 10, true, true).unwrap();
    h.add_port_vlan(s.port, 20, false, false).unwrap();
    h.add_port_vlan(s.port, 30, false, true).unwrap();
    let want = vec![
        // The PVID moved to 10.
        PortVlan {
            pvid: false,
            ..default
        },
        PortVlan {
            vid: 10,
            pvid: true,
            untagged: true,
        },
        PortVlan {
            vid: 20,
            pvid: false,
            untagged: false,
        },
        PortVlan {
            vid: 30,
            pvid: false,
            untagged: true,
        },
    ];
    assert_eq!(sorted(h.port_vlans(s.port).unwrap()), want);
    assert_eq!(bridge_vlans(&ns, "wt-p0"), want);

    // Adding again updates the flags rather than failing.
    h.add_port_vlan(s.port, 20, false, true).unwrap();
    assert!(bridge_vlans(&ns, "wt-p0")
        .iter()
        .any(|v| v.vid == 20 && v.untagged));

    h.delete_port_vlan(s.port, 20).unwrap();
    let left = sorted(h.port_vlans(s.port).unwrap());
    assert!(left.iter().all(|v| v.vid != 20), "{left:?}");
    assert_eq!(bridge_vlans(&ns, "wt-p0"), left);
    // The kernel ignores whether the VLAN was there, for `bridge` too.
    h.delete_port_vlan(s.port, 20).unwrap();
    assert!(
        bridge_cmd(&ns, &["vlan", "del", "dev", "wt-p0", "vid", "20"])
            .status
            .success()
    );

    // Only the port's own VLANs: the bridge's are its own.
    assert!(h.port_vlans(s.outside).unwrap().is_empty());
}
