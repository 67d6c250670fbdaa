//! flanneld against a real etcd (Debian etcd-server) in throwaway namespaces: three "hosts" on
//! an underlay bridge, pods behind each host's cni0, traffic across hosts over vxlan and host-gw.

use crate::common::overlay::{lab, net_of, route_to, wait_for, Lab, ETCD_IP};
use serde_json::Value;
use std::time::Duration;

const NET: &str = r#"{"Network":"10.45.0.0/16","Backend":{"Type":"vxlan"}}"#;

#[test]
fn vxlan_three_hosts_pods_reach_each_other_and_a_removed_lease_is_unprogrammed() {
    let mut tb = lab(3);
    tb.set_config(NET);
    tb.start_all(&[]);

    // subnet.env: upstream's exact lines.
    let env = tb.hosts[0].wait_env();
    let lines: Vec<&str> = env.lines().collect();
    assert_eq!(lines.len(), 4, "{env}");
    assert_eq!(lines[0], "FLANNEL_NETWORK=10.45.0.0/16");
    assert!(
        lines[1].starts_with("FLANNEL_SUBNET=10.45.") && lines[1].ends_with(".1/24"),
        "{env}"
    );
    assert_eq!(lines[2], "FLANNEL_MTU=1450");
    assert_eq!(lines[3], "FLANNEL_IPMASQ=false");

    // Leases in etcd: one per host, upstream's JSON with the device's MAC.
    let leases = tb.etcd.leases();
    assert_eq!(leases.len(), 3, "{leases:?}");
    for h in &tb.hosts {
        let key = format!(
            "/coreos.com/network/subnets/{}",
            net_of(&h.subnet()).replace('/', "-")
        );
        let (_, v) = leases
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("{key} in {leases:?}"));
        assert_eq!(v["PublicIP"], h.ip.as_str());
        assert_eq!(v["PublicIPv6"], Value::Null);
        assert_eq!(v["BackendType"], "vxlan");
        assert_eq!(v["BackendData"]["VNI"], 1);
        let dev = &h.ns.ipj(&["-d", "link", "show", "flannel.1"])[0];
        assert_eq!(v["BackendData"]["VtepMAC"], dev["address"]);
        assert_eq!(dev["mtu"], 1450);
        assert_eq!(dev["linkinfo"]["info_data"]["port"], 8472);
        assert_eq!(dev["linkinfo"]["info_data"]["local"], h.ip.as_str());
        assert_eq!(dev["linkinfo"]["info_data"]["learning"], false);
        let addrs = h.ns.ipj(&["-4", "addr", "show", "flannel.1"]);
        let a = &addrs[0]["addr_info"][0];
        assert_eq!(
            format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]),
            net_of(&h.subnet()).replace("/24", "/32")
        );
    }

    // Every host has route + neighbour + FDB entry for both peers.
    for (i, h) in tb.hosts.iter().enumerate() {
        for (j, peer) in tb.hosts.iter().enumerate() {
            if i == j {
                continue;
            }
            let dst = net_of(&peer.subnet());
            let vtep = dst.split_once('/').unwrap().0.to_string();
            let r = wait_for(Duration::from_secs(10), "peer route", || {
                route_to(&h.ns, &dst)
            });
            assert_eq!(r["dev"], "flannel.1");
            assert_eq!(r["gateway"], vtep.as_str());
            assert!(
                r["flags"].as_array().unwrap().iter().any(|f| f == "onlink"),
                "{r}"
            );
            let mac = peer.ns.ipj(&["link", "show", "flannel.1"])[0]["address"].clone();
            let neigh = h.ns.ipj(&["neigh", "show", "dev", "flannel.1"]);
            assert!(
                neigh
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|n| n["dst"] == vtep.as_str()
                        && n["lladdr"] == mac
                        && n["state"][0] == "PERMANENT"),
                "{neigh}"
            );
            let fdb = h.ns.bridgej(&["fdb", "show", "dev", "flannel.1"]);
            assert!(
                fdb.as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["mac"] == mac && f["dst"] == peer.ip.as_str()),
                "{fdb}"
            );
        }
    }

    let ips = tb.add_pods();
    tb.ping_all(&ips, &[]);

    // Remove host 2's lease: the others drop its route, neighbour and FDB entry, and host 2's
    // flanneld stops with an error (its lease is gone).
    let gone = net_of(&tb.hosts[2].subnet());
    tb.etcd.ctl(&[
        "del",
        &format!("/coreos.com/network/subnets/{}", gone.replace('/', "-")),
    ]);
    for h in &tb.hosts[..2] {
        wait_for(
            Duration::from_secs(10),
            "removed peer's route to go",
            || route_to(&h.ns, &gone).is_none().then_some(()),
        );
        let vtep = gone.split_once('/').unwrap().0;
        let neigh = h.ns.ipj(&["neigh", "show", "dev", "flannel.1"]);
        assert!(
            !neigh.as_array().unwrap().iter().any(|n| n["dst"] == vtep),
            "{neigh}"
        );
        let mac = tb.hosts[2].ns.ipj(&["link", "show", "flannel.1"])[0]["address"].clone();
        let fdb = h.ns.bridgej(&["fdb", "show", "dev", "flannel.1"]);
        assert!(
            !fdb.as_array().unwrap().iter().any(|f| f["mac"] == mac),
            "{fdb}"
        );
    }
    let h2 = &mut tb.hosts[2];
    let st = wait_for(Duration::from_secs(10), "host 2's flanneld to exit", || {
        h2.flanneld.as_mut().unwrap().try_wait().unwrap()
    });
    assert!(!st.success(), "a lost lease must be a failure exit");
    h2.flanneld = None;
    assert!(h2.log().contains("lease was removed"), "{}", h2.log());
    assert!(tb.hosts[0].pods[0].ping(&ips[1].1));

    // Reconciliation: a deleted neighbour entry and a deleted device come back, with the peer's
    // entries, and traffic flows again.
    let peer = net_of(&tb.hosts[1].subnet());
    let vtep = peer.split_once('/').unwrap().0.to_string();
    tb.hosts[0]
        .ns
        .ip(&["neigh", "del", &vtep, "dev", "flannel.1"]);
    tb.hosts[1].ns.ip(&["link", "del", "flannel.1"]);
    wait_for(
        Duration::from_secs(25),
        "the neighbour and the device to be restored",
        || {
            let n = tb.hosts[0].ns.ipj(&["neigh", "show", "dev", "flannel.1"]);
            let restored = n
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["dst"] == vtep.as_str());
            let dev = tb.hosts[1].ns.exec(&["ip", "link", "show", "flannel.1"]).0;
            (restored && dev).then_some(())
        },
    );
    wait_for(
        Duration::from_secs(25),
        "traffic over the re-created device",
        || tb.hosts[0].pods[0].ping(&ips[1].1).then_some(()),
    );
}

