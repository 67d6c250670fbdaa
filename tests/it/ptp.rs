//! The ptp plugin against the real kernel: every cniVersion, routes on both ends as the
//! reference sets them, DNS rules, reachability of the host and of other containers.

use crate::common::*;
use serde_json::{json, Value};

fn ptp_conf(site: &Site, v: &str, extra: Value) -> String {
    site.conf(
        "ptp",
        v,
        merged(json!({"ipMasq": true, "mtu": 5000}), extra),
    )
}

fn ptp_env(site: &Site, cmd: &str, cid: &str, ctr: &Netns) -> Env {
    let mut e = site.env(cmd, cid, ctr);
    e.ifname = "ptp0".into();
    e
}

fn routes(ns: &Netns, family: &str) -> Vec<String> {
    let mut v: Vec<String> = ns
        .ipj(&[family, "route", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut s = r["dst"].as_str().unwrap().to_string();
            if let Some(g) = r["gateway"].as_str() {
                s += &format!(" via {g}");
            }
            s += &format!(" dev {}", r["dev"].as_str().unwrap());
            if let Some(sc) = r["scope"].as_str() {
                s += &format!(" scope {sc}");
            }
            if let Some(src) = r["prefsrc"].as_str() {
                s += &format!(" src {src}");
            }
            s
        })
        .collect();
    v.sort();
    v
}

#[test]
fn add_check_del_at_every_version() {
    for v in VERSIONS {
        let site = Site::new("ph");
        let ctr = Netns::new("pc");
        let conf = ptp_conf(
            &site,
            v,
            json!({"dns": {"nameservers": ["10.1.2.123"]},
            "ipam": {"type": "host-local", "subnet": "10.1.2.0/24",
                     "routes": [{"dst": "0.0.0.0/0"}]}}),
        );
        if v == "1.1.0" {
            site.run("ptp", &ptp_env(&site, "STATUS", "", &ctr), &conf)
                .ok();
        }
        let res = site
            .run("ptp", &ptp_env(&site, "ADD", "p1", &ctr), &conf)
            .ok();
        let ptp0 = &ctr.ipj(&["link", "show", "ptp0"])[0];
        assert_eq!(ptp0["mtu"], 5000);
        let host_links: Vec<String> = site
            .host
            .link_names()
            .into_iter()
            .filter(|n| n != "lo")
            .collect();
        assert_eq!(host_links.len(), 1);
        let hv = &site.host.ipj(&["link", "show", &host_links[0]])[0];
        assert_eq!(hv["mtu"], 5000);
        if v >= "0.3.0" {
            let ifs = res["interfaces"].as_array().unwrap();
            assert_eq!(ifs.len(), 2);
            assert_eq!(ifs[0]["name"], host_links[0].as_str());
            assert_eq!(ifs[0]["mac"], hv["address"]);
            assert!(ifs[0].get("sandbox").is_none());
            assert_eq!(ifs[1]["name"], "ptp0");
            assert_eq!(ifs[1]["mac"], ptp0["address"]);
            assert_eq!(ifs[1]["sandbox"], ctr.path());
            assert_eq!(res["ips"][0]["interface"], 1);
            assert_eq!(res["dns"]["nameservers"], json!(["10.1.2.123"]));
        }
        assert_eq!(
            routes(&ctr, "-4"),
            [
                "10.1.2.0/24 via 10.1.2.1 dev ptp0 src 10.1.2.2",
                "10.1.2.1 dev ptp0 scope link src 10.1.2.2",
                "default via 10.1.2.1 dev ptp0",
            ]
        );
        assert_eq!(
            routes(&site.host, "-4"),
            [format!("10.1.2.2 dev {} scope host", host_links[0])]
        );
        let host_addrs = site
            .host
            .ipj(&["-4", "addr", "show", "dev", &host_links[0]]);
        assert_eq!(host_addrs[0]["addr_info"][0]["local"], "10.1.2.1");
        assert_eq!(host_addrs[0]["addr_info"][0]["prefixlen"], 32);
        assert!(ctr.ping("10.1.2.1"), "container -> host end");
        assert!(site.host.ping("10.1.2.2"), "host -> container");
        assert!(site
            .host
            .nat_rules(false)
            .iter()
            .any(|r| r.contains("-s 10.1.2.2/32")));
        let check = site.run(
            "ptp",
            &ptp_env(&site, "CHECK", "p1", &ctr),
            &with_prev(&conf, &res),
        );
        if v >= "0.4.0" {
            check.ok();
        } else {
            assert_eq!(check.err(1), "config version does not allow CHECK");
        }
        site.run("ptp", &ptp_env(&site, "DEL", "p1", &ctr), &conf)
            .ok();
        assert_eq!(ctr.link_names(), ["lo"]);
        assert_eq!(site.host.link_names(), ["lo"]);
        assert!(site.reserved().is_empty());
        assert!(site.host.nat_rules(false).is_empty());
        site.run("ptp", &ptp_env(&site, "DEL", "p1", &ctr), &conf)
            .ok();
    }
}

