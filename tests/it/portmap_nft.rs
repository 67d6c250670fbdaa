//! portmap's nftables backend, black-box: real traffic and results passed through at every
//! version (the iptables tests run with `"backend": "nftables"`), the reference's table layout
//! after every step, its answers to bad input with nothing left behind, the backend chosen when
//! only nft can be used, and 50 containers set up and removed at once.

use crate::common::*;
use crate::portmap::{conf, nat, prev, standard, Side};
use serde_json::{json, Value};

#[test]
fn traffic_reaches_the_pod_through_its_host_ports_over_nftables() {
    crate::portmap::traffic_reaches_the_pod_through_its_host_ports_with("nftables");
}

#[test]
fn a_udp_client_that_sent_before_the_mapping_reaches_the_pod_at_once_over_nftables() {
    crate::portmap::a_udp_client_that_sent_before_the_mapping_reaches_the_pod_at_once_with(
        "nftables",
    );
}

#[test]
fn every_version_passes_the_result_through_over_nftables() {
    crate::portmap::every_version_passes_the_result_through_with("nftables");
}

/// `nft list table FAMILY cni_hostport` in `ns`; empty when there is no such table.
fn table(ns: &Netns, family: &str) -> String {
    let (ok, text) = ns.exec(&["nft", "list", "table", family, "cni_hostport"]);
    if !ok {
        assert!(text.contains("No such file or directory"), "{text}");
        return String::new();
    }
    text
}

/// The rules of both families' tables as (family, chain, comment), from `nft -j`.
fn rules(ns: &Netns) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    for family in ["ip", "ip6"] {
        let (ok, text) = ns.exec(&["nft", "-j", "list", "table", family, "cni_hostport"]);
        if !ok {
            continue;
        }
        let doc: Value = serde_json::from_str(&text).unwrap();
        for item in doc["nftables"].as_array().unwrap() {
            if let Some(r) = item.get("rule") {
                out.push((
                    family.to_string(),
                    r["chain"].as_str().unwrap().to_string(),
                    r["comment"].as_str().map(str::to_string),
                ));
            }
        }
    }
    out
}

/// How many rules of container `id` `rules` holds in `family`'s `chain`.
fn owned(rules: &[(String, String, Option<String>)], family: &str, chain: &str, id: &str) -> usize {
    rules
        .iter()
        .filter(|(f, c, m)| f == family && c == chain && m.as_deref() == Some(id))
        .count()
}

/// The IPv4 table after ADD of container ctr0 (10.1.2.3) with the standard mappings, as nft
/// prints the reference's layout.
const CTR0_V4: &str = r#"table ip cni_hostport {
	comment "CNI portmap plugin"
	chain hostports {
		tcp dport 8080 dnat to 10.1.2.3:80 comment "ctr0"
		udp dport 8081 dnat to 10.1.2.3:81 comment "ctr0"
		ip daddr 192.168.1.5 tcp dport 9090 dnat to 10.1.2.3:90 comment "ctr0"
		udp dport 9092 dnat to 10.1.2.3:92 comment "ctr0"
	}

	chain hostip_hostports {
	}

	chain hostports_all {
		jump hostip_hostports
		jump hostports
	}

	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump hostports_all
	}

	chain output {
		type nat hook output priority -100; policy accept;
		fib daddr type local jump hostports_all
	}

	chain masquerading {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.1.2.3 ip daddr 10.1.2.3 masquerade comment "ctr0"
		ip saddr 127.0.0.1 ip daddr 10.1.2.3 masquerade comment "ctr0"
	}
}
"#;