#[test]
fn host_gw_routes_via_peers_with_masquerade_and_forward_rules() {
    let mut tb = lab(3);
    tb.set_config(r#"{"Network":"10.46.0.0/16","Backend":{"Type":"host-gw"}}"#);
    tb.start_all(&["-ip-masq"]);
    let env = tb.hosts[1].wait_env();
    assert!(
        env.ends_with("FLANNEL_MTU=1500\nFLANNEL_IPMASQ=true\n"),
        "{env}"
    );
    for (i, h) in tb.hosts.iter().enumerate() {
        for (j, peer) in tb.hosts.iter().enumerate() {
            if i != j {
                let dst = net_of(&peer.subnet());
                let r = wait_for(Duration::from_secs(10), "host-gw route", || {
                    route_to(&h.ns, &dst)
                });
                assert_eq!(r["gateway"], peer.ip.as_str());
                assert_eq!(r["dev"], "eth0");
            }
        }
        assert!(!h.ns.link_names().iter().any(|l| l.starts_with("flannel")));
    }
    let lease = &tb.etcd.leases()[0].1;
    assert_eq!(lease["BackendType"], "host-gw");
    assert!(lease.get("BackendData").is_none());

    // Upstream's rules, in upstream's order.
    let h = &tb.hosts[0];
    let own = net_of(&h.subnet());
    let (ok, nat) =
        h.ns.exec(&["iptables", "-t", "nat", "-S", "FLANNEL-POSTRTG"]);
    assert!(ok, "{nat}");
    let want = [
        "-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment \"flanneld masq\" -j RETURN".to_string(),
        format!("-A FLANNEL-POSTRTG -s {own} -d 10.46.0.0/16 -m comment --comment \"flanneld masq\" -j RETURN"),
        format!("-A FLANNEL-POSTRTG -s 10.46.0.0/16 -d {own} -m comment --comment \"flanneld masq\" -j RETURN"),
        format!("-A FLANNEL-POSTRTG ! -s 10.46.0.0/16 -d {own} -m comment --comment \"flanneld masq\" -j RETURN"),
        "-A FLANNEL-POSTRTG -s 10.46.0.0/16 ! -d 224.0.0.0/4 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully".to_string(),
        "-A FLANNEL-POSTRTG ! -s 10.46.0.0/16 -d 10.46.0.0/16 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully".to_string(),
    ];
    let got: Vec<&str> = nat.lines().filter(|l| l.starts_with("-A")).collect();
    assert_eq!(got, want.iter().map(String::as_str).collect::<Vec<_>>());
    let (_, post) = h.ns.exec(&["iptables", "-t", "nat", "-S", "POSTROUTING"]);
    assert!(
        post.contains("-A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG"),
        "{post}"
    );
    let (_, fwd) = h.ns.exec(&["iptables", "-S", "FLANNEL-FWD"]);
    assert!(
        fwd.contains(
            "-A FLANNEL-FWD -s 10.46.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT"
        ),
        "{fwd}"
    );
    assert!(
        fwd.contains(
            "-A FLANNEL-FWD -d 10.46.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT"
        ),
        "{fwd}"
    );

    // A deleted rule comes back with the resync loop.
    h.ns.exec(&["iptables", "-t", "nat", "-F", "FLANNEL-POSTRTG"]);
    wait_for(Duration::from_secs(15), "masq rules to be restored", || {
        let (_, nat) =
            h.ns.exec(&["iptables", "-t", "nat", "-S", "FLANNEL-POSTRTG"]);
        (nat.lines().filter(|l| l.starts_with("-A")).count() == 6).then_some(())
    });

    let ips = tb.add_pods();
    tb.ping_all(&ips, &[]);

    // A deleted route is re-added by the periodic reconciliation.
    let peer = net_of(&tb.hosts[1].subnet());
    tb.hosts[0].ns.ip(&["route", "del", &peer]);
    wait_for(Duration::from_secs(25), "route to be re-added", || {
        route_to(&tb.hosts[0].ns, &peer).map(|_| ())
    });

    // A peer that is only reachable through a gateway is refused with a log line naming it.
    tb.etcd.put(
        "/coreos.com/network/subnets/10.46.250.0-24",
        r#"{"PublicIP":"10.99.0.1","PublicIPv6":null,"BackendType":"host-gw"}"#,
    );
    wait_for(Duration::from_secs(10), "the not-on-link refusal", || {
        tb.hosts[0]
            .log()
            .contains("10.99.0.1: it is not on-link")
            .then_some(())
    });
    assert!(route_to(&tb.hosts[0].ns, "10.46.250.0/24").is_none());
}

#[test]
fn restart_keeps_the_subnet_and_the_data_plane() {
    let mut tb = lab(2);
    tb.set_config(NET);
    tb.start_all(&[]);
    let ips = tb.add_pods();
    tb.ping_all(&ips, &[]);
    let before = tb.hosts[0].subnet();
    let mac = tb.hosts[0].ns.ipj(&["link", "show", "flannel.1"])[0]["address"].clone();
    assert_eq!(
        tb.hosts[0].stop_flanneld(),
        Some(0),
        "SIGTERM is a clean exit"
    );
    // Nothing was torn down: the route to the peer is still there and traffic still flows.
    let peer = net_of(&tb.hosts[1].subnet());
    assert!(route_to(&tb.hosts[0].ns, &peer).is_some());
    assert!(tb.hosts[0].pods[0].ping(&ips[1].1));
    // Started again (even without subnet.env), it finds its own lease by PublicIP.
    std::fs::remove_file(tb.hosts[0].subnet_file()).unwrap();
    let ep = tb.etcd.endpoint.clone();
    tb.hosts[0].start_flanneld(&ep, &[]);
    assert_eq!(tb.hosts[0].subnet(), before);
    assert_eq!(
        tb.hosts[0].ns.ipj(&["link", "show", "flannel.1"])[0]["address"],
        mac,
        "VtepMAC kept"
    );
    assert!(
        tb.hosts[0].log().contains("found our lease"),
        "{}",
        tb.hosts[0].log()
    );
    assert!(tb.hosts[1].pods[0].ping(&ips[0].1));
    assert_eq!(tb.etcd.leases().len(), 2);
}

#[test]
fn garbage_in_etcd_is_logged_and_skipped() {
    let mut tb = lab(2);
    // A malformed config first: flanneld says why and keeps retrying.
    tb.set_config(r#"{"Network":"10.47.0.0/16","#);
    let ep = tb.etcd.endpoint.clone();
    tb.hosts[0].start_flanneld(&ep, &[]);
    wait_for(Duration::from_secs(10), "a config error in the log", || {
        tb.hosts[0]
            .log()
            .contains("invalid network config")
            .then_some(())
    });
    tb.etcd.put(
        "/coreos.com/network/subnets/not-a-subnet",
        r#"{"PublicIP":"192.168.77.9"}"#,
    );
    tb.etcd
        .put("/coreos.com/network/subnets/10.47.9.0-24", "{garbage");
    tb.set_config(r#"{"Network":"10.47.0.0/16","Backend":{"Type":"vxlan"}}"#);
    tb.hosts[0].wait_env();
    tb.hosts[1].start_flanneld(&ep, &[]);
    tb.hosts[1].wait_env();
    // More garbage while running.
    tb.etcd.put(
        "/coreos.com/network/subnets/10.47.10.0-24",
        r#"{"PublicIP":"nope"}"#,
    );
    tb.etcd
        .put("/coreos.com/network/subnets/10.47.11.0-2x", "{}");
    let log = wait_for(Duration::from_secs(10), "warnings about bad leases", || {
        let l = tb.hosts[0].log();
        (l.contains("10.47.10.0-24") && l.contains("not a subnet key")).then_some(l)
    });
    assert!(
        log.contains("not valid JSON") || log.contains("not an IPv4"),
        "{log}"
    );
    let ips = tb.add_pods();
    tb.ping_all(&ips, &[]);
    for h in &mut tb.hosts {
        assert!(
            h.flanneld.as_mut().unwrap().try_wait().unwrap().is_none(),
            "flanneld died:\n{}",
            h.log()
        );
    }
    let _ = ETCD_IP;
}

#[test]
fn vxlan_dual_stack_leases_devices_and_pods_reach_each_other_over_ipv6() {
    let mut tb = lab(0);
    tb.ul
        .ip(&["addr", "add", "fd77::fe/64", "dev", "ul0", "nodad"]);
    for i in 0..2 {
        tb.add_host();
        let h = &tb.hosts[i];
        h.ns.ip(&[
            "addr",
            "add",
            &format!("fd77::{}/64", i + 1),
            "dev",
            "eth0",
            "nodad",
        ]);
        h.ns.ip(&["-6", "route", "add", "default", "via", "fd77::fe"]);
        let (ok, out) =
            h.ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
        assert!(ok, "{out}");
    }
    tb.set_config(r#"{"Network":"10.48.0.0/16","EnableIPv6":true,"IPv6Network":"fd48::/48","Backend":{"Type":"vxlan"}}"#);
    tb.start_all(&[]);
    let env = tb.hosts[0].wait_env();
    assert!(env.contains("FLANNEL_IPV6_NETWORK=fd48::/48\n"), "{env}");
    let v6sub = |env: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix("FLANNEL_IPV6_SUBNET="))
            .unwrap()
            .to_string()
    };
    let leases = tb.etcd.leases();
    assert_eq!(leases.len(), 2);
    for (k, v) in &leases {
        assert!(k.contains("&fd48:0:0:") && k.ends_with("::-64"), "{k}");
        assert!(
            v["PublicIPv6"].as_str().unwrap().starts_with("fd77::"),
            "{v}"
        );
        assert!(v["BackendV6Data"]["VtepMAC"].is_string(), "{v}");
    }
    let mut pod6 = Vec::new();
    for h in tb.hosts.iter_mut() {
        let env = h.wait_env();
        let gw6 = v6sub(&env);
        h.add_pod(2);
        let dev = &h.ns.ipj(&["link", "show", "flannel-v6.1"])[0];
        assert_eq!(dev["mtu"], 1430, "IPv6 outer headers cost 20 bytes more");
        assert!(env.contains("FLANNEL_MTU=1430\n"), "{env}");
        h.ns.ip(&["addr", "add", &gw6, "dev", "cni0", "nodad"]);
        let ip6 = gw6.replace("::1/64", "::2");
        let pod = &h.pods[0];
        pod.ip(&["addr", "add", &format!("{ip6}/64"), "dev", "eth0", "nodad"]);
        pod.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            gw6.split('/').next().unwrap(),
        ]);
        pod6.push(ip6);
    }
    for h in &tb.hosts {
        wait_for(Duration::from_secs(10), "IPv6 peer routes", || {
            let r = h.ns.ipj(&["-6", "route", "show", "dev", "flannel-v6.1"]);
            (r.as_array()
                .unwrap()
                .iter()
                .any(|r| r["dst"].as_str().unwrap_or("").starts_with("fd48:")))
            .then_some(())
        });
    }
    // The first packets wait for neighbour discovery on the fresh addresses. On a timeout, what
    // each host had programmed, to tell a slow machine from a missing entry.
    let state = |tb: &Lab| {
        tb.hosts
            .iter()
            .map(|h| {
                let ip = |args: &[&str]| h.ns.exec(args).1;
                format!(
                    "{}:\n{}{}{}{}",
                    h.name,
                    ip(&["ip", "-6", "route"]),
                    ip(&["ip", "-6", "neigh"]),
                    ip(&["bridge", "fdb", "show", "dev", "flannel-v6.1"]),
                    h.log()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    crate::common::overlay::wait_for_then(
        Duration::from_secs(30),
        || format!("pod-to-pod ping over IPv6\n{}", state(&tb)),
        || {
            tb.hosts[0].pods[0]
                .exec(&["ping", "-6", "-c", "1", "-W", "2", &pod6[1]])
                .0
                .then_some(())
        },
    );
    let ips = pods_v4(&tb);
    assert!(tb.hosts[1].pods[0].ping(&ips[0]));
}

fn pods_v4(tb: &Lab) -> Vec<String> {
    tb.hosts
        .iter()
        .map(|h| {
            let a = h.pods[0].ipj(&["-4", "addr", "show", "eth0"]);
            a[0]["addr_info"][0]["local"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_new_network_leaves_no_address_of_the_old_one_on_the_device() {
    let mut tb = lab(1);
    tb.set_config(NET);
    tb.start_all(&[]);
    let old = tb.hosts[0].subnet();
    assert_eq!(tb.hosts[0].stop_flanneld(), Some(0));
    tb.set_config(r#"{"Network":"10.46.0.0/16","Backend":{"Type":"vxlan"}}"#);
    std::fs::remove_file(tb.hosts[0].subnet_file()).unwrap();
    let ep = tb.etcd.endpoint.clone();
    tb.hosts[0].start_flanneld(&ep, &[]);
    let new = tb.hosts[0].subnet();
    assert!(new.starts_with("10.46."), "{old} -> {new}");
    let addrs: Vec<String> = tb.hosts[0].ns.ipj(&["-4", "addr", "show", "flannel.1"])[0]
        ["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    let want = format!("{}/32", new.parse::<ipnet::Ipv4Net>().unwrap().network());
    assert_eq!(addrs, [want], "old lease {old}");
}

/// `-ip-blackhole-route`: the host gets a blackhole route to its own subnet at once, gets it
/// back within a resync period when it is deleted, and keeps it when flanneld stops, as
/// upstream; a host without the flag gets none.
#[test]
fn blackhole_route_to_the_own_subnet_is_kept() {
    let mut tb = lab(2);
    tb.set_config(NET);
    let ep = tb.etcd.endpoint.clone();
    tb.hosts[0].start_flanneld(&ep, &["-ip-blackhole-route", "-iptables-resync=1"]);
    tb.hosts[1].start_flanneld(&ep, &[]);
    tb.hosts[0].wait_env();
    tb.hosts[1].wait_env();
    let subnet = net_of(&tb.hosts[0].subnet());
    let has = |tb: &Lab, i: usize| blackholes(&tb.hosts[i].ns).contains(&subnet);
    wait_for(Duration::from_secs(5), "the blackhole route", || {
        has(&tb, 0).then_some(())
    });
    tb.hosts[0].ns.ip(&["route", "del", "blackhole", &subnet]);
    assert!(!has(&tb, 0));
    wait_for(Duration::from_secs(5), "the blackhole route back", || {
        has(&tb, 0).then_some(())
    });
    // It really drops: the kernel's lookup of an unused address of the lease ends in the
    // blackhole (answered EINVAL).
    let unused = subnet.replace(".0/24", ".77");
    let (ok, out) = tb.hosts[0].ns.exec(&["ip", "route", "get", &unused]);
    assert!(!ok && out.contains("Invalid argument"), "{out}");
    tb.hosts[0].stop_flanneld();
    assert!(has(&tb, 0), "upstream leaves the route when flanneld stops");
    let other = blackholes(&tb.hosts[1].ns);
    assert!(other.is_empty(), "a host without the flag: {other:?}");
}

/// The destinations of `ns`'s IPv4 blackhole routes.
fn blackholes(ns: &crate::common::Netns) -> Vec<String> {
    ns.ipj(&["-4", "route", "show", "type", "blackhole"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dst"].as_str().unwrap().to_string())
        .collect()
}

/// Backend `alloc`: each host leases a subnet (the lease JSON upstream writes for alloc: the
/// public IP and nothing of a backend) and writes subnet.env with the interface's MTU, but
/// programs nothing: no flannel device, no route to the other host's subnet.
#[test]
fn alloc_leases_subnets_and_programs_nothing() {
    let mut tb = lab(2);
    tb.set_config(r#"{"Network":"10.49.0.0/16","Backend":{"Type":"alloc"}}"#);
    tb.start_all(&[]);
    let leases = tb.etcd.leases();
    assert_eq!(leases.len(), 2, "{leases:?}");
    for (i, h) in tb.hosts.iter().enumerate() {
        let env = h.wait_env();
        let mtu = h.ns.ipj(&["link", "show", "eth0"])[0]["mtu"].clone();
        assert!(env.contains(&format!("FLANNEL_MTU={mtu}\n")), "{env}");
        let key = format!(
            "/coreos.com/network/subnets/{}",
            net_of(&h.subnet()).replace('/', "-")
        );
        let raw = tb.etcd.ctl(&["get", "--print-value-only", &key]);
        assert_eq!(
            raw.trim(),
            format!(r#"{{"PublicIP":"{}","PublicIPv6":null}}"#, h.ip)
        );
        let other = net_of(&tb.hosts[1 - i].subnet());
        let links = h.ns.link_names();
        assert!(!links.iter().any(|l| l.starts_with("flannel")), "{links:?}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            route_to(&h.ns, &other).is_none(),
            "a route to {other} on host {i}"
        );
    }
    assert!(
        !tb.hosts[0].log().contains("adding"),
        "{}",
        tb.hosts[0].log()
    );
}