#[test]
fn dual_stack_with_routes_reaches_the_host_on_both_families() {
    for v in ["0.2.0", "1.0.0"] {
        let site = Site::new("pd");
        let ctr = Netns::new("pdc");
        let conf = ptp_conf(
            &site,
            v,
            json!({"ipam": {"type": "host-local",
            "ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8:1::/66"}]],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16"}, {"dst": "1.2.3.4/32"}]}}),
        );
        let res = site
            .run("ptp", &ptp_env(&site, "ADD", "d", &ctr), &conf)
            .ok();
        if v == "1.0.0" {
            assert_eq!(res["ips"].as_array().unwrap().len(), 2);
            site.run(
                "ptp",
                &ptp_env(&site, "CHECK", "d", &ctr),
                &with_prev(&conf, &res),
            )
            .ok();
        } else {
            assert!(res["ip6"]["ip"]
                .as_str()
                .unwrap()
                .starts_with("2001:db8:1::"));
        }
        assert!(ctr.ping("10.1.2.1"));
        // The host end's IPv6 gateway runs DAD first (the reference leaves it on): retry.
        let ok6 = (0..30).any(|_| {
            ctr.ping("2001:db8:1::1") || {
                std::thread::sleep(std::time::Duration::from_millis(100));
                false
            }
        });
        assert!(ok6, "container -> host over IPv6");
        site.run("ptp", &ptp_env(&site, "DEL", "d", &ctr), &conf)
            .ok();
        assert!(site.reserved().is_empty());
    }
}

#[test]
fn two_ptp_containers_reach_each_other_through_the_host() {
    let site = Site::new("pp");
    let (a, b) = (Netns::new("ppa"), Netns::new("ppb"));
    let conf = ptp_conf(&site, "1.0.0", json!({}));
    site.run("ptp", &ptp_env(&site, "ADD", "a", &a), &conf).ok();
    site.run("ptp", &ptp_env(&site, "ADD", "b", &b), &conf).ok();
    assert_eq!(
        site.host
            .exec(&["sysctl", "-n", "net.ipv4.ip_forward"])
            .1
            .trim(),
        "1"
    );
    assert!(a.ping("10.1.2.3") && b.ping("10.1.2.2"));
    site.run("ptp", &ptp_env(&site, "DEL", "a", &a), &conf).ok();
    site.run("ptp", &ptp_env(&site, "DEL", "b", &b), &conf).ok();
}

#[test]
fn dns_from_config_replaces_ipam_dns_when_any_field_is_set() {
    let site = Site::new("pdns");
    let resolv = site.data.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 192.0.2.9\nsearch a.example\n").unwrap();
    let ipam = json!({"type": "host-local", "subnet": "10.1.2.0/24",
                      "resolvConf": resolv.display().to_string()});
    for (dns, want) in [
        (
            Value::Null,
            json!({"nameservers": ["192.0.2.9"], "search": ["a.example"]}),
        ),
        (
            json!({"domain": "x.example"}),
            json!({"domain": "x.example"}),
        ),
        (json!({"nameservers": [], "search": []}), Value::Null),
    ] {
        let ctr = Netns::new("pdnsc");
        let mut extra = json!({"ipam": ipam});
        if !dns.is_null() {
            extra["dns"] = dns;
        }
        let conf = ptp_conf(&site, "1.0.0", extra);
        let res = site
            .run("ptp", &ptp_env(&site, "ADD", "n", &ctr), &conf)
            .ok();
        assert_eq!(res.get("dns").cloned().unwrap_or(Value::Null), want);
        site.run("ptp", &ptp_env(&site, "DEL", "n", &ctr), &conf)
            .ok();
    }
}

