//! The firewall helpers against real iptables/ip6tables/nft, each test in its own network
//! namespace: every call goes through `NetNs::run` and every check through `ip netns exec`, so
//! the host's own rules are never read or written.

use crate::common::Netns;
use ipnet::IpNet;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use weft::sys::firewall::{
    masq, setup_ip_masq, spoofcheck, teardown_ip_masq, Iptables, MasqBackend,
};
use weft::sys::netns::NetNs;

const NET: &str = "mynet";
const CID: &str = "dummy";

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Runs a program inside the namespace and returns stdout; fails the test if it fails.
fn exec_in(ns: &Netns, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn nat_rules(ns: &Netns, v6: bool) -> Vec<String> {
    let prog = if v6 { "ip6tables" } else { "iptables" };
    exec_in(ns, &[prog, "-t", "nat", "-S"])
        .lines()
        .map(str::to_string)
        .collect()
}

const POLICIES: [&str; 4] = [
    "-P PREROUTING ACCEPT",
    "-P INPUT ACCEPT",
    "-P OUTPUT ACCEPT",
    "-P POSTROUTING ACCEPT",
];

/// First `n` hex digits of sha512(input), computed by coreutils rather than by the code under test.
fn sha512_hex(input: &str, n: usize) -> String {
    let mut child = Command::new("sha512sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha512sum");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..n].to_string()
}