/// [`CTR0_V4`] with every container's rule gone: what the last DEL leaves.
fn skeleton(full: &str) -> String {
    full.lines()
        .filter(|l| !l.contains(" comment \""))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_references_layout_after_every_step() {
    let w = Side::new("pmnl");
    let ours = bin_dir().join("portmap");
    let addrs = [["10.1.2.3/24", "fd00::3/64"], ["10.1.2.4/24", "fd00::4/64"]];
    let c = |i: usize, extra: Value| {
        let extra = merged(json!({"backend": "nftables"}), extra);
        conf(
            "1.0.0",
            extra,
            standard(),
            prev("1.0.0", &w.ctrs[i], &addrs[i]),
        )
    };
    w.run(&ours, "ADD", 0, &c(0, json!({}))).ok();
    assert_eq!(table(&w.host, "ip"), CTR0_V4);
    let v6 = table(&w.host, "ip6");
    for line in [
        "\t\ttcp dport 8080 dnat to [fd00::3]:80 comment \"ctr0\"\n",
        "\t\tudp dport 8081 dnat to [fd00::3]:81 comment \"ctr0\"\n",
        "\t\tip6 daddr fd99::5 tcp dport 9091 dnat to [fd00::3]:91 comment \"ctr0\"\n",
        "\t\tip6 saddr fd00::3 ip6 daddr fd00::3 masquerade comment \"ctr0\"\n",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    ] {
        assert!(v6.contains(line), "{line:?} missing:\n{v6}");
    }
    // The IPv4-only host addresses stay out of IPv6, and there is no localhost rule there.
    assert!(
        !v6.contains("9090") && !v6.contains("9092") && !v6.contains("::1"),
        "{v6}"
    );
    // Nothing went to iptables.
    assert!(!nat(&w.host).contains("CNI-"), "{}", nat(&w.host));
    w.run(&ours, "CHECK", 0, &c(0, json!({}))).ok();

    // A second container's rules follow the first's; the shared chains keep one rule each.
    w.run(&ours, "ADD", 1, &c(1, json!({}))).ok();
    let r = rules(&w.host);
    for fam in ["ip", "ip6"] {
        for id in ["ctr0", "ctr1"] {
            let hostports = if fam == "ip" { 4 } else { 3 };
            let masq = if fam == "ip" { 2 } else { 1 };
            assert_eq!(
                owned(&r, fam, "hostports", id),
                hostports,
                "{fam} {id}: {r:?}"
            );
            assert_eq!(
                owned(&r, fam, "masquerading", id),
                masq,
                "{fam} {id}: {r:?}"
            );
        }
        for (chain, n) in [("prerouting", 1), ("output", 1), ("hostports_all", 2)] {
            let got = r
                .iter()
                .filter(|(f, ch, _)| f == fam && ch == chain)
                .count();
            assert_eq!(got, n, "{fam} {chain}: {r:?}");
        }
    }

    // The entry rules carry the conditions of the last ADD; snat off adds no masquerading.
    let cond = json!({"snat": false, "conditionsV4": ["ip", "saddr", "192.168.0.0/16"],
                      "conditionsV6": ["ip6", "saddr", "!=", "fd99::7"]});
    w.run(&ours, "ADD", 1, &c(1, cond.clone())).ok();
    let (v4, v6) = (table(&w.host, "ip"), table(&w.host, "ip6"));
    assert!(
        v4.contains("\t\tip saddr 192.168.0.0/16 fib daddr type local jump hostports_all\n"),
        "{v4}"
    );
    assert!(
        v6.contains("\t\tip6 saddr != fd99::7 fib daddr type local jump hostports_all\n"),
        "{v6}"
    );
    // As the reference does, the repeated ADD appended a second copy of ctr1's DNAT rules.
    let r = rules(&w.host);
    assert_eq!(owned(&r, "ip", "hostports", "ctr1"), 8, "{r:?}");
    assert_eq!(owned(&r, "ip", "masquerading", "ctr1"), 2, "{r:?}");
    w.run(&ours, "CHECK", 1, &c(1, cond.clone())).ok();

    // DEL removes all of ctr0 and nothing of ctr1; a second DEL has nothing to do.
    w.run(&ours, "DEL", 0, &c(0, json!({}))).ok();
    let r = rules(&w.host);
    assert!(
        !r.iter().any(|(_, _, m)| m.as_deref() == Some("ctr0")),
        "{r:?}"
    );
    assert_eq!(owned(&r, "ip6", "hostports", "ctr1"), 6, "{r:?}");
    w.run(&ours, "DEL", 0, &c(0, json!({}))).ok();
    let msg = w.run(&ours, "CHECK", 0, &c(0, json!({}))).err(999);
    assert_eq!(msg, "missing hostport rules in \"hostports\" chain");
    // CHECK counts the masquerading rules too (and wants none without snat).
    let (ok, out) = w.host.exec(&[
        "nft",
        "flush",
        "chain",
        "ip",
        "cni_hostport",
        "masquerading",
    ]);
    assert!(ok, "{out}");
    let msg = w.run(&ours, "CHECK", 1, &c(1, json!({}))).err(999);
    assert_eq!(msg, "missing hostport rules in \"masquerading\" chain");
    w.run(&ours, "CHECK", 1, &c(1, json!({"snat": false}))).ok();

    // The last DEL leaves the table and its shared chains, as the reference does. (The entry
    // rules keep the conditions ADD 1 gave them.)
    w.run(&ours, "DEL", 1, &c(1, json!({}))).ok();
    assert!(rules(&w.host).iter().all(|(_, _, m)| m.is_none()));
    let want = skeleton(CTR0_V4).replace("\t\tfib daddr", "\t\tip saddr 192.168.0.0/16 fib daddr");
    assert_eq!(table(&w.host, "ip"), want);
}

#[test]
fn bad_input_gets_the_references_answer_and_leaves_nothing_over_nftables() {
    let w = Side::new("pmnb");
    let ours = bin_dir().join("portmap");
    let pm = json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]);
    let dual = |i: usize| prev("1.0.0", &w.ctrs[i], &["10.1.2.3/24", "fd00::3/64"]);
    let prefix = "failed to parse config: ";
    // (extra keys, mappings, the message)
    let cases = [
        (
            json!({"backend": "nftables", "conditionsV4": ["-s", "192.168.0.0/16"]}),
            pm.clone(),
            "nftables backend was requested but configuration contains iptables-specific \
             options [conditionsV4]",
        ),
        (
            json!({"backend": "nftables", "externalSetMarkChain": "KUBE-MARK-MASQ",
                   "conditionsV6": ["!", "-d", "fd99::7"]}),
            pm.clone(),
            "nftables backend was requested but configuration contains iptables-specific \
             options [externalSetMarkChain conditionsV6]",
        ),
        (
            json!({"backend": "iptables", "conditionsV6": ["ip6", "saddr", "fd99::7"]}),
            pm.clone(),
            "iptables backend was requested but configuration contains nftables-specific \
             options [conditionsV6]",
        ),
        (
            json!({"backend": "nftables"}),
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp dport 1 accept"}]),
            "invalid protocol \"tcp dport 1 accept\" for the nftables backend",
        ),
        (
            json!({"backend": "nftables", "conditionsV4": ["ip saddr 1.2.3.4; add table ip x"]}),
            pm.clone(),
            "nftables condition \"ip saddr 1.2.3.4; add table ip x\" contains a line break, \
             ';' or '#'",
        ),
        (
            json!({"backend": "nftables"}),
            json!([{"hostPort": 0, "containerPort": 80, "protocol": "tcp"}]),
            "Invalid host port number: 0",
        ),
    ];
    for (extra, mappings, want) in cases {
        let c = conf("1.0.0", extra, mappings, dual(0));
        let msg = w.run(&ours, "ADD", 0, &c).err(999);
        assert_eq!(msg, format!("{prefix}{want}"));
        // CHECK gives the same error without the prefix, as the reference's does.
        let msg = w.run(&ours, "CHECK", 0, &c).err(999);
        assert_eq!(msg, want);
        let (ok, ruleset) = w.host.exec(&["nft", "list", "ruleset"]);
        assert!(ok && !ruleset.contains("cni_hostport"), "{want}: {ruleset}");
        assert!(!nat(&w.host).contains("CNI-"), "{want}: {}", nat(&w.host));
    }

    // Container 1 is set up; then container 0's IPv6 half is refused by nft (its conditions
    // are no nftables expression): its IPv4 rules do not stay, and nothing of container 1 moved.
    let good = conf("1.0.0", json!({"backend": "nftables"}), pm.clone(), dual(1));
    w.run(&ours, "ADD", 1, &good).ok();
    let before = (table(&w.host, "ip"), table(&w.host, "ip6"));
    let bad = conf(
        "1.0.0",
        json!({"backend": "nftables", "conditionsV6": ["meta", "nosuchkey", "7"]}),
        pm.clone(),
        dual(0),
    );
    let msg = w.run(&ours, "ADD", 0, &bad).err(999);
    assert!(
        msg.starts_with("unable to set up nftables rules for port mappings: "),
        "{msg}"
    );
    assert!(msg.contains("nosuchkey"), "{msg}");
    assert_eq!((table(&w.host, "ip"), table(&w.host, "ip6")), before);
    let r = rules(&w.host);
    assert!(
        !r.iter().any(|(_, _, m)| m.as_deref() == Some("ctr0")),
        "{r:?}"
    );

    // DEL of a container that has nothing is success, and so is DEL of a config ADD refused.
    w.run(&ours, "DEL", 0, &bad).ok();
    w.run(&ours, "DEL", 1, &good).ok();
    assert!(rules(&w.host).iter().all(|(_, _, m)| m.is_none()));
}

