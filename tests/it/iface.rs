//! The interface plumbing bridge and ptp share, against the kernel in throwaway namespaces:
//! gateway addresses (ensureAddr), applying a result (ConfigureIface), the veth pair.

use crate::common::*;
use std::os::fd::AsFd;
use weft::cni::result::{CniResult, Interface, IpConfig, Route};
use weft::plugins::iface::unregister::peer_in_this_namespace;
use weft::plugins::iface::{
    configure_iface, delete_link_collect_addrs, ensure_addr, setup_veth, wait_oper_up_notified,
};
use weft::sys::netlink::LinkEvents;

fn global_addrs(ns: &Netns, dev: &str) -> Vec<String> {
    ns.ipj(&["addr", "show", "dev", dev])[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["scope"] == "global")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

#[test]
fn ensure_addr_ipv4_conflicts_unless_forced() {
    let ns = Netns::new("ea4");
    let (_n, h) = ns.handle();
    h.create_bridge("br0", None, false).unwrap();
    let br = h.link_by_name("br0").unwrap();
    ensure_addr(&h, &br, "10.0.0.1/8".parse().unwrap(), false).unwrap();
    ensure_addr(&h, &br, "10.0.0.1/8".parse().unwrap(), false).unwrap();
    let e = ensure_addr(&h, &br, "10.1.2.3/16".parse().unwrap(), false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "\"br0\" already has an IP address different from 10.1.2.3/16"
    );
    assert_eq!(global_addrs(&ns, "br0"), ["10.0.0.1/8"]);
    ensure_addr(&h, &br, "10.1.2.3/16".parse().unwrap(), true).unwrap();
    assert_eq!(global_addrs(&ns, "br0"), ["10.1.2.3/16"]);
    // The MAC is pinned: it stays what it was when the bridge was looked up.
    assert_eq!(h.link_by_index(br.index).unwrap().mac, br.mac);
}

#[test]
fn ensure_addr_ipv6_conflicts_only_when_subnets_overlap() {
    let ns = Netns::new("ea6");
    let (_n, h) = ns.handle();
    h.create_bridge("br0", None, false).unwrap();
    let br = h.link_by_name("br0").unwrap();
    ensure_addr(&h, &br, "2001:db8:1::1/48".parse().unwrap(), false).unwrap();
    assert!(ensure_addr(&h, &br, "2001:db8:1:2::1/64".parse().unwrap(), false).is_err());
    ensure_addr(&h, &br, "2001:db8:1:2::1/64".parse().unwrap(), true).unwrap();
    assert_eq!(global_addrs(&ns, "br0"), ["2001:db8:1:2::1/64"]);
    ensure_addr(&h, &br, "fd00:1234::1/64".parse().unwrap(), false).unwrap();
    assert_eq!(
        global_addrs(&ns, "br0"),
        ["fd00:1234::1/64", "2001:db8:1:2::1/64"]
    );
}

fn result_for(ifname: &str, ips: Vec<IpConfig>, routes: Vec<Route>) -> CniResult {
    CniResult {
        interfaces: vec![Interface {
            name: ifname.into(),
            ..Default::default()
        }],
        ips,
        routes,
        ..Default::default()
    }
}

fn ipc(addr: &str, gw: &str, interface: Option<usize>) -> IpConfig {
    IpConfig {
        interface,
        address: addr.parse().unwrap(),
        gateway: Some(gw.parse().unwrap()),
    }
}

#[test]
fn configure_iface_applies_addresses_and_routes_including_ecmp() {
    let (host, ctr) = (Netns::new("cih"), Netns::new("cic"));
    let (_hn, hh) = host.handle();
    let (cn, ch) = ctr.handle();
    let pair = setup_veth(&hh, &ch, cn.as_fd(), "eth0", None, None, None).unwrap();
    let r = |dst: &str, gw: Option<&str>| {
        Route::new(dst.parse().unwrap(), gw.map(|g| g.parse().unwrap()))
    };
    let res = result_for(
        "eth0",
        vec![
            ipc("10.1.2.5/24", "10.1.2.1", Some(0)),
            ipc("2001:db8::5/64", "2001:db8::1", Some(0)),
            // No interface index: not ours to configure.
            ipc("10.9.9.9/24", "10.9.9.1", None),
        ],
        vec![
            r("0.0.0.0/0", None),
            r("192.168.0.0/16", Some("10.1.2.7")),
            r("192.168.0.0/16", Some("10.1.2.8")),
            r("2001:db8:9::/64", None),
        ],
    );
    // Without DAD off the IPv6 address would stay tentative for a second; the plugins turn it
    // off (bridge's default) before configuring.
    ctr.exec(&["sysctl", "-w", "net.ipv6.conf.eth0.accept_dad=0"]);
    configure_iface(&cn, &ch, &pair.container, &res).unwrap();
    assert_eq!(
        global_addrs(&ctr, "eth0"),
        ["10.1.2.5/24", "2001:db8::5/64"]
    );
    let v4 = ctr.ip(&["-4", "route", "show"]);
    assert!(v4.contains("default via 10.1.2.1 dev eth0"), "{v4}");
    assert!(v4.contains("192.168.0.0/16 via 10.1.2.7 dev eth0"), "{v4}");
    assert!(v4.contains("192.168.0.0/16 via 10.1.2.8 dev eth0"), "{v4}");
    let v6 = ctr.ip(&["-6", "route", "show"]);
    assert!(
        v6.contains("2001:db8:9::/64 via 2001:db8::1 dev eth0"),
        "{v6}"
    );
    let sys = |k: &str| ctr.exec(&["sysctl", "-n", k]).1.trim().to_string();
    assert_eq!(sys("net.ipv6.conf.eth0.keep_addr_on_down"), "1");
    // IPv6 addresses survive the link going down.
    ctr.ip(&["link", "set", "eth0", "down"]);
    assert!(global_addrs(&ctr, "eth0").contains(&"2001:db8::5/64".to_string()));
}

#[test]
fn configure_iface_rejects_bad_interface_indexes() {
    let (host, ctr) = (Netns::new("cbh"), Netns::new("cbc"));
    let (_hn, hh) = host.handle();
    let (cn, ch) = ctr.handle();
    let pair = setup_veth(&hh, &ch, cn.as_fd(), "eth0", None, None, None).unwrap();
    for (ifname_in_result, index) in [("eth0", 1), ("other", 0)] {
        let res = result_for(
            ifname_in_result,
            vec![ipc("10.1.2.5/24", "10.1.2.1", Some(index))],
            vec![],
        );
        let e = configure_iface(&cn, &ch, &pair.container, &res).unwrap_err();
        assert!(e.to_string().ends_with("invalid interface index"), "{e}");
    }
    let e = configure_iface(&cn, &ch, &pair.container, &CniResult::default()).unwrap_err();
    assert_eq!(e.to_string(), "no interfaces to configure");
}

#[test]
fn veth_pair_names_mac_and_deletion() {
    let (host, ctr) = (Netns::new("vph"), Netns::new("vpc"));
    let (_hn, hh) = host.handle();
    let (cn, ch) = ctr.handle();
    let mac = [0x02, 0, 0, 0, 0, 0x42];
    let pair = setup_veth(&hh, &ch, cn.as_fd(), "eth0", Some(1400), Some(mac), None).unwrap();
    assert!(pair.host.name.starts_with("veth") && pair.host.name.len() == 12);
    assert_eq!(pair.container.mac_string(), "02:00:00:00:00:42");
    assert_ne!(
        pair.host.mac_string(),
        "02:00:00:00:00:42",
        "MAC only on the container end"
    );
    assert_eq!(pair.host.parent, pair.container.index);
    assert_eq!(pair.container.parent, pair.host.index);
    assert!(pair.host.up);
    assert_eq!(host.link_names(), ["lo", pair.host.name.as_str()]);
    let hv = &host.ipj(&["link", "show", &pair.host.name])[0];
    assert_eq!(
        (hv["mtu"].as_u64(), hv["txqlen"].as_u64()),
        (Some(1400), Some(1000))
    );
    let e = setup_veth(&hh, &ch, cn.as_fd(), "eth0", None, None, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "container veth name (\"eth0\") already exists"
    );
    ch.add_address(pair.container.index, "10.1.2.5/24".parse().unwrap())
        .unwrap();
    // From the test's own namespace the peer is out of sight: the deletion waits for the kernel.
    let addrs = delete_link_collect_addrs(ch, "eth0", true).unwrap();
    assert_eq!(addrs, ["10.1.2.5/24".parse().unwrap()]);
    assert_eq!(ctr.link_names(), ["lo"]);
    assert_eq!(host.link_names(), ["lo"]);
    let (_, ch) = ctr.handle();
    assert!(delete_link_collect_addrs(ch, "eth0", true)
        .unwrap()
        .is_empty());

    // Without `collect` (DEL when no masquerade needs them) the addresses are not listed.
    let (_, ch) = ctr.handle();
    let pair = setup_veth(&hh, &ch, cn.as_fd(), "eth0", None, None, None).unwrap();
    ch.add_address(pair.container.index, "10.1.2.6/24".parse().unwrap())
        .unwrap();
    assert!(delete_link_collect_addrs(ch, "eth0", false)
        .unwrap()
        .is_empty());
    assert_eq!(ctr.link_names(), ["lo"]);
    assert_eq!(host.link_names(), ["lo"]);
}

#[test]
fn veth_deletion_seen_from_the_peers_namespace() {
    let (host, ctr, other) = (Netns::new("vdh"), Netns::new("vdc"), Netns::new("vdo"));
    let (hn, hh) = host.handle();
    let (cn, ch) = ctr.handle();
    let (on, _) = other.handle();
    hh.create_bridge("br0", None, false).unwrap();
    let br = hh.link_by_name("br0").unwrap();
    let pair = setup_veth(&hh, &ch, cn.as_fd(), "eth0", None, None, Some(br.index)).unwrap();
    ch.add_address(pair.container.index, "10.1.2.5/24".parse().unwrap())
        .unwrap();
    let peer_index = |ns: &weft::sys::netns::NetNs| {
        ns.run(|| Ok(peer_in_this_namespace(&pair.container).map(|l| l.index)))
            .unwrap()
    };
    assert_eq!(peer_index(&hn), Some(pair.host.index));
    assert_eq!(peer_index(&on), None);
    assert_eq!(peer_index(&cn), None, "eth0's own namespace holds no peer");

    // Run from the host side, as bridge DEL runs: it returns on the peer's RTM_DELLINK, and by
    // then both ends are gone and the bridge has no port left.
    let addrs = hn
        .run(|| delete_link_collect_addrs(ch, "eth0", true))
        .unwrap();
    assert_eq!(addrs, ["10.1.2.5/24".parse().unwrap()]);
    assert_eq!(ctr.link_names(), ["lo"]);
    assert_eq!(host.link_names(), ["br0", "lo"]);
    assert_eq!(
        host.ipj(&["link", "show", "master", "br0"]),
        serde_json::json!([])
    );
    // Gone already: nothing to delete, no error.
    let (_, ch) = ctr.handle();
    assert!(hn
        .run(|| delete_link_collect_addrs(ch, "eth0", true))
        .unwrap()
        .is_empty());
}

/// The bridge port's oper-up wait on notifications: it returns the port's state once the
/// container end comes up (the port's MAC as `ip link` reports it), and when the container end
/// never comes up it fails as the polling wait does, with the state it last saw.
#[test]
fn oper_up_wait_on_notifications() {
    let (host, ctr) = (Netns::new("ouh"), Netns::new("ouc"));
    let (hn, hh) = host.handle();
    let (cn, ch) = ctr.handle();
    hh.create_bridge("br0", None, false).unwrap();
    hh.set_link_up(hh.link_by_name("br0").unwrap().index, true)
        .unwrap();
    let br = hh.link_by_name("br0").unwrap();
    let pair = setup_veth(&hh, &ch, cn.as_fd(), "eth0", None, None, Some(br.index)).unwrap();
    assert!(!hh.link_by_index(pair.host.index).unwrap().oper_up);
    let events = hn
        .run(|| Ok(LinkEvents::changes_of(pair.host.index)?))
        .unwrap();
    ch.set_link_up(pair.container.index, true).unwrap();
    let port = wait_oper_up_notified(&hh, events, pair.host.index).unwrap();
    assert!(port.oper_up);
    assert_eq!(port.index, pair.host.index);
    let shown = &host.ipj(&["link", "show", &pair.host.name])[0];
    assert_eq!(shown["address"].as_str().unwrap(), port.mac_string());
    assert_eq!(shown["operstate"], "UP");

    // A port whose container end stays down: the wait gives up after the reference's 2.55 s.
    let ctr2 = Netns::new("ouc2");
    let (cn2, ch2) = ctr2.handle();
    let pair2 = setup_veth(&hh, &ch2, cn2.as_fd(), "eth0", None, None, Some(br.index)).unwrap();
    let events = hn
        .run(|| Ok(LinkEvents::changes_of(pair2.host.index)?))
        .unwrap();
    let e = wait_oper_up_notified(&hh, events, pair2.host.index).unwrap_err();
    assert_eq!(e.to_string(), "bridge port in error state: down");
}