/// The `nft -j list ruleset` objects of one kind (`"table"`, `"chain"`, `"rule"`) in one table.
fn nft_objects(ns: &Netns, kind: &str, family: &str, table: &str) -> Vec<Value> {
    let j: Value = serde_json::from_str(&exec_in(ns, &["nft", "-j", "list", "ruleset"])).unwrap();
    j["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get(kind))
        .filter(|o| {
            o["family"] == family && o["table"].as_str().or(o["name"].as_str()) == Some(table)
        })
        .cloned()
        .collect()
}

fn rules_in(ns: &Netns, family: &str, table: &str, chain: &str) -> Vec<Value> {
    nft_objects(ns, "rule", family, table)
        .into_iter()
        .filter(|r| r["chain"] == chain)
        .collect()
}

#[test]
fn chain_name_is_cni_and_24_hex_of_sha512_of_net_and_id() {
    let expected = format!("CNI-{}", sha512_hex(&format!("{NET}{CID}"), 24));
    assert_eq!(masq::chain_name(NET, CID), expected);
    assert_eq!(expected.len(), 28);
}

#[test]
fn iptables_v4_exact_rules_idempotent_and_torn_down() {
    let ns = Netns::new("fw");
    let n = NetNs::open(ns.path()).unwrap();
    let ips = [net("10.1.2.3/24")];
    let chain = format!("CNI-{}", sha512_hex(&format!("{NET}{CID}"), 24));
    let comment = r#""name: \"mynet\" id: \"dummy\"""#;

    for _ in 0..2 {
        n.run(|| setup_ip_masq(Some(MasqBackend::Iptables), &ips, NET, "eth0", CID))
            .unwrap();
    }
    let mut expected: Vec<String> = POLICIES.iter().map(|s| s.to_string()).collect();
    expected.extend([
        format!("-N {chain}"),
        format!("-A POSTROUTING -s 10.1.2.3/32 -m comment --comment {comment} -j {chain}"),
        format!("-A {chain} -d 10.1.2.0/24 -m comment --comment {comment} -j ACCEPT"),
        format!("-A {chain} ! -d 224.0.0.0/4 -m comment --comment {comment} -j MASQUERADE"),
    ]);
    assert_eq!(nat_rules(&ns, false), expected);
    assert_eq!(
        nat_rules(&ns, true),
        POLICIES,
        "v4 setup must not touch ip6tables"
    );

    n.run(|| teardown_ip_masq(&ips, NET, "eth0", CID)).unwrap();
    assert_eq!(nat_rules(&ns, false), POLICIES);
    // Repeated DEL.
    n.run(|| teardown_ip_masq(&ips, NET, "eth0", CID)).unwrap();
}

#[test]
fn iptables_v6_exact_rules_and_torn_down() {
    let ns = Netns::new("fw");
    let n = NetNs::open(ns.path()).unwrap();
    let ips = [net("2001:db8:1::5/64")];
    let chain = masq::chain_name(NET, CID);
    let comment = r#""name: \"mynet\" id: \"dummy\"""#;

    for _ in 0..2 {
        n.run(|| setup_ip_masq(Some(MasqBackend::Iptables), &ips, NET, "eth0", CID))
            .unwrap();
    }
    let mut expected: Vec<String> = POLICIES.iter().map(|s| s.to_string()).collect();
    expected.extend([
        format!("-N {chain}"),
        format!("-A POSTROUTING -s 2001:db8:1::5/128 -m comment --comment {comment} -j {chain}"),
        format!("-A {chain} -d 2001:db8:1::/64 -m comment --comment {comment} -j ACCEPT"),
        format!("-A {chain} ! -d ff00::/8 -m comment --comment {comment} -j MASQUERADE"),
    ]);
    assert_eq!(nat_rules(&ns, true), expected);
    assert_eq!(nat_rules(&ns, false), POLICIES);

    n.run(|| teardown_ip_masq(&ips, NET, "eth0", CID)).unwrap();
    assert_eq!(nat_rules(&ns, true), POLICIES);
}

#[test]
fn iptables_is_the_default_backend_and_two_addresses_of_a_family_share_the_chain() {
    let ns = Netns::new("fw");
    let n = NetNs::open(ns.path()).unwrap();
    let ips = [
        net("10.1.2.3/24"),
        net("10.9.0.7/16"),
        net("2001:db8:1::5/64"),
    ];
    let chain = masq::chain_name(NET, CID);
    n.run(|| setup_ip_masq(None, &ips, NET, "eth0", CID))
        .unwrap();
    let v4 = nat_rules(&ns, false);
    let jumps: Vec<_> = v4
        .iter()
        .filter(|l| l.starts_with("-A POSTROUTING") && l.ends_with(&format!("-j {chain}")))
        .collect();
    assert_eq!(jumps.len(), 2, "{v4:#?}");
    assert_eq!(
        v4.iter()
            .filter(|l| l.starts_with(&format!("-A {chain} ")))
            .count(),
        3,
        "one ACCEPT per subnet and one MASQUERADE: {v4:#?}"
    );
    assert_eq!(nat_rules(&ns, true).len(), POLICIES.len() + 4);

    // Every jump goes before the shared chain is deleted, so this is not an EBUSY error.
    n.run(|| teardown_ip_masq(&ips, NET, "eth0", CID)).unwrap();
    assert_eq!(nat_rules(&ns, false), POLICIES);
    assert_eq!(nat_rules(&ns, true), POLICIES);
}

#[test]
fn iptables_teardown_removes_the_legacy_cidr_jump() {
    let ns = Netns::new("fw");
    let n = NetNs::open(ns.path()).unwrap();
    let chain = masq::chain_name(NET, CID);
    let comment = masq::iptables_comment(NET, CID);
    // What releases before the single-IP source fix installed.
    exec_in(&ns, &["iptables", "-t", "nat", "-N", &chain]);
    exec_in(
        &ns,
        &[
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            "10.1.2.0/24",
            "-j",
            &chain,
            "-m",
            "comment",
            "--comment",
            &comment,
        ],
    );
    n.run(|| teardown_ip_masq(&[net("10.1.2.3/24")], NET, "eth0", CID))
        .unwrap();
    assert_eq!(nat_rules(&ns, false), POLICIES);
}

#[test]
fn teardown_of_what_was_never_set_up_succeeds() {
    let ns = Netns::new("fw");
    let n = NetNs::open(ns.path()).unwrap();
    let ips = [net("10.1.2.3/24"), net("2001:db8:1::5/64")];
    n.run(|| teardown_ip_masq(&ips, NET, "eth0", CID)).unwrap();
    n.run(|| teardown_ip_masq(&[], NET, "eth0", CID)).unwrap();
    n.run(|| spoofcheck::teardown(CID, "eth0")).unwrap();
    assert_eq!(nat_rules(&ns, false), POLICIES);
}

#[test]
fn unknown_backend_is_an_error() {
    let ns = Netns::new("fw");
    let n = NetNs::open(ns.path()).unwrap();
    let e = n
        .run(|| {
            MasqBackend::parse(Some("ipfw"))
                .and_then(|b| setup_ip_masq(b, &[net("10.1.2.3/24")], NET, "eth0", CID))
        })
        .unwrap_err();
    assert_eq!(e.to_string(), r#"unknown ipmasq backend "ipfw""#);
}

/// The nftables comment as the reference builds it, hashed here by sha512sum.
fn nft_comment(net_name: &str, ifname: &str, cid: &str) -> String {
    format!(
        "{}-{}, net: {net_name}, if: {ifname}, id: {cid}",
        sha512_hex(net_name, 16),
        sha512_hex(&format!("{ifname}:{cid}"), 16)
    )
}

#[test]
fn nftables_exact_rules_idempotent_and_torn_down_by_hash() {
    let ns = Netns::new("fw");
    let n = NetNs::open(ns.path()).unwrap();
    let ips = [net("10.1.2.3/24"), net("2001:db8:1::5/64")];
    let comment = nft_comment(NET, "eth0", CID);
    assert_eq!(masq::nft_comment(NET, "eth0", CID), comment);
    for _ in 0..2 {
        n.run(|| setup_ip_masq(Some(MasqBackend::Nftables), &ips, NET, "eth0", CID))
            .unwrap();
    }
    // Another attachment on the same network, to see that teardown leaves it alone.
    n.run(|| {
        setup_ip_masq(
            Some(MasqBackend::Nftables),
            &[net("10.1.2.4/24")],
            NET,
            "eth0",
            "other",
        )
    })
    .unwrap();

    let tables = nft_objects(&ns, "table", "inet", "cni_plugins_masquerade");
    assert_eq!(tables.len(), 1);
    let chains = nft_objects(&ns, "chain", "inet", "cni_plugins_masquerade");
    let post = chains.iter().find(|c| c["name"] == "postrouting").unwrap();
    assert_eq!(post["type"], "nat");
    assert_eq!(post["hook"], "postrouting");
    assert_eq!(post["prio"], 100);
    assert!(chains
        .iter()
        .any(|c| c["name"] == "masq_checks" && c.get("hook").is_none()));
    assert_eq!(chains.len(), 2);

    let table_text = exec_in(
        &ns,
        &["nft", "list", "table", "inet", "cni_plugins_masquerade"],
    );
    let lines: Vec<&str> = table_text.lines().map(str::trim).collect();
    let other = nft_comment(NET, "eth0", "other");
    for want in [
        format!(r#"ip saddr 10.1.2.3 ip daddr != 10.1.2.0/24 masquerade comment "{comment}""#),
        format!(
            r#"ip6 saddr 2001:db8:1::5 ip6 daddr != 2001:db8:1::/64 masquerade comment "{comment}""#
        ),
        format!(r#"ip saddr 10.1.2.4 ip daddr != 10.1.2.0/24 masquerade comment "{other}""#),
        "ip daddr 224.0.0.0/4 return".to_string(),
        "ip6 daddr ff00::/8 return".to_string(),
        "goto masq_checks".to_string(),
    ] {
        assert_eq!(
            lines.iter().filter(|l| **l == want).count(),
            1,
            "want exactly one `{want}` in:\n{table_text}"
        );
    }
    assert_eq!(
        rules_in(&ns, "inet", "cni_plugins_masquerade", "postrouting").len(),
        3
    );
    assert_eq!(
        rules_in(&ns, "inet", "cni_plugins_masquerade", "masq_checks").len(),
        3
    );

    // Teardown needs no addresses: the comment's hash finds the rules.
    n.run(|| teardown_ip_masq(&[], NET, "eth0", CID)).unwrap();
    let left = rules_in(&ns, "inet", "cni_plugins_masquerade", "masq_checks");
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["comment"], other.as_str());
    n.run(|| teardown_ip_masq(&[net("10.1.2.4/24")], NET, "eth0", "other"))
        .unwrap();
    assert!(rules_in(&ns, "inet", "cni_plugins_masquerade", "masq_checks").is_empty());
    assert_eq!(
        nat_rules(&ns, false),
        POLICIES,
        "nftables backend must not touch iptables"
    );
}

#[test]
fn spoofcheck_rules_as_the_reference_test_expects_and_gone_after_teardown() {
    let ns = Netns::new("fw");
    let n = NetNs::open(ns.path()).unwrap();
    let (cid, ifname) = ("dummy-0", "eth0");
    let iface = "cni-br-iface-dummy-0-eth0";
    let mac = "cni-br-iface-dummy-0-eth0-mac";
    n.run(|| spoofcheck::setup(cid, ifname, "veth0123abcd", "02:42:0a:01:02:03"))
        .unwrap();

    let chains = nft_objects(&ns, "chain", "bridge", "nat");
    let base = chains.iter().find(|c| c["name"] == "PREROUTING").unwrap();
    assert_eq!(
        (&base["type"], &base["hook"], &base["prio"], &base["policy"]),
        (
            &"filter".into(),
            &"prerouting".into(),
            &(-300).into(),
            &"accept".into()
        )
    );
    let comment = "macspoofchk-dummy-0-eth0";
    for (chain, count) in [("PREROUTING", 1), (iface, 1), (mac, 2)] {
        let rules = rules_in(&ns, "bridge", "nat", chain);
        assert_eq!(rules.len(), count, "{chain}: {rules:#?}");
        assert!(rules.iter().all(|r| r["comment"] == comment), "{rules:#?}");
    }
    let text = exec_in(&ns, &["nft", "list", "table", "bridge", "nat"]);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for want in [
        format!(r#"iifname "veth0123abcd" jump {iface} comment "{comment}""#),
        format!(r#"jump {mac} comment "{comment}""#),
        format!(r#"ether saddr 02:42:0a:01:02:03 return comment "{comment}""#),
        format!(r#"drop comment "{comment}""#),
    ] {
        assert!(lines.contains(&want.as_str()), "want `{want}` in:\n{text}");
    }

    // A second attachment, to see that teardown leaves it and the base chain alone.
    n.run(|| spoofcheck::setup("dummy-1", ifname, "veth4567ef01", "02:42:0a:01:02:04"))
        .unwrap();
    n.run(|| spoofcheck::teardown(cid, ifname)).unwrap();
    let names: Vec<Value> = nft_objects(&ns, "chain", "bridge", "nat")
        .into_iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(
        names,
        [
            "PREROUTING",
            "cni-br-iface-dummy-1-eth0",
            "cni-br-iface-dummy-1-eth0-mac"
        ]
    );
    let pre = rules_in(&ns, "bridge", "nat", "PREROUTING");
    assert_eq!(pre.len(), 1);
    assert_eq!(pre[0]["comment"], "macspoofchk-dummy-1-eth0");
    assert!(nft_objects(&ns, "rule", "bridge", "nat")
        .iter()
        .all(|r| r["comment"] != comment));

    n.run(|| spoofcheck::teardown(cid, ifname)).unwrap();
    n.run(|| spoofcheck::teardown("dummy-1", ifname)).unwrap();
    let names: Vec<Value> = nft_objects(&ns, "chain", "bridge", "nat")
        .into_iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, ["PREROUTING"]);
    assert!(nft_objects(&ns, "rule", "bridge", "nat").is_empty());
}

/// Runs `f(i)` for i in 0..count, all at once, each on its own thread inside `n`.
fn all_at_once(n: &NetNs, count: usize, f: impl Fn(usize) -> anyhow::Result<()> + Sync) {
    let barrier = std::sync::Barrier::new(count);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..count)
            .map(|i| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || {
                    n.run(|| {
                        barrier.wait();
                        f(i)
                    })
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            h.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("call {i}: {e:#}"));
        }
    });
}

#[test]
fn fifty_concurrent_iptables_setups_all_land_and_all_go() {
    let ns = Netns::new("fw");
    let n = NetNs::open(ns.path()).unwrap();
    let ip = |i: usize| net(&format!("10.3.{}.{}/16", i / 200, i % 200 + 2));
    let cid = |i: usize| format!("ctr{i}");
    all_at_once(&n, 50, |i| {
        setup_ip_masq(Some(MasqBackend::Iptables), &[ip(i)], NET, "eth0", &cid(i))
    });
    let rules = nat_rules(&ns, false);
    for i in 0..50 {
        let chain = masq::chain_name(NET, &cid(i));
        assert!(rules.contains(&format!("-N {chain}")), "{chain} missing");
        assert_eq!(
            rules
                .iter()
                .filter(|l| l.starts_with(&format!("-A {chain} ")))
                .count(),
            2
        );
        let src = format!("-A POSTROUTING -s {}/32 ", ip(i).addr());
        assert_eq!(rules.iter().filter(|l| l.starts_with(&src)).count(), 1);
    }
    all_at_once(&n, 50, |i| teardown_ip_masq(&[ip(i)], NET, "eth0", &cid(i)));
    assert_eq!(nat_rules(&ns, false), POLICIES);
}

#[test]
fn fifty_concurrent_nftables_setups_all_land() {
    let ns = Netns::new("fw");
    let n = NetNs::open(ns.path()).unwrap();
    let ip = |i: usize| net(&format!("10.3.0.{}/24", i + 2));
    all_at_once(&n, 50, |i| {
        setup_ip_masq(
            Some(MasqBackend::Nftables),
            &[ip(i)],
            NET,
            "eth0",
            &format!("ctr{i}"),
        )
    });
    assert_eq!(
        rules_in(&ns, "inet", "cni_plugins_masquerade", "masq_checks").len(),
        50
    );
    assert_eq!(
        rules_in(&ns, "inet", "cni_plugins_masquerade", "postrouting").len(),
        3
    );
    all_at_once(&n, 50, |i| {
        teardown_ip_masq(&[], NET, "eth0", &format!("ctr{i}"))
    });
    assert!(rules_in(&ns, "inet", "cni_plugins_masquerade", "masq_checks").is_empty());
}

/// iptables-legacy is the variant that takes the xtables lock. The test holds that lock (a
/// private lock file, through XTABLES_LOCKFILE, so the host's iptables users are never blocked)
/// while 50 appends start, and all of them must queue rather than fail. (Debian's 1.8.9 waits
/// even without `--wait`; older releases fail at once with "Another app is currently holding
/// the xtables lock", which is what the flag is for.)
#[test]
fn fifty_concurrent_legacy_appends_wait_for_the_xtables_lock() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::PermissionsExt;
    let ns = Netns::new("fw");
    let n = NetNs::open(ns.path()).unwrap();
    assert!(
        std::path::Path::new(LEGACY).exists(),
        "{LEGACY} missing: install Debian's iptables (make deps)"
    );
    let dir = crate::common::TempDir::new("xtlock");
    let lockfile = dir.path().join("xtables.lock");
    let wrapper = dir.path().join("iptables-legacy");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nXTABLES_LOCKFILE={} exec {LEGACY} \"$@\"\n",
            lockfile.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let legacy = Iptables::with_program(&wrapper, false);
    n.run(|| legacy.ensure_chain("filter", "WEFT-TEST"))
        .unwrap();

    let lock = std::fs::File::create(&lockfile).unwrap();
    // SAFETY: flock on an fd this function owns; released by closing it below.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        drop(lock);
    });
    all_at_once(&n, 50, |i| {
        let src = format!("192.0.2.{}", i + 1);
        legacy.append_unique("filter", "WEFT-TEST", &["-s", &src, "-j", "ACCEPT"])
    });
    release.join().unwrap();
    let rules = n.run(|| legacy.list_rules("filter", "WEFT-TEST")).unwrap();
    assert_eq!(rules.len(), 51, "{rules:#?}");
    n.run(|| legacy.clear_and_delete_chain("filter", "WEFT-TEST"))
        .unwrap();
    assert!(!n
        .run(|| legacy.chain_exists("filter", "WEFT-TEST"))
        .unwrap());
}