/// Where iptables cannot be used but nft can, a config without `backend` gets nftables, as in
/// the reference; its DEL finds the rules the same way.
#[test]
fn without_iptables_an_absent_backend_is_nftables() {
    let w = Side::new("pmnd");
    let tools = TempDir::new("pmnd");
    for prog in ["ip", "nft"] {
        let found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .map(|d| std::path::Path::new(d).join(prog))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{prog} not found"));
        std::os::unix::fs::symlink(found, tools.path().join(prog)).unwrap();
    }
    let path = tools.path().display().to_string();
    let c = conf(
        "1.0.0",
        json!({}),
        standard(),
        prev("1.0.0", &w.ctrs[0], &["10.1.2.3/24"]),
    );
    let run = |cmd: &str| {
        let mut env = Env::new(cmd, "ctr0", &w.ctrs[0].path());
        env.extra.push(("PATH".into(), path.clone()));
        run_in(&w.host, &bin_dir().join("portmap"), &env, &c)
    };
    run("ADD").ok();
    assert_eq!(table(&w.host, "ip"), CTR0_V4);
    run("CHECK").ok();
    run("DEL").ok();
    assert_eq!(table(&w.host, "ip"), skeleton(CTR0_V4));
    // Where iptables works, the same config goes to iptables.
    let env = Env::new("ADD", "ctr0", &w.ctrs[0].path());
    run_in(&w.host, &bin_dir().join("portmap"), &env, &c).ok();
    assert!(nat(&w.host).contains("CNI-DN-"), "{}", nat(&w.host));
    assert_eq!(table(&w.host, "ip"), skeleton(CTR0_V4));
    run_in(&w.host, &bin_dir().join("portmap"), &env.cmd("DEL"), &c).ok();
    assert!(!nat(&w.host).contains("CNI-DN-"), "{}", nat(&w.host));
}