#[test]
fn failures_roll_back_and_del_tolerates_missing_state() {
    let site = Site::new("pf");
    let ctr = Netns::new("pfc");
    let conf = ptp_conf(&site, "1.0.0", json!({}));
    ctr.ip(&[
        "link", "add", "ptp0", "type", "veth", "peer", "name", "ptp0p",
    ]);
    let msg = site
        .run("ptp", &ptp_env(&site, "ADD", "f", &ctr), &conf)
        .err(999);
    assert_eq!(msg, "container veth name (\"ptp0\") already exists");
    assert!(site.reserved().is_empty());
    assert!(site.host.nat_rules(false).is_empty());
    assert_eq!(site.host.link_names(), ["lo"]);
    let mut env = ptp_env(&site, "ADD", "f", &ctr);
    env.netns = "/run/netns/weft-no-such-netns".into();
    assert!(site
        .run("ptp", &env, &conf)
        .err(999)
        .starts_with("failed to open netns"));
    site.run("ptp", &env.cmd("DEL"), &conf).ok();
    let no_ipam = site.conf("ptp", "1.0.0", json!({"ipam": {}}));
    let msg = site
        .run("ptp", &ptp_env(&site, "ADD", "f", &ctr), &no_ipam)
        .err(999);
    assert_eq!(msg, "no plugin name provided");
    site.run("ptp", &ptp_env(&site, "DEL", "never", &ctr), &conf)
        .ok();
    // IPAM failure (the only address of a /30 is taken): no veth pair is left, and the first
    // pod's reservation stays. (The DEL above took the pre-made ptp0.)
    assert_eq!(ctr.link_names(), ["lo"]);
    let tiny = ptp_conf(
        &site,
        "1.0.0",
        json!({"ipam": {"type": "host-local", "subnet": "10.9.9.0/30"}}),
    );
    let other = Netns::new("pfo");
    site.run("ptp", &ptp_env(&site, "ADD", "first", &other), &tiny)
        .ok();
    let msg = site
        .run("ptp", &ptp_env(&site, "ADD", "second", &ctr), &tiny)
        .err(999);
    assert!(
        msg.contains("no IP addresses available in range set"),
        "{msg}"
    );
    assert_eq!(ctr.link_names(), ["lo"]);
    assert_eq!(site.reserved(), ["10.9.9.2"]);
    assert_eq!(
        site.host.link_names().len(),
        2,
        "lo and the first pod's veth"
    );
    site.run("ptp", &ptp_env(&site, "DEL", "first", &other), &tiny)
        .ok();
    assert!(site.reserved().is_empty());
    assert_eq!(site.host.link_names(), ["lo"]);
}

#[test]
fn del_takes_back_everything_whatever_the_mtu_says() {
    let site = Site::new("pd");
    let ctr = Netns::new("pdc");
    let conf = ptp_conf(&site, "1.0.0", json!({"ipMasq": true}));
    site.run("ptp", &ptp_env(&site, "ADD", "d1", &ctr), &conf)
        .ok();
    assert!(!site.host.nat_rules(false).is_empty());
    for mtu in [json!(10), json!(70000), json!("x")] {
        let broken = ptp_conf(&site, "1.0.0", json!({"ipMasq": true, "mtu": mtu}));
        site.run("ptp", &ptp_env(&site, "DEL", "d1", &ctr), &broken)
            .ok();
        assert_eq!(site.host.link_names(), ["lo"]);
        assert_eq!(ctr.link_names(), ["lo"]);
        assert!(site.reserved().is_empty());
        assert!(site.host.nat_rules(false).is_empty());
    }
    let env = ptp_env(&site, "DEL", "d1", &ctr);
    let c = ptp_conf(&site, "1.0.0", json!({"mtu": 10}));
    let go = site.run(go_plugin("ptp").to_str().unwrap(), &env, &c);
    assert_eq!(go.code, 0, "the reference agrees: {go:?}");
}