const LEGACY: &str = "/usr/sbin/iptables-legacy";

#[test]
fn iptables_wrapper_verbs() {
    let ns = Netns::new("fw");
    let n = NetNs::open(ns.path()).unwrap();
    n.run(|| {
        let ipt = Iptables::new(false)?;
        assert!(!ipt.chain_exists("filter", "WEFT-FWD")?);
        ipt.ensure_chain("filter", "WEFT-FWD")?;
        ipt.ensure_chain("filter", "WEFT-FWD")?;
        assert!(ipt.chain_exists("filter", "WEFT-FWD")?);
        ipt.append_unique("filter", "WEFT-FWD", &["-s", "10.5.0.0/16", "-j", "ACCEPT"])?;
        ipt.insert_unique("filter", "WEFT-FWD", &["-d", "10.5.0.0/16", "-j", "ACCEPT"])?;
        ipt.insert_unique("filter", "WEFT-FWD", &["-s", "10.5.0.0/16", "-j", "ACCEPT"])?;
        assert_eq!(
            ipt.list_rules("filter", "WEFT-FWD")?,
            [
                "-N WEFT-FWD",
                "-A WEFT-FWD -d 10.5.0.0/16 -j ACCEPT",
                "-A WEFT-FWD -s 10.5.0.0/16 -j ACCEPT",
            ]
        );
        ipt.delete_rule("filter", "WEFT-FWD", &["-d", "10.5.0.0/16", "-j", "ACCEPT"])?;
        ipt.delete_rule("filter", "WEFT-FWD", &["-d", "10.5.0.0/16", "-j", "ACCEPT"])?;
        ipt.delete_rule("filter", "NO-SUCH", &["-j", "ACCEPT"])?;
        ipt.delete_rule("filter", "FORWARD", &["-j", "NO-SUCH-TARGET"])?;

        // A failure names the whole command and what iptables said.
        let e = ipt
            .append_unique("filter", "FORWARD", &["-j", "NO-SUCH-TARGET"])
            .unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("--wait -t filter -C FORWARD -j NO-SUCH-TARGET")
                && msg.contains("exit status"),
            "{msg}"
        );

        // Deleting a chain that a rule still jumps to is a real error, not "missing".
        ipt.append_unique("filter", "FORWARD", &["-j", "WEFT-FWD"])?;
        assert!(ipt.clear_and_delete_chain("filter", "WEFT-FWD").is_err());
        ipt.delete_rule("filter", "FORWARD", &["-j", "WEFT-FWD"])?;
        ipt.clear_and_delete_chain("filter", "WEFT-FWD")?;
        ipt.clear_and_delete_chain("filter", "WEFT-FWD")?;
        assert!(!ipt.chain_exists("filter", "WEFT-FWD")?);
        Ok(())
    })
    .unwrap();
}
