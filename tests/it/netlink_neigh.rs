//! Neighbours and FDB entries against the real kernel, inside throwaway namespaces, checked with
//! `ip -j neigh` and `bridge -j fdb`.

use crate::common::*;
use std::collections::BTreeSet;
use std::net::IpAddr;
use weft::sys::netlink::{format_mac, Handle, IpFamily, Neighbour, VethOptions};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const MAC1: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const MAC2: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
const ZERO: [u8; 6] = [0; 6];

/// (address, MAC, state) of each entry `ip -j neigh show dev NAME nud all` prints.
fn ip_neighbours(ns: &Netns, family: &str, name: &str) -> BTreeSet<(String, String, String)> {
    ns.ipj(&[family, "neigh", "show", "dev", name, "nud", "all"])
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let state = n["state"].as_array().unwrap();
            assert_eq!(state.len(), 1, "{n}");
            (
                n["dst"].as_str().unwrap().to_string(),
                n["lladdr"].as_str().unwrap_or_default().to_string(),
                state[0].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The same triples from weft's dump.
fn our_neighbours(ns: &[Neighbour]) -> BTreeSet<(String, String, String)> {
    ns.iter()
        .map(|n| {
            let state = match n.state {
                s if s == libc::NUD_PERMANENT => "PERMANENT",
                s if s == libc::NUD_REACHABLE => "REACHABLE",
                s if s == libc::NUD_STALE => "STALE",
                s if s == libc::NUD_NOARP => "NOARP",
                s if s == libc::NUD_FAILED => "FAILED",
                s if s == libc::NUD_INCOMPLETE => "INCOMPLETE",
                s if s == libc::NUD_DELAY => "DELAY",
                s if s == libc::NUD_PROBE => "PROBE",
                s => panic!("state {s:#x} in {n:?}"),
            };
            (
                n.ip.unwrap().to_string(),
                if n.mac.is_empty() {
                    String::new()
                } else {
                    n.mac_string()
                },
                state.to_string(),
            )
        })
        .collect()
}

#[test]
fn neighbours_add_replace_delete() {
    let ns = Netns::new("ngh");
    let (_n, h) = ns.handle();
    // Both ends stay down so the kernel makes no neighbour entries of its own (IPv6 router and
    // multicast ones) and the tables hold exactly what the test put there.
    h.create_veth("wt-n0", "wt-n1", VethOptions::default())
        .unwrap();
    let dev = h.link_by_name("wt-n0").unwrap().index;

    h.add_neighbour(dev, ip("10.20.0.1"), MAC1, true).unwrap();
    h.add_neighbour(dev, ip("10.20.0.2"), MAC2, false).unwrap();
    h.add_neighbour(dev, ip("fd00:20::1"), MAC1, true).unwrap();
    let e = h
        .add_neighbour(dev, ip("10.20.0.1"), MAC2, true)
        .unwrap_err();
    assert!(e.is_exists(), "{e}");

    let v4 = ip_neighbours(&ns, "-4", "wt-n0");
    let want: BTreeSet<_> = [
        ("10.20.0.1", "02:00:00:00:00:01", "PERMANENT"),
        ("10.20.0.2", "02:00:00:00:00:02", "REACHABLE"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(v4, want);
    let v6 = ip_neighbours(&ns, "-6", "wt-n0");
    assert_eq!(v6.len(), 1);
    assert!(v6.contains(&(
        "fd00:20::1".into(),
        "02:00:00:00:00:01".into(),
        "PERMANENT".into()
    )));

    let ours4 = h.neighbours(Some(dev), IpFamily::V4).unwrap();
    assert!(ours4.iter().all(|n| n.index == dev && n.flags == 0));
    assert_eq!(our_neighbours(&ours4), v4);
    let ours6 = h.neighbours(Some(dev), IpFamily::V6).unwrap();
    assert_eq!(our_neighbours(&ours6), v6);
    let both = h.neighbours(Some(dev), IpFamily::Both).unwrap();
    assert_eq!(
        our_neighbours(&both),
        v4.union(&v6).cloned().collect::<BTreeSet<_>>()
    );
    let first = ours4
        .iter()
        .find(|n| n.ip == Some(ip("10.20.0.1")))
        .unwrap();
    assert!(first.is_permanent());
    assert_eq!(first.mac, MAC1);
    // No filter: every link's entries, these among them.
    let all = h.neighbours(None, IpFamily::Both).unwrap();
    assert!(all.len() >= 3);

    // Replace changes an entry in place and creates a missing one.
    h.replace_neighbour(dev, ip("10.20.0.1"), MAC2, true)
        .unwrap();
    h.replace_neighbour(dev, ip("10.20.0.3"), MAC1, true)
        .unwrap();
    h.replace_neighbour(dev, ip("fd00:20::1"), MAC2, false)
        .unwrap();
    let v4 = ip_neighbours(&ns, "-4", "wt-n0");
    assert!(v4.contains(&(
        "10.20.0.1".into(),
        "02:00:00:00:00:02".into(),
        "PERMANENT".into()
    )));
    assert!(v4.contains(&(
        "10.20.0.3".into(),
        "02:00:00:00:00:01".into(),
        "PERMANENT".into()
    )));
    assert_eq!(v4.len(), 3);
    assert_eq!(
        our_neighbours(&h.neighbours(Some(dev), IpFamily::V4).unwrap()),
        v4
    );
    let v6 = ip_neighbours(&ns, "-6", "wt-n0");
    assert_eq!(
        v6.into_iter().collect::<Vec<_>>(),
        vec![(
            "fd00:20::1".into(),
            "02:00:00:00:00:02".into(),
            "REACHABLE".into()
        )]
    );

    h.delete_neighbour(dev, ip("10.20.0.1")).unwrap();
    h.delete_neighbour(dev, ip("fd00:20::1")).unwrap();
    let v4 = ip_neighbours(&ns, "-4", "wt-n0");
    assert!(!v4.iter().any(|n| n.0 == "10.20.0.1"), "{v4:?}");
    assert!(ip_neighbours(&ns, "-6", "wt-n0").is_empty());
    assert_eq!(
        our_neighbours(&h.neighbours(Some(dev), IpFamily::Both).unwrap()),
        v4
    );
    let e = h.delete_neighbour(dev, ip("10.20.0.1")).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let e = h.delete_neighbour(dev, ip("fd00:20::1")).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let e = h
        .add_neighbour(9999, ip("10.20.0.9"), MAC1, true)
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

/// A vxlan device as flannel's vxlan backend makes it, created with `ip` (creating vxlan links
/// is not part of this library yet). Returns its index.
fn vxlan(ns: &Netns, h: &Handle) -> i32 {
    h.create_veth("wt-u0", "wt-u1", VethOptions::default())
        .unwrap();
    ns.ip(&[
        "link",
        "add",
        "wt-vx0",
        "type",
        "vxlan",
        "id",
        "42",
        "dstport",
        "8472",
        "nolearning",
        "dev",
        "wt-u0",
    ]);
    let vx = h.link_by_name("wt-vx0").unwrap();
    assert_eq!(vx.kind, "vxlan");
    vx.index
}

/// (MAC, destination) of each entry `bridge -j fdb show dev NAME` prints, after checking that
/// every one is a permanent entry of the device itself.
fn bridge_fdb(ns: &Netns, name: &str) -> BTreeSet<(String, String)> {
    ns.bridgej(&["fdb", "show", "dev", name])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["state"], "permanent", "{e}");
            assert_eq!(e["flags"], serde_json::json!(["self"]), "{e}");
            (
                e["mac"].as_str().unwrap().to_string(),
                e["dst"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn our_fdb(h: &Handle, index: i32) -> BTreeSet<(String, String)> {
    h.fdb_entries(index)
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e.index, index);
            assert!(e.is_permanent(), "{e:?}");
            assert_eq!(e.flags & libc::NTF_SELF, libc::NTF_SELF, "{e:?}");
            (format_mac(&e.mac), e.ip.unwrap().to_string())
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    v.iter()
        .map(|(m, d)| (m.to_string(), d.to_string()))
        .collect()
}

#[test]
fn fdb_on_vxlan() {
    let ns = Netns::new("fdb");
    let (_n, h) = ns.handle();
    let vx = vxlan(&ns, &h);
    assert!(bridge_fdb(&ns, "wt-vx0").is_empty());
    assert!(our_fdb(&h, vx).is_empty());

    h.append_fdb(vx, MAC1, ip("10.30.0.1")).unwrap();
    let want = pairs(&[("02:00:00:00:00:01", "10.30.0.1")]);
    assert_eq!(bridge_fdb(&ns, "wt-vx0"), want);
    assert_eq!(our_fdb(&h, vx), want);
    // Appending what is there changes nothing and is no error, for `bridge` too; adding it is
    // EEXIST.
    h.append_fdb(vx, MAC1, ip("10.30.0.1")).unwrap();
    assert_eq!(bridge_fdb(&ns, "wt-vx0"), want);
    let e = h.add_fdb(vx, MAC1, ip("10.30.0.1")).unwrap_err();
    assert!(e.is_exists(), "{e}");

    // The all-zeros MAC is the flood list: each append adds a destination.
    h.append_fdb(vx, ZERO, ip("10.30.0.1")).unwrap();
    h.append_fdb(vx, ZERO, ip("10.30.0.2")).unwrap();
    h.add_fdb(vx, MAC2, ip("10.30.0.3")).unwrap();
    let want = pairs(&[
        ("02:00:00:00:00:01", "10.30.0.1"),
        ("02:00:00:00:00:02", "10.30.0.3"),
        ("00:00:00:00:00:00", "10.30.0.1"),
        ("00:00:00:00:00:00", "10.30.0.2"),
    ]);
    assert_eq!(bridge_fdb(&ns, "wt-vx0"), want);
    assert_eq!(our_fdb(&h, vx), want);

    // Replace moves a MAC to another host (a node that came back with a new address).
    h.replace_fdb(vx, MAC1, ip("10.30.0.9")).unwrap();
    let want = pairs(&[
        ("02:00:00:00:00:01", "10.30.0.9"),
        ("02:00:00:00:00:02", "10.30.0.3"),
        ("00:00:00:00:00:00", "10.30.0.1"),
        ("00:00:00:00:00:00", "10.30.0.2"),
    ]);
    assert_eq!(bridge_fdb(&ns, "wt-vx0"), want);
    assert_eq!(our_fdb(&h, vx), want);

    // The vxlan driver answers success for a known MAC with an unknown destination and removes
    // nothing, as it does for `bridge fdb del`.
    h.delete_fdb(vx, MAC1, ip("10.30.0.1")).unwrap();
    assert_eq!(bridge_fdb(&ns, "wt-vx0"), want);

    h.delete_fdb(vx, MAC1, ip("10.30.0.9")).unwrap();
    h.delete_fdb(vx, ZERO, ip("10.30.0.1")).unwrap();
    let want = pairs(&[
        ("02:00:00:00:00:02", "10.30.0.3"),
        ("00:00:00:00:00:00", "10.30.0.2"),
    ]);
    assert_eq!(bridge_fdb(&ns, "wt-vx0"), want);
    assert_eq!(our_fdb(&h, vx), want);
    let e = h.delete_fdb(vx, MAC1, ip("10.30.0.9")).unwrap_err();
    assert!(e.is_not_found(), "{e}");

    // Another link's dump holds none of these.
    let u0 = h.link_by_name("wt-u0").unwrap().index;
    assert!(h
        .fdb_entries(u0)
        .unwrap()
        .iter()
        .all(|e| e.index == u0 && e.ip.is_none()));
    let e = h.append_fdb(9999, MAC1, ip("10.30.0.1")).unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

#[test]
fn vxlan_neighbour_like_flannel() {
    // flannel's vxlan backend: the remote subnet's gateway address resolves to the remote VTEP
    // MAC (ARP entry), and that MAC lives behind the remote host (FDB entry).
    let ns = Netns::new("vxn");
    let (_n, h) = ns.handle();
    let vx = vxlan(&ns, &h);
    h.set_link_up(vx, true).unwrap();
    h.replace_neighbour(vx, ip("10.5.7.0"), MAC1, true).unwrap();
    h.replace_fdb(vx, MAC1, ip("192.0.2.7")).unwrap();
    // Doing it again (a lease renewal) is a no-op, not an error.
    h.replace_neighbour(vx, ip("10.5.7.0"), MAC1, true).unwrap();
    h.replace_fdb(vx, MAC1, ip("192.0.2.7")).unwrap();

    let n = &ns.ipj(&["neigh", "show", "dev", "wt-vx0"]);
    assert_eq!(
        n,
        &serde_json::json!([
            {"dst": "10.5.7.0", "lladdr": "02:00:00:00:00:01", "state": ["PERMANENT"]}
        ])
    );
    assert_eq!(
        bridge_fdb(&ns, "wt-vx0"),
        pairs(&[("02:00:00:00:00:01", "192.0.2.7")])
    );
    let ours = h.neighbours(Some(vx), IpFamily::V4).unwrap();
    let arp = ours.iter().find(|n| n.ip == Some(ip("10.5.7.0"))).unwrap();
    assert!(arp.is_permanent() && arp.mac == MAC1, "{arp:?}");
    let fdb = h.fdb_entries(vx).unwrap();
    assert_eq!(fdb.len(), 1);
    assert_eq!(fdb[0].ip, Some(ip("192.0.2.7")));
    assert_eq!(fdb[0].vni, None, "the device's VNI applies");

    h.delete_neighbour(vx, ip("10.5.7.0")).unwrap();
    h.delete_fdb(vx, MAC1, ip("192.0.2.7")).unwrap();
    assert!(ns
        .ipj(&["neigh", "show", "dev", "wt-vx0"])
        .as_array()
        .unwrap()
        .is_empty());
    assert!(bridge_fdb(&ns, "wt-vx0").is_empty());
}