#[test]
fn fifty_containers_set_up_at_once_then_none_left() {
    let w = Side::new("pmnc");
    let ours = bin_dir().join("portmap");
    let confs: Vec<String> = (0..50)
        .map(|i| {
            let p = json!({"cniVersion": "1.0.0",
                "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
                "ips": [{"interface": 0, "address": format!("10.1.0.{}/16", i + 2)},
                        {"interface": 0, "address": format!("fd00::{:x}/64", i + 2)}]});
            let pm = json!([{"hostPort": 10000 + i, "containerPort": 80, "protocol": "tcp"}]);
            conf("1.0.0", json!({"backend": "nftables"}), pm, p)
        })
        .collect();
    // Every container's `cmd`, all in flight at once; each must succeed.
    let run_all = |cmd: &str| {
        let children: Vec<_> = (0..50)
            .map(|i| {
                let env = Env::new(cmd, &format!("c{i}"), &w.ctrs[0].path());
                spawn_in(&w.host, &ours, &env, &confs[i])
            })
            .collect();
        for c in children {
            finish(c).ok();
        }
    };
    run_all("ADD");
    let r = rules(&w.host);
    for i in 0..50 {
        let id = format!("c{i}");
        for (fam, chain, n) in [
            ("ip", "hostports", 1),
            ("ip", "masquerading", 2),
            ("ip6", "hostports", 1),
            ("ip6", "masquerading", 1),
        ] {
            assert_eq!(owned(&r, fam, chain, &id), n, "{id} {fam} {chain}");
        }
    }
    for fam in ["ip", "ip6"] {
        for (chain, n) in [("prerouting", 1), ("output", 1), ("hostports_all", 2)] {
            let got = r
                .iter()
                .filter(|(f, ch, _)| f == fam && ch == chain)
                .count();
            assert_eq!(got, n, "{fam} {chain}: however many ADDs raced for it");
        }
    }
    run_all("DEL");
    let r = rules(&w.host);
    assert!(r.iter().all(|(_, _, m)| m.is_none()), "{r:?}");
    assert_eq!(r.len(), 8, "the shared rules stay: {r:?}");
}
