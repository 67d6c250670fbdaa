//! The netlink library against the real kernel, inside throwaway namespaces, checked with `ip -j`.

use crate::common::*;
use std::os::fd::AsFd;
use weft::sys::netlink::{Route, VethOptions};

#[test]
fn veth_made_up_as_a_bridge_port_with_the_peer_mac_and_echoed() {
    let (a, b) = (Netns::new("nle"), Netns::new("nlf"));
    let (_na, ha) = a.handle();
    let (nb, hb) = b.handle();
    ha.create_bridge("wt-br", None, false).unwrap();
    let br = ha.link_by_name("wt-br").unwrap();
    let peer_mac = [0x02, 0x42, 0, 0, 0, 0x07];
    let echoed = ha
        .create_veth(
            "wt-h",
            "wt-c",
            VethOptions {
                mtu: Some(1450),
                peer_mac: Some(peer_mac),
                peer_netns: Some(nb.as_fd()),
                up: true,
                master: Some(br.index),
                ..Default::default()
            },
        )
        .unwrap()
        .expect("kernels from 6.1 echo the new link");
    let now = ha.link_by_name("wt-h").unwrap();
    assert_eq!(
        (
            echoed.index,
            echoed.name.as_str(),
            &echoed.mac,
            echoed.mtu,
            echoed.up
        ),
        (now.index, "wt-h", &now.mac, 1450, true)
    );
    assert_eq!(now.master, br.index);
    let lh = &a.ipj(&["-d", "link", "show", "wt-h"])[0];
    assert!(
        lh["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{lh}"
    );
    assert_eq!(lh["master"], "wt-br");
    assert_eq!(lh["linkinfo"]["info_slave_kind"], "bridge");
    let lc = &b.ipj(&["link", "show", "wt-c"])[0];
    assert_eq!(lc["address"], "02:42:00:00:00:07");
    assert_eq!(lc["mtu"], 1450);
    assert!(
        !hb.link_by_name("wt-c").unwrap().up,
        "only the named end comes up"
    );

    // A second pair whose peer name is taken in b: EEXIST, and nothing is left in a.
    let dup = ha
        .create_veth(
            "wt-h2",
            "wt-c",
            VethOptions {
                peer_netns: Some(nb.as_fd()),
                up: true,
                master: Some(br.index),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(dup.is_exists(), "{dup}");
    assert!(ha.link_by_name("wt-h2").unwrap_err().is_not_found());
}

#[test]
fn veth_pair_with_peer_created_in_another_namespace() {
    let (a, b) = (Netns::new("nla"), Netns::new("nlb"));
    let (_na, ha) = a.handle();
    let (nb, hb) = b.handle();
    let mac = [0x02, 0x42, 0, 0, 0, 0x01];
    ha.create_veth(
        "wt-a",
        "wt-b",
        VethOptions {
            mtu: Some(1400),
            mac: Some(mac),
            peer_netns: Some(nb.as_fd()),
            ..Default::default()
        },
    )
    .unwrap();
    let la = &a.ipj(&["-d", "link", "show", "wt-a"])[0];
    assert_eq!(la["mtu"], 1400);
    assert_eq!(la["address"], "02:42:00:00:00:01");
    assert_eq!(la["linkinfo"]["info_kind"], "veth");
    let lb = &b.ipj(&["link", "show", "wt-b"])[0];
    assert_eq!(lb["mtu"], 1400);
    assert!(a
        .ipj(&["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["ifname"] != "wt-b"));

    let link = ha.link_by_name("wt-a").unwrap();
    assert_eq!(
        (link.kind.as_str(), link.mtu, link.up),
        ("veth", 1400, false)
    );
    assert_eq!(link.mac_string(), "02:42:00:00:00:01");
    assert_eq!(ha.link_by_index(link.index).unwrap().name, "wt-a");
    ha.set_link_up(link.index, true).unwrap();
    let peer = hb.link_by_name("wt-b").unwrap();
    hb.set_link_up(peer.index, true).unwrap();
    assert!(ha.link_by_name("wt-a").unwrap().up);

    let again = ha
        .create_veth("wt-a", "wt-c", VethOptions::default())
        .unwrap_err();
    assert!(again.is_exists(), "{again}");
    let missing = ha.link_by_name("wt-nope").unwrap_err();
    assert!(missing.is_not_found(), "{missing}");

    ha.delete_link(link.index).unwrap();
    assert!(ha.link_by_name("wt-a").unwrap_err().is_not_found());
    assert!(
        hb.link_by_name("wt-b").unwrap_err().is_not_found(),
        "the peer goes too"
    );
    assert!(ha.delete_link(link.index).unwrap_err().is_not_found());
}

#[test]
fn bridge_ports_mtu_mac_promisc() {
    let ns = Netns::new("nlbr");
    let (_n, h) = ns.handle();
    // VLAN filtering needs CONFIG_BRIDGE_VLAN_FILTERING; ask `ip` whether this kernel has it and
    // expect exactly what `ip` gets.
    let probe = std::process::Command::new("ip")
        .args([
            "-n",
            &ns.name,
            "link",
            "add",
            "wt-probe",
            "type",
            "bridge",
            "vlan_filtering",
            "1",
        ])
        .output()
        .unwrap();
    match h.create_bridge("wt-brv", None, true) {
        Ok(()) => {
            assert!(probe.status.success(), "ip could not, weft could?");
            let brv = &ns.ipj(&["-d", "link", "show", "wt-brv"])[0];
            assert_eq!(brv["linkinfo"]["info_data"]["vlan_filtering"], 1);
        }
        Err(e) => {
            assert!(!probe.status.success(), "ip could, weft could not: {e}");
            assert_eq!(e.errno(), Some(95), "{e}");
            assert!(
                h.link_by_name("wt-brv").unwrap_err().is_not_found(),
                "nothing half-made"
            );
        }
    }
    h.create_bridge("wt-br0", Some(1450), false).unwrap();
    let br = &ns.ipj(&["-d", "link", "show", "wt-br0"])[0];
    assert_eq!(br["linkinfo"]["info_kind"], "bridge");
    assert_eq!(br["mtu"], 1450);
    h.create_bridge("wt-br1", None, false).unwrap();
    let br1 = &ns.ipj(&["-d", "link", "show", "wt-br1"])[0];
    assert_eq!(br1["linkinfo"]["info_data"]["vlan_filtering"], 0);

    h.create_veth("wt-p0", "wt-p1", VethOptions::default())
        .unwrap();
    let bridge = h.link_by_name("wt-br0").unwrap();
    let port = h.link_by_name("wt-p0").unwrap();
    h.set_link_master(port.index, bridge.index).unwrap();
    assert_eq!(h.link_by_name("wt-p0").unwrap().master, bridge.index);
    assert_eq!(ns.ipj(&["link", "show", "wt-p0"])[0]["master"], "wt-br0");
    h.set_link_master(port.index, 0).unwrap();
    assert_eq!(h.link_by_name("wt-p0").unwrap().master, 0);

    h.set_link_mtu(port.index, 1300).unwrap();
    h.set_link_mac(port.index, [0x02, 0, 0, 0, 0xbe, 0xef])
        .unwrap();
    let p = h.link_by_name("wt-p0").unwrap();
    assert_eq!(
        (p.mtu, p.mac_string().as_str()),
        (1300, "02:00:00:00:be:ef")
    );

    h.set_link_promisc(bridge.index, true).unwrap();
    assert!(h.link_by_name("wt-br0").unwrap().promisc);
    let flags = ns.ipj(&["link", "show", "wt-br0"])[0]["flags"].clone();
    assert!(
        flags.as_array().unwrap().iter().any(|f| f == "PROMISC"),
        "{flags}"
    );
    h.set_link_promisc(bridge.index, false).unwrap();
    assert!(!h.link_by_name("wt-br0").unwrap().promisc);

    let names: Vec<String> = h.links().unwrap().into_iter().map(|l| l.name).collect();
    for n in ["lo", "wt-br0", "wt-br1", "wt-p0", "wt-p1"] {
        assert!(names.iter().any(|x| x == n), "{n} in {names:?}");
    }
}

#[test]
fn addresses_and_routes() {
    let ns = Netns::new("nlrt");
    let (_n, h) = ns.handle();
    h.create_veth("wt-r0", "wt-r1", VethOptions::default())
        .unwrap();
    let dev = h.link_by_name("wt-r0").unwrap();
    h.set_link_up(dev.index, true).unwrap();
    let peer = h.link_by_name("wt-r1").unwrap();
    h.set_link_up(peer.index, true).unwrap();

    h.add_address(dev.index, "10.9.0.2/24".parse().unwrap())
        .unwrap();
    h.add_address(dev.index, "fd00:9::2/64".parse().unwrap())
        .unwrap();
    let e = h
        .add_address(dev.index, "10.9.0.2/24".parse().unwrap())
        .unwrap_err();
    assert!(e.is_exists(), "{e}");
    let info = &ns.ipj(&["addr", "show", "wt-r0"])[0]["addr_info"];
    let v4 = info
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["family"] == "inet")
        .unwrap();
    assert_eq!(
        (v4["local"].as_str(), v4["prefixlen"].as_u64()),
        (Some("10.9.0.2"), Some(24))
    );
    assert_eq!(v4["broadcast"], "10.9.0.255");
    let mine: Vec<String> = h
        .addresses(Some(dev.index as u32))
        .unwrap()
        .into_iter()
        .map(|a| a.addr.to_string())
        .collect();
    assert!(
        mine.contains(&"10.9.0.2/24".to_string()) && mine.contains(&"fd00:9::2/64".to_string())
    );
    // One family at a time (the dumps the kernel runs without RTNL); both is IPv4 then IPv6.
    let of = |v6| -> Vec<String> {
        h.addresses_of(Some(dev.index as u32), v6)
            .unwrap()
            .into_iter()
            .map(|a| a.addr.to_string())
            .collect()
    };
    assert_eq!(of(false), ["10.9.0.2/24"]);
    let v6s = of(true);
    assert!(v6s.contains(&"fd00:9::2/64".to_string()), "{v6s:?}");
    assert!(v6s.iter().all(|a| a.contains(':')), "{v6s:?}");
    assert_eq!(mine, [of(false), v6s].concat());

    let mut via = Route::new("10.10.0.0/16".parse().unwrap());
    via.gw = Some("10.9.0.1".parse().unwrap());
    via.oif = Some(dev.index);
    h.add_route(&via).unwrap();
    assert!(h.add_route(&via).unwrap_err().is_exists());
    let mut onlink = Route::new("10.11.0.0/16".parse().unwrap());
    onlink.gw = Some("10.99.0.1".parse().unwrap());
    onlink.oif = Some(dev.index);
    onlink.onlink = true;
    h.add_route(&onlink).unwrap();
    let mut scoped = Route::new("10.12.0.1/32".parse().unwrap());
    scoped.oif = Some(dev.index);
    scoped.scope = 253;
    scoped.src = Some("10.9.0.2".parse().unwrap());
    h.add_route(&scoped).unwrap();
    let mut tabled = Route::new("0.0.0.0/0".parse().unwrap());
    tabled.gw = Some("10.9.0.1".parse().unwrap());
    tabled.oif = Some(dev.index);
    tabled.table = 1000;
    tabled.priority = Some(50);
    h.add_route(&tabled).unwrap();
    let mut v6 = Route::new("fd00:10::/64".parse().unwrap());
    v6.gw = Some("fd00:9::1".parse().unwrap());
    v6.oif = Some(dev.index);
    h.add_route(&v6).unwrap();

    let shown = ns.ip(&["route", "show"]);
    assert!(
        shown.contains("10.10.0.0/16 via 10.9.0.1 dev wt-r0"),
        "{shown}"
    );
    assert!(
        shown.contains("10.11.0.0/16 via 10.99.0.1 dev wt-r0 onlink"),
        "{shown}"
    );
    assert!(
        shown.contains("10.12.0.1 dev wt-r0 scope link src 10.9.0.2"),
        "{shown}"
    );
    let t = ns.ip(&["route", "show", "table", "1000"]);
    assert!(
        t.contains("default via 10.9.0.1 dev wt-r0 metric 50"),
        "{t}"
    );
    assert!(ns
        .ip(&["-6", "route", "show"])
        .contains("fd00:10::/64 via fd00:9::1 dev wt-r0"));

    let dumped = h.routes().unwrap();
    let find = |dst: &str| dumped.iter().find(|r| r.dst.to_string() == dst).cloned();
    assert_eq!(find("10.10.0.0/16").unwrap().gw, via.gw);
    assert!(find("10.11.0.0/16").unwrap().onlink);
    let s = find("10.12.0.1/32").unwrap();
    assert_eq!((s.scope, s.src), (253, scoped.src));
    let d = find("0.0.0.0/0").unwrap();
    assert_eq!((d.table, d.priority), (1000, Some(50)));

    let mut moved = via.clone();
    moved.gw = Some("10.9.0.254".parse().unwrap());
    h.replace_route(&moved).unwrap();
    assert!(ns
        .ip(&["route", "show"])
        .contains("10.10.0.0/16 via 10.9.0.254 dev wt-r0"));
    h.delete_route(&moved).unwrap();
    assert!(!ns.ip(&["route", "show"]).contains("10.10.0.0/16"));
    assert!(h.delete_route(&moved).unwrap_err().is_not_found());
    h.delete_address(dev.index, "10.9.0.2/24".parse().unwrap())
        .unwrap();
    assert!(!ns.ip(&["addr", "show", "wt-r0"]).contains("10.9.0.2"));
}

/// The kernel settings read and written over netlink instead of /proc/sys agree with what
/// /proc/sys shows in the same namespace.
#[test]
fn settings_over_netlink_match_proc_sys() {
    let ns = Netns::new("nlset");
    let (n, h) = ns.handle();
    let sysctl = |name: &str| ns.exec(&["sysctl", "-n", name]).1.trim().to_string();
    for (v4, v6) in [("0", "1"), ("1", "0")] {
        ns.exec(&["sysctl", "-qw", &format!("net.ipv4.ip_forward={v4}")]);
        ns.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.all.forwarding={v6}"),
        ]);
        assert_eq!(h.forwarding(false).unwrap(), v4 == "1");
        assert_eq!(h.forwarding(true).unwrap(), v6 == "1");
    }
    // Forwarding turned on where it was off, and left alone where it was on.
    n.run(|| weft::sys::sysctl::enable_forwarding(&h, true, true))
        .unwrap();
    assert_eq!(
        (
            sysctl("net.ipv4.ip_forward"),
            sysctl("net.ipv6.conf.all.forwarding")
        ),
        ("1".into(), "1".into())
    );

    h.create_bridge("br0", None, false).unwrap();
    let br = h.link_by_name("br0").unwrap();
    assert_eq!(br.ipv6_accept_ra, Some(1));
    ns.exec(&["sysctl", "-qw", "net.ipv6.conf.br0.accept_ra=0"]);
    assert_eq!(h.link_by_index(br.index).unwrap().ipv6_accept_ra, Some(0));
    ns.exec(&["sysctl", "-qw", "net.ipv6.conf.br0.disable_ipv6=1"]);
    assert_eq!(h.link_by_index(br.index).unwrap().ipv6_accept_ra, Some(0));

    assert_eq!(sysctl("net.ipv4.conf.br0.arp_notify"), "0");
    h.set_ipv4_conf(br.index, weft::sys::netlink::IPV4_DEVCONF_ARP_NOTIFY, 1)
        .unwrap();
    assert_eq!(sysctl("net.ipv4.conf.br0.arp_notify"), "1");
    // Set for this link only, not as the namespace's default.
    assert_eq!(sysctl("net.ipv4.conf.default.arp_notify"), "0");
    let e = h
        .set_ipv4_conf(
            br.index + 1000,
            weft::sys::netlink::IPV4_DEVCONF_ARP_NOTIFY,
            1,
        )
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

/// The deletion watch sees the removal of its link and nothing else: the kernel-side filter
/// drops other links' notifications and other kinds of notification for the same link.
#[test]
fn link_events_see_only_the_watched_deletion() {
    let ns = Netns::new("nlev");
    let (n, h) = ns.handle();
    h.create_bridge("wa", None, false).unwrap();
    h.create_bridge("wb", None, false).unwrap();
    let (a, b) = (
        h.link_by_name("wa").unwrap().index,
        h.link_by_name("wb").unwrap().index,
    );
    let mut ev = n
        .run(|| Ok(weft::sys::netlink::LinkEvents::deletions_of(a)?))
        .unwrap();
    h.set_link_up(a, true).unwrap();
    h.set_link_up(a, false).unwrap();
    h.delete_link(b).unwrap();
    // Read with b's index first: b's removal must not have been queued at all.
    assert!(
        !ev.saw_deleted(b).unwrap(),
        "b's removal got through the filter"
    );
    h.delete_link(a).unwrap();
    assert!(ev.saw_deleted(a).unwrap());
}

/// The change watch reports its link's new state (here: operationally up once the peer comes
/// up) and nothing of other links.
#[test]
fn link_events_report_the_watched_links_changes_only() {
    let ns = Netns::new("nlch");
    let (n, h) = ns.handle();
    h.create_veth("va", "vb", VethOptions::default()).unwrap();
    let (a, b) = (
        h.link_by_name("va").unwrap().index,
        h.link_by_name("vb").unwrap().index,
    );
    let mut ev = n
        .run(|| Ok(weft::sys::netlink::LinkEvents::changes_of(a)?))
        .unwrap();
    h.set_link_up(a, true).unwrap();
    h.set_link_up(b, true).unwrap();
    // The kernel's link watch sets the operational state after the requests return.
    let mut last = None;
    for _ in 0..200 {
        if let Some(l) = ev.latest(a).unwrap() {
            assert_eq!(l.index, a);
            last = Some(l);
        }
        if last.as_ref().is_some_and(|l| l.oper_up) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let last = last.expect("no notification for va");
    assert!(last.oper_up, "va never reported up: {last:?}");
    assert_eq!(last.mac, h.link_by_index(a).unwrap().mac);
    // A change of vb alone: the filter keeps it out of the queue.
    h.set_link_mtu(b, 1400).unwrap();
    assert!(
        ev.latest(b).unwrap().is_none(),
        "vb's change got through the filter"
    );
    // vb going down takes va's carrier: that is va's change, and it is reported.
    h.set_link_up(b, false).unwrap();
    let mut down = false;
    for _ in 0..200 {
        if ev.latest(a).unwrap().is_some_and(|l| !l.oper_up) {
            down = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(down, "va's loss of carrier was not reported");
}
