//! The bridge plugin against the real kernel: every cniVersion, every config key, failure
//! paths that must leave nothing behind. Each test has its own "host" and container namespaces.

use crate::common::*;
use serde_json::{json, Value};

fn bridge_conf(site: &Site, v: &str, extra: Value) -> String {
    site.conf("bridge", v, merged(json!({"bridge": "br0"}), extra))
}

fn has_flag(l: &Value, flag: &str) -> bool {
    l["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}

/// Host links other than lo and the bridge: what an attachment leaves behind.
fn host_veths(site: &Site) -> Vec<String> {
    site.host
        .link_names()
        .into_iter()
        .filter(|n| n != "lo" && n != "br0")
        .collect()
}

#[test]
fn add_check_del_at_every_version() {
    for v in VERSIONS {
        let site = Site::new("bh");
        let ctr = Netns::new("bc");
        let conf = bridge_conf(&site, v, json!({"isDefaultGateway": true}));
        let out = site.run("bridge", &site.env("ADD", "c1", &ctr), &conf);
        let res = out.ok();
        assert!(out.stdout.contains(if v < "0.3.0" {
            "\"ip4\":"
        } else {
            "\"interfaces\":"
        }));
        let br = link(&site.host, "br0");
        assert_eq!(br["linkinfo"]["info_kind"], "bridge");
        assert_eq!(br["linkinfo"]["info_data"]["vlan_filtering"], 0);
        assert_eq!(br["promiscuity"], 0);
        assert_eq!(addrs(&site.host, "br0", "-4"), ["10.1.2.1/24"]);
        let veths = host_veths(&site);
        assert_eq!(veths.len(), 1, "{veths:?}");
        assert!(veths[0].starts_with("veth") && veths[0].len() == 12);
        let hv = link(&site.host, &veths[0]);
        assert_eq!(hv["master"], "br0");
        assert_ne!(hv["address"], br["address"], "bridge MAC pinned");
        let eth0 = link(&ctr, "eth0");
        assert_eq!(eth0["operstate"], "UP");
        assert_eq!(addrs(&ctr, "eth0", "-4"), ["10.1.2.2/24"]);
        let routes = ctr.ipj(&["route", "show", "default"]);
        assert_eq!(routes[0]["gateway"], "10.1.2.1");
        assert!(routes[0].get("prefsrc").is_none());
        if v >= "0.3.0" {
            let ifs = res["interfaces"].as_array().unwrap();
            assert_eq!(ifs.len(), 3);
            assert_eq!(ifs[0]["name"], "br0");
            assert_eq!(ifs[0]["mac"], br["address"]);
            assert_eq!(ifs[1]["name"], veths[0].as_str());
            assert_eq!(ifs[1]["mac"], hv["address"]);
            assert_eq!(ifs[2]["name"], "eth0");
            assert_eq!(ifs[2]["mac"], eth0["address"]);
            assert_eq!(ifs[2]["sandbox"], ctr.path());
            assert_eq!(res["ips"][0]["interface"], 2);
            assert_eq!(res["ips"][0]["address"], "10.1.2.2/24");
        } else {
            assert_eq!(res["ip4"]["ip"], "10.1.2.2/24");
        }
        if v >= "0.4.0" {
            let check = with_prev(&conf, &res);
            site.run("bridge", &site.env("CHECK", "c1", &ctr), &check)
                .ok();
        }
        site.run("bridge", &site.env("DEL", "c1", &ctr), &conf).ok();
        assert!(host_veths(&site).is_empty());
        assert_eq!(ctr.link_names(), ["lo"]);
        assert!(site.reserved().is_empty());
        // The bridge and its gateway address stay, as with the reference plugin.
        assert_eq!(addrs(&site.host, "br0", "-4"), ["10.1.2.1/24"]);
        // DEL again, and DEL of an attachment never added: success.
        site.run("bridge", &site.env("DEL", "c1", &ctr), &conf).ok();
        site.run("bridge", &site.env("DEL", "never", &ctr), &conf)
            .ok();
    }
}

#[test]
fn ipv6_dual_stack_and_resolv_conf() {
    let site = Site::new("b6");
    let resolv = site.data.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 192.0.2.0\n").unwrap();
    for (v, ranges, expect4, expect6) in [
        ("1.0.0", json!([[{"subnet": "2001:db8::/64"}]]), 0, 1),
        (
            "0.4.0",
            json!([[{"subnet": "192.168.0.0/24"}], [{"subnet": "fd00::/64"}]]),
            1,
            1,
        ),
    ] {
        let ctr = Netns::new("b6c");
        let ipam = json!({"type": "host-local", "ranges": ranges,
                          "resolvConf": resolv.display().to_string()});
        let conf = bridge_conf(&site, v, json!({"isGateway": true, "ipam": ipam}));
        let res = site.run("bridge", &site.env("ADD", "c6", &ctr), &conf).ok();
        assert_eq!(res["dns"]["nameservers"], json!(["192.0.2.0"]));
        assert_eq!(addrs(&ctr, "eth0", "-4").len(), expect4);
        assert_eq!(addrs(&ctr, "eth0", "-6").len(), expect6);
        let br6 = addrs(&site.host, "br0", "-6");
        assert!(
            br6.contains(&"2001:db8::1/64".to_string()) || br6.contains(&"fd00::1/64".into()),
            "{br6:?}"
        );
        site.run(
            "bridge",
            &site.env("CHECK", "c6", &ctr),
            &with_prev(&conf, &res),
        )
        .ok();
        site.run("bridge", &site.env("DEL", "c6", &ctr), &conf).ok();
        assert!(site.reserved().is_empty());
    }
    // Non-overlapping IPv6 gateways accumulate on the bridge.
    let br6 = addrs(&site.host, "br0", "-6");
    assert!(br6.contains(&"2001:db8::1/64".to_string()) && br6.contains(&"fd00::1/64".into()));
}

#[test]
fn more_than_one_address_per_family_is_refused_before_0_3_0_and_leaves_nothing() {
    let ranges = json!([[{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8:1::/64"}],
                        [{"subnet": "2001:db8:2::/64"}]]);
    for v in ["0.1.0", "0.2.0", "0.3.1"] {
        let site = Site::new("b3");
        let ctr = Netns::new("b3c");
        let conf = bridge_conf(
            &site,
            v,
            json!({"ipam": {"type": "host-local", "ranges": ranges}}),
        );
        let out = site.run("bridge", &site.env("ADD", "c3", &ctr), &conf);
        if v == "0.3.1" {
            assert_eq!(out.ok()["ips"].as_array().unwrap().len(), 3);
            site.run("bridge", &site.env("DEL", "c3", &ctr), &conf).ok();
            continue;
        }
        let msg = out.err(7);
        assert_eq!(
            msg,
            format!("CNI version {v} does not support more than 1 address per family")
        );
        assert!(host_veths(&site).is_empty() && site.reserved().is_empty());
        assert_eq!(ctr.link_names(), ["lo"]);
        // DEL reads only what it needs to release (see `weft::cni::lenient`): nothing to do.
        site.run("bridge", &site.env("DEL", "c3", &ctr), &conf).ok();
    }
}

#[test]
fn l2_mode_and_disabled_container_interface() {
    for v in VERSIONS {
        let site = Site::new("bl2");
        let ctr = Netns::new("bl2c");
        let conf = bridge_conf(&site, v, json!({"ipam": {}}));
        let out = site.run("bridge", &site.env("ADD", "l2", &ctr), &conf);
        if v < "0.3.0" {
            assert!(out.err(999).contains("no valid IP addresses"), "{out:?}");
            // Unlike the reference, the failed ADD takes its veth back.
            assert!(host_veths(&site).is_empty());
            assert_eq!(ctr.link_names(), ["lo"]);
            continue;
        }
        let res = out.ok();
        assert!(res.get("ips").is_none());
        assert_eq!(link(&ctr, "eth0")["operstate"], "UP");
        assert!(addrs(&ctr, "eth0", "-4").is_empty());
        if v >= "0.4.0" {
            // The reference fails CHECK on every L2 bridge (it asks an empty IPAM type).
            site.run(
                "bridge",
                &site.env("CHECK", "l2", &ctr),
                &with_prev(&conf, &res),
            )
            .ok();
        }
        site.run("bridge", &site.env("DEL", "l2", &ctr), &conf).ok();
        assert!(host_veths(&site).is_empty());
    }
    let site = Site::new("bdc");
    let ctr = Netns::new("bdcc");
    let conf = bridge_conf(
        &site,
        "1.0.0",
        json!({"ipam": {}, "disableContainerInterface": true}),
    );
    site.run("bridge", &site.env("ADD", "d", &ctr), &conf).ok();
    assert!(!has_flag(&link(&ctr, "eth0"), "UP"));
    site.run("bridge", &site.env("DEL", "d", &ctr), &conf).ok();
    let conf = bridge_conf(&site, "1.0.0", json!({"disableContainerInterface": true}));
    let msg = site
        .run("bridge", &site.env("ADD", "d", &ctr), &conf)
        .err(7);
    assert_eq!(
        msg,
        "cannot use IPAM when DisableContainerInterface flag is set"
    );
}

#[test]
fn port_flags_promisc_mtu_and_mac() {
    let site = Site::new("bpf");
    let ctr = Netns::new("bpfc");
    let conf = bridge_conf(
        &site,
        "1.0.0",
        json!({"hairpinMode": true, "portIsolation": true, "mtu": 1400,
               "runtimeConfig": {"mac": "02:00:00:00:00:03"},
               "args": {"cni": {"mac": "02:00:00:00:00:02"}}}),
    );
    let mut env = site.env("ADD", "p", &ctr);
    // host-local, like the reference's, refuses keys it does not know unless told to ignore them.
    env.args = "IgnoreUnknown=1;MAC=02:00:00:00:00:01".into();
    let res = site.run("bridge", &env, &conf).ok();
    let hv_name = res["interfaces"][1]["name"].as_str().unwrap().to_string();
    let hv = link(&site.host, &hv_name);
    let port = &hv["linkinfo"]["info_slave_data"];
    assert_eq!(port["hairpin"], true, "{hv}");
    assert_eq!(port["isolated"], true, "{hv}");
    assert_eq!(hv["mtu"], 1400);
    assert_eq!(link(&site.host, "br0")["mtu"], 1400);
    let eth0 = link(&ctr, "eth0");
    assert_eq!(eth0["mtu"], 1400);
    assert_eq!(eth0["address"], "02:00:00:00:00:03");
    site.run("bridge", &env.cmd("DEL"), &conf).ok();

    // Existing bridge: same ifindex, same MAC after an ADD/DEL cycle; promisc turned on.
    let before = link(&site.host, "br0");
    let conf = bridge_conf(&site, "1.0.0", json!({"promiscMode": true}));
    site.run("bridge", &site.env("ADD", "q", &ctr), &conf).ok();
    site.run("bridge", &site.env("DEL", "q", &ctr), &conf).ok();
    let after = link(&site.host, "br0");
    assert_eq!(after["ifindex"], before["ifindex"]);
    assert_eq!(after["address"], before["address"]);
    assert_eq!(after["promiscuity"], 1);

    let conf = bridge_conf(
        &site,
        "1.0.0",
        json!({"hairpinMode": true, "promiscMode": true}),
    );
    let msg = site
        .run("bridge", &site.env("ADD", "r", &ctr), &conf)
        .err(7);
    assert_eq!(
        msg,
        "cannot set hairpin mode and promiscuous mode at the same time"
    );
}

#[test]
fn two_containers_on_one_bridge_reach_each_other_and_the_gateway() {
    let site = Site::new("bping");
    let (a, b) = (Netns::new("bpa"), Netns::new("bpb"));
    let conf = bridge_conf(&site, "1.0.0", json!({"isGateway": true}));
    let ra = site.run("bridge", &site.env("ADD", "a", &a), &conf).ok();
    let rb = site.run("bridge", &site.env("ADD", "b", &b), &conf).ok();
    let ip = |r: &Value| {
        r["ips"][0]["address"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    assert!(a.ping(&ip(&rb)), "a -> b");
    assert!(b.ping(&ip(&ra)), "b -> a");
    assert!(a.ping("10.1.2.1"), "a -> gateway");
    assert!(site.host.ping(&ip(&ra)), "host -> a");
    for (c, ns) in [("a", &a), ("b", &b)] {
        site.run("bridge", &site.env("DEL", c, ns), &conf).ok();
    }
}

#[test]
fn ip_masq_chains_follow_the_reference_and_go_away_on_del() {
    let site = Site::new("bm");
    let ctr = Netns::new("bmc");
    let conf = bridge_conf(&site, "1.0.0", json!({"ipMasq": true, "isGateway": true}));
    site.run("bridge", &site.env("ADD", "m1", &ctr), &conf).ok();
    let rules = site.host.nat_rules(false);
    let chain = rules
        .iter()
        .find_map(|r| r.strip_prefix("-N "))
        .expect("a CNI chain")
        .to_string();
    assert!(chain.starts_with("CNI-") && chain.len() == 28, "{chain}");
    assert!(
        rules
            .iter()
            .any(|r| r.starts_with("-A POSTROUTING -s 10.1.2.2/32")
                && r.contains(&format!("-j {chain}"))),
        "{rules:#?}"
    );
    site.run("bridge", &site.env("DEL", "m1", &ctr), &conf).ok();
    assert!(site.host.nat_rules(false).is_empty());

    // nftables backend
    let conf = bridge_conf(
        &site,
        "1.0.0",
        json!({"ipMasq": true, "ipMasqBackend": "nftables"}),
    );
    site.run("bridge", &site.env("ADD", "m2", &ctr), &conf).ok();
    let (_, nft) = site
        .host
        .exec(&["nft", "list", "table", "inet", "cni_plugins_masquerade"]);
    assert!(
        nft.contains("ip saddr 10.1.2.3 ip daddr != 10.1.2.0/24 masquerade"),
        "{nft}"
    );
    site.run("bridge", &site.env("DEL", "m2", &ctr), &conf).ok();
    let (_, nft) = site
        .host
        .exec(&["nft", "list", "table", "inet", "cni_plugins_masquerade"]);
    assert!(!nft.contains("masquerade comment"), "{nft}");
}

#[test]
fn mac_spoof_check_rules_are_made_and_removed() {
    let site = Site::new("bs");
    let ctr = Netns::new("bsc");
    let conf = bridge_conf(&site, "1.0.0", json!({"macspoofchk": true}));
    let res = site
        .run("bridge", &site.env("ADD", "dummy-0", &ctr), &conf)
        .ok();
    let mac = res["interfaces"][2]["mac"].as_str().unwrap().to_string();
    let (ok, nft) = site.host.exec(&["nft", "list", "table", "bridge", "nat"]);
    assert!(ok, "{nft}");
    assert_eq!(
        nft.matches("comment \"macspoofchk-dummy-0-eth0\"").count(),
        4,
        "{nft}"
    );
    assert!(nft.contains(&format!("ether saddr {mac} return")), "{nft}");
    site.run("bridge", &site.env("DEL", "dummy-0", &ctr), &conf)
        .ok();
    let (_, nft) = site.host.exec(&["nft", "list", "table", "bridge", "nat"]);
    assert!(!nft.contains("macspoofchk"), "{nft}");
}

#[test]
fn gateway_address_conflicts_fail_unless_forced_and_roll_back() {
    let site = Site::new("bg");
    let ctr = Netns::new("bgc");
    let a = bridge_conf(&site, "1.0.0", json!({"isGateway": true, "ipMasq": true}));
    site.run("bridge", &site.env("ADD", "g1", &ctr), &a).ok();
    site.run("bridge", &site.env("DEL", "g1", &ctr), &a).ok();
    // Another subnet: the bridge already has 10.1.2.1/24. The failure comes after IPAM, the
    // veth and the masquerade rules: all of it must be taken back.
    let other = json!({"type": "host-local", "subnet": "10.1.3.0/24"});
    let b = bridge_conf(
        &site,
        "1.0.0",
        json!({"isGateway": true, "ipMasq": true, "ipam": other}),
    );
    let out = site.run("bridge", &site.env("ADD", "g2", &ctr), &b);
    assert_eq!(
        out.err(999),
        "failed to set bridge addr: \"br0\" already has an IP address different from 10.1.3.1/24"
    );
    assert!(host_veths(&site).is_empty());
    assert_eq!(ctr.link_names(), ["lo"]);
    assert!(site.reserved().is_empty(), "{:?}", site.reserved());
    assert!(site.host.nat_rules(false).is_empty());
    assert_eq!(addrs(&site.host, "br0", "-4"), ["10.1.2.1/24"]);
    let forced = bridge_conf(
        &site,
        "1.0.0",
        json!({"isGateway": true, "forceAddress": true, "ipam": other}),
    );
    site.run("bridge", &site.env("ADD", "g3", &ctr), &forced)
        .ok();
    assert_eq!(addrs(&site.host, "br0", "-4"), ["10.1.3.1/24"]);
    site.run("bridge", &site.env("DEL", "g3", &ctr), &forced)
        .ok();
}

#[test]
fn bad_input_fails_cleanly() {
    let site = Site::new("bb");
    let ctr = Netns::new("bbc");
    let conf = bridge_conf(&site, "1.0.0", json!({"isGateway": true}));
    // Missing netns.
    let mut env = site.env("ADD", "x", &ctr);
    env.netns = "/run/netns/weft-no-such-netns".into();
    let msg = site.run("bridge", &env, &conf).err(999);
    assert!(msg.starts_with("failed to open netns"), "{msg}");
    assert!(site.reserved().is_empty());
    // Interface name already taken in the container.
    ctr.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ]);
    let msg = site
        .run("bridge", &site.env("ADD", "x", &ctr), &conf)
        .err(999);
    assert_eq!(msg, "container veth name (\"eth0\") already exists");
    // IPAM ran beside the veth's creation (see delegate::EarlyAdd) and was taken back.
    assert!(host_veths(&site).is_empty() && site.reserved().is_empty());
    ctr.ip(&["link", "del", "eth0"]);
    // A runtime repeating an ADD: the veth error, as the reference gives it, and the first
    // ADD's address kept (host-local refused the duplicate, so there is nothing to release).
    site.run("bridge", &site.env("ADD", "again", &ctr), &conf)
        .ok();
    let reserved = site.reserved();
    assert_eq!(reserved.len(), 1);
    let msg = site
        .run("bridge", &site.env("ADD", "again", &ctr), &conf)
        .err(999);
    assert_eq!(msg, "container veth name (\"eth0\") already exists");
    assert_eq!(site.reserved(), reserved);
    assert_eq!(host_veths(&site).len(), 1);
    site.run("bridge", &site.env("DEL", "again", &ctr), &conf)
        .ok();
    assert!(host_veths(&site).is_empty() && site.reserved().is_empty());
    // A bridge name taken by something that is not a bridge.
    site.host.ip(&[
        "link", "add", "notbr", "type", "veth", "peer", "name", "notbrp",
    ]);
    let c = bridge_conf(&site, "1.0.0", json!({"bridge": "notbr"}));
    let msg = site.run("bridge", &site.env("ADD", "x", &ctr), &c).err(999);
    assert_eq!(msg, "\"notbr\" already exists but is not a bridge");
    assert_eq!(ctr.link_names(), ["lo"]);
    // Invalid mtu and vlan.
    for (extra, want) in [
        (json!({"mtu": -5}), "invalid MTU -5"),
        (
            json!({"vlan": 5000}),
            "invalid VLAN ID 5000 (must be between 0 and 4094)",
        ),
        (
            json!({"vlanTrunk": [{"minID": 3}]}),
            "minID and maxID should be configured",
        ),
    ] {
        let c = bridge_conf(&site, "1.0.0", merged(json!({"bridge": "brbad"}), extra));
        let msg = site.run("bridge", &site.env("ADD", "x", &ctr), &c).err(7);
        assert!(msg.starts_with(want), "{msg}");
        assert!(!site.host.link_names().contains(&"brbad".to_string()));
    }
    // IPAM failure: the only address of a /30 is taken.
    let tiny = json!({"type": "host-local", "subnet": "10.9.9.0/30"});
    let c = bridge_conf(&site, "1.0.0", json!({"ipam": tiny}));
    let other = Netns::new("bbo");
    site.run("bridge", &site.env("ADD", "first", &other), &c)
        .ok();
    let msg = site
        .run("bridge", &site.env("ADD", "second", &ctr), &c)
        .err(999);
    assert!(
        msg.contains("no IP addresses available in range set"),
        "{msg}"
    );
    assert_eq!(ctr.link_names(), ["lo"]);
    assert_eq!(site.reserved(), ["10.9.9.2"]);
    assert_eq!(
        host_veths(&site)
            .iter()
            .filter(|n| n.starts_with("veth"))
            .count(),
        1
    );
    site.run("bridge", &site.env("DEL", "first", &other), &c)
        .ok();
}

#[test]
fn del_after_the_netns_is_gone_releases_addresses() {
    let site = Site::new("bg2");
    let ctr = Netns::new("bg2c");
    let conf = bridge_conf(&site, "1.0.0", json!({"ipMasq": true}));
    let env = site.env("ADD", "gone", &ctr);
    site.run("bridge", &env, &conf).ok();
    assert_eq!(site.reserved().len(), 1);
    assert_eq!(site.host.nat_rules(false).len(), 4);
    drop(ctr);
    site.run("bridge", &env.cmd("DEL"), &conf).ok();
    assert!(site.reserved().is_empty());
    // The reference leaks the masquerade chain here (it learns the addresses from the gone
    // interface); weft finds the jumps by the chain's name.
    assert!(
        site.host.nat_rules(false).is_empty(),
        "{:?}",
        site.host.nat_rules(false)
    );
    // The kernel destroys a dead namespace's veth pairs asynchronously.
    for _ in 0..100 {
        if host_veths(&site).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(host_veths(&site).is_empty());
    // An empty CNI_NETNS: IPAM only.
    let mut e = env.cmd("DEL");
    e.netns = String::new();
    site.run("bridge", &e, &conf).ok();
}

#[test]
fn vlan_configs_fail_like_the_reference_where_the_kernel_lacks_filtering() {
    let probe = Netns::new("bvp");
    let supported = probe
        .exec(&[
            "ip",
            "link",
            "add",
            "p0",
            "type",
            "bridge",
            "vlan_filtering",
            "1",
        ])
        .0;
    let site = Site::new("bv");
    let ctr = Netns::new("bvc");
    let conf = bridge_conf(&site, "1.0.0", json!({"vlan": 100, "ipam": {}}));
    let out = site.run("bridge", &site.env("ADD", "v", &ctr), &conf);
    if supported {
        out.ok();
        let (_, vl) = site.host.exec(&["bridge", "-j", "vlan", "show"]);
        assert!(vl.contains("\"vlan\":100"), "{vl}");
        site.run("bridge", &site.env("DEL", "v", &ctr), &conf).ok();
        return;
    }
    // The errno worded as Go words it, whatever libc weft was built with.
    let msg = out.err(999);
    assert!(
        msg.contains("br0") && msg.contains("operation not supported"),
        "{msg}"
    );
    let go = site.run(
        go_plugin("bridge").to_str().unwrap(),
        &Env {
            path: GO_DIR.into(),
            ..site.env("ADD", "v", &ctr)
        },
        &conf,
    );
    assert_ne!(go.code, 0, "{go:?}");
    assert_eq!(site.host.link_names(), ["lo"]);
    assert_eq!(ctr.link_names(), ["lo"]);
}

#[test]
fn status_and_gc_go_to_ipam() {
    let site = Site::new("bst");
    let ctr = Netns::new("bstc");
    let conf = bridge_conf(&site, "1.1.0", json!({}));
    site.run("bridge", &site.env("STATUS", "", &ctr), &conf)
        .ok();
    site.run("bridge", &site.env("ADD", "keep", &ctr), &conf)
        .ok();
    let ctr2 = Netns::new("bstd");
    let mut e2 = site.env("ADD", "drop", &ctr2);
    e2.ifname = "eth0".into();
    site.run("bridge", &e2, &conf).ok();
    assert_eq!(site.reserved().len(), 2);
    let mut gc: Value = serde_json::from_str(&conf).unwrap();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    let mut env = site.env("GC", "", &ctr);
    env.unset = vec![
        "CNI_CONTAINERID".into(),
        "CNI_NETNS".into(),
        "CNI_IFNAME".into(),
    ];
    site.run("bridge", &env, &gc.to_string()).ok();
    assert_eq!(site.reserved(), ["10.1.2.2"]);
    site.run("bridge", &site.env("DEL", "keep", &ctr), &conf)
        .ok();
    site.run("bridge", &e2.cmd("DEL"), &conf).ok();
}

#[test]
fn container_sysctls_follow_enabledad() {
    let site = Site::new("bd");
    for (enabledad, accept_dad) in [(false, "0"), (true, "1")] {
        let ctr = Netns::new("bdc");
        let conf = bridge_conf(
            &site,
            "1.0.0",
            json!({"enabledad": enabledad, "ipam": {"type": "host-local",
                   "ranges": [[{"subnet": "fd00:7::/64"}]]}}),
        );
        site.run("bridge", &site.env("ADD", "dad", &ctr), &conf)
            .ok();
        let sys = |k: &str| ctr.exec(&["sysctl", "-n", k]).1.trim().to_string();
        assert_eq!(sys("net.ipv6.conf.eth0.accept_dad"), accept_dad);
        assert_eq!(sys("net.ipv4.conf.eth0.arp_notify"), "1");
        if enabledad {
            assert_eq!(sys("net.ipv6.conf.eth0.enhanced_dad"), "1");
        }
        site.run("bridge", &site.env("DEL", "dad", &ctr), &conf)
            .ok();
    }
}

/// DEL answers once the pair is unregistered, before the kernel's clean-up that its forked
/// child sits out: as soon as the plugin has exited, its stdout and stderr are at end-of-file
/// (a runtime reading them to the end is not held up by the child), the veth and the bridge
/// port are gone and the address is released. Repeated, since the child outlives the plugin by
/// the kernel's RCU wait (milliseconds): a child holding the pipes would show on some rounds.
#[test]
fn del_answers_with_the_pair_gone_and_no_pipe_held() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let site = Site::new("bdp");
    let ctr = Netns::new("bdpc");
    let conf = bridge_conf(&site, "1.0.0", json!({}));
    for round in 0..10 {
        site.run("bridge", &site.env("ADD", "c1", &ctr), &conf).ok();
        let mut child = spawn_in(
            &site.host,
            &bin_dir().join("bridge"),
            &site.env("DEL", "c1", &ctr),
            &conf,
        );
        let status = child.wait().unwrap();
        assert!(status.success(), "round {round}: DEL exited {status}");
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        for (name, fd) in [("stdout", out.as_raw_fd()), ("stderr", err.as_raw_fd())] {
            // SAFETY: fcntl on a pipe descriptor this test owns.
            unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
            let mut buf = Vec::new();
            let r = if name == "stdout" {
                out.read_to_end(&mut buf)
            } else {
                err.read_to_end(&mut buf)
            };
            assert!(
                r.is_ok(),
                "round {round}: {name} still open after DEL exited: {r:?}"
            );
        }
        assert_eq!(host_veths(&site), Vec::<String>::new(), "round {round}");
        assert_eq!(
            site.host.ipj(&["link", "show", "master", "br0"]),
            json!([]),
            "round {round}"
        );
        assert_eq!(ctr.link_names(), ["lo"], "round {round}");
        assert_eq!(site.reserved(), Vec::<String>::new(), "round {round}");
    }
}

/// Keys only ADD needs, set to values ADD refuses; a runtime repeats DEL with them until it
/// succeeds, so DEL must look past them.
fn add_only_breakage() -> Vec<Value> {
    vec![
        json!({"mtu": 10}),
        json!({"mtu": 70000}),
        json!({"mtu": -1}),
        json!({"hairpinMode": true, "promiscMode": true}),
        json!({"vlanTrunk": [{"minID": 9, "maxID": 2}]}),
        json!({"runtimeConfig": {"mac": "zz:zz"}}),
    ]
}

#[test]
fn del_takes_back_everything_whatever_add_only_keys_say() {
    let site = Site::new("bd");
    let ctr = Netns::new("bdc");
    let made = json!({"ipMasq": true, "isGateway": true, "macspoofchk": true});
    let conf = bridge_conf(&site, "1.0.0", made.clone());
    site.run("bridge", &site.env("ADD", "d1", &ctr), &conf).ok();
    assert!(!site.host.nat_rules(false).is_empty());
    let mut broken = made;
    for extra in add_only_breakage() {
        broken = merged(broken, extra);
    }
    let broken = bridge_conf(&site, "1.0.0", broken);
    let out = site.run("bridge", &site.env("DEL", "d1", &ctr), &broken);
    out.ok();
    assert!(host_veths(&site).is_empty());
    assert_eq!(ctr.link_names(), ["lo"]);
    assert!(site.reserved().is_empty());
    assert!(site.host.nat_rules(false).is_empty());
    let (_, nft) = site.host.exec(&["nft", "list", "table", "bridge", "nat"]);
    assert!(!nft.contains("macspoofchk"), "{nft}");
    // Each on its own, with nothing to remove: weft and the reference both succeed.
    for extra in add_only_breakage() {
        let c = bridge_conf(&site, "1.0.0", extra.clone());
        let env = site.env("DEL", "d2", &ctr);
        let weft = site.run("bridge", &env, &c);
        assert_eq!(weft.code, 0, "{extra}: {weft:?}");
        let go = site.run(go_plugin("bridge").to_str().unwrap(), &env, &c);
        assert_eq!(go.code, 0, "reference, {extra}: {go:?}");
    }
    // A key of the wrong type, or a VLAN ID out of range: the reference fails the whole DEL;
    // weft's DEL never reads these keys.
    let c = bridge_conf(
        &site,
        "1.0.0",
        json!({"mtu": "x", "vlanTrunk": 3, "vlan": 5000}),
    );
    site.run("bridge", &site.env("DEL", "d2", &ctr), &c).ok();
}

#[test]
fn check_refuses_ips_naming_another_interface() {
    let site = Site::new("bi");
    let ctr = Netns::new("bic");
    let conf = bridge_conf(&site, "1.0.0", json!({}));
    let res = site.run("bridge", &site.env("ADD", "i1", &ctr), &conf).ok();
    let env = site.env("CHECK", "i1", &ctr);
    site.run("bridge", &env, &with_prev(&conf, &res)).ok();
    for bad in [99, 0] {
        let mut prev = res.clone();
        prev["ips"][0]["interface"] = json!(bad);
        let msg = site.run("bridge", &env, &with_prev(&conf, &prev)).err(999);
        assert!(msg.contains(&format!("names interface {bad}")), "{msg}");
    }
    site.run("bridge", &site.env("DEL", "i1", &ctr), &conf).ok();
}
