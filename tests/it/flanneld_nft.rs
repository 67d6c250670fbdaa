//! flanneld's masquerade and forward rules in both modes, in the lab with a real etcd: the
//! nftables tables of `"EnableNFTables": true`, laid out as upstream's, kept by the resync loop
//! and removed when a host goes back to iptables (and the other way round); traffic leaving a
//! pod for the underlay is masqueraded in either mode.

use crate::common::overlay::{lab, net_of, wait_for, Lab, ETCD_IP};
use crate::common::Netns;
use std::time::Duration;

const NFT_NET: &str =
    r#"{"Network":"10.47.0.0/16","Backend":{"Type":"host-gw"},"EnableNFTables":true}"#;
const IPT_NET: &str = r#"{"Network":"10.47.0.0/16","Backend":{"Type":"host-gw"}}"#;

/// `nft list table FAMILY TABLE`, or None when it does not exist.
fn nft_table(ns: &Netns, family: &str, table: &str) -> Option<String> {
    let (ok, out) = ns.exec(&["nft", "list", "table", family, table]);
    ok.then_some(out)
}

/// The underlay (etcd's namespace) has no route to any pod, so a pod's ping to it is answered
/// only when the host rewrote the source to its own underlay address.
fn assert_pod_traffic_is_masqueraded(tb: &Lab, host: usize) {
    let pod = &tb.hosts[host].pods[0];
    let pod_ip = pod.ipj(&["-4", "addr", "show", "eth0"])[0]["addr_info"][0]["local"]
        .as_str()
        .unwrap()
        .to_string();
    let (routed, out) = tb.ul.exec(&["ip", "route", "get", &pod_ip]);
    assert!(!routed, "the underlay has a route to {pod_ip}: {out}");
    assert!(
        pod.ping(ETCD_IP),
        "pod {pod_ip} on host {host} cannot reach the underlay: not masqueraded"
    );
}

/// The table as upstream's nftables mode lays it out for network 10.47.0.0/16 and subnet
/// `own`, with -ip-masq and the forward rules.
fn upstream_v4_table(own: &str) -> String {
    format!(
        "table ip flannel-ipv4 {{\n\
         \tcomment \"rules for flannel-ipv4\"\n\
         \tchain postrtg {{\n\
         \t\tcomment \"chain to manage traffic masquerading by flannel\"\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tmeta mark 0x00004000 return\n\
         \t\tip saddr {own} ip daddr 10.47.0.0/16 return\n\
         \t\tip saddr 10.47.0.0/16 ip daddr {own} return\n\
         \t\tip saddr != {own} ip daddr 10.47.0.0/16 return\n\
         \t\tip saddr 10.47.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random\n\
         \t\tip saddr != 10.47.0.0/16 ip daddr 10.47.0.0/16 masquerade fully-random\n\
         \t}}\n\
         \n\
         \tchain forward {{\n\
         \t\tcomment \"chain to accept flannel traffic\"\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tip saddr 10.47.0.0/16 accept\n\
         \t\tip daddr 10.47.0.0/16 accept\n\
         \t}}\n\
         }}\n"
    )
}

const UPSTREAM_V6_TABLE: &str =
    "table ip6 flannel-ipv6 {\n\tcomment \"rules for flannel-ipv6\"\n}\n";

#[test]
fn nftables_mode_lays_out_upstreams_tables_keeps_them_and_masquerades() {
    let mut tb = lab(2);
    tb.set_config(NFT_NET);
    tb.start_all(&["-ip-masq", "-iptables-resync=1"]);
    let h = &tb.hosts[0];
    let own = net_of(&h.subnet());
    let want = upstream_v4_table(&own);
    assert_eq!(
        nft_table(&h.ns, "ip", "flannel-ipv4").as_deref(),
        Some(&*want)
    );
    assert_eq!(
        nft_table(&h.ns, "ip6", "flannel-ipv6").as_deref(),
        Some(UPSTREAM_V6_TABLE)
    );
    // Nothing of iptables mode.
    let (_, nat) = h.ns.exec(&["iptables-save"]);
    assert!(!nat.contains("FLANNEL"), "{nat}");

    // Flushed, a rule deleted, a rule added, the table deleted: each put back within a period.
    let restored = |what: &str| {
        wait_for(Duration::from_secs(10), what, || {
            (nft_table(&h.ns, "ip", "flannel-ipv4").as_deref() == Some(&*want)).then_some(())
        })
    };
    let (ok, out) =
        h.ns.exec(&["nft", "flush", "chain", "ip", "flannel-ipv4", "postrtg"]);
    assert!(ok, "{out}");
    restored("the flushed chain to be refilled");
    let (ok, out) = h.ns.exec(&[
        "nft",
        "add",
        "rule",
        "ip",
        "flannel-ipv4",
        "forward",
        "ip",
        "saddr",
        "10.99.0.0/16",
        "accept",
    ]);
    assert!(ok, "{out}");
    restored("the added rule to go");
    let (ok, out) = h.ns.exec(&["nft", "delete", "table", "ip", "flannel-ipv4"]);
    assert!(ok, "{out}");
    restored("the deleted table to come back");
    assert!(
        h.log().contains("restored the nftables tables"),
        "{}",
        h.log()
    );

    let ips = tb.add_pods();
    tb.ping_all(&ips, &[]);
    assert_pod_traffic_is_masqueraded(&tb, 0);

    // Stopping leaves the rules in place, as in iptables mode.
    assert_eq!(tb.hosts[0].stop_flanneld(), Some(0));
    assert_eq!(
        nft_table(&tb.hosts[0].ns, "ip", "flannel-ipv4").as_deref(),
        Some(&*want)
    );
}

/// The same check of real traffic in iptables mode, and the move between modes: each mode
/// removes what the other made (chains, jumps, tables) and nothing else.
#[test]
fn switching_modes_removes_the_other_modes_rules_only() {
    let mut tb = lab(1);
    tb.set_config(IPT_NET);
    tb.start_all(&["-ip-masq"]);
    tb.add_pods();
    assert_pod_traffic_is_masqueraded(&tb, 0);
    // Someone else's rules, which neither mode may touch.
    for cmd in [
        &["iptables", "-t", "nat", "-N", "OTHER-POSTRTG"][..],
        &[
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-j",
            "OTHER-POSTRTG",
        ],
        &[
            "iptables",
            "-A",
            "FORWARD",
            "-s",
            "10.98.0.0/16",
            "-j",
            "ACCEPT",
        ],
        &["nft", "add", "table", "ip", "other"],
        &["nft", "add", "chain", "ip", "other", "postrtg"],
    ] {
        let (ok, out) = tb.hosts[0].ns.exec(cmd);
        assert!(ok, "{cmd:?}: {out}");
    }
    let foreign_in_place = |ns: &Netns| {
        let (_, ipt) = ns.exec(&["iptables-save"]);
        assert!(ipt.contains("-A POSTROUTING -j OTHER-POSTRTG"), "{ipt}");
        assert!(
            ipt.contains("-A FORWARD -s 10.98.0.0/16 -j ACCEPT"),
            "{ipt}"
        );
        assert!(nft_table(ns, "ip", "other").is_some());
    };
    let ipt = |ns: &Netns| ns.exec(&["iptables-save"]).1;
    assert!(ipt(&tb.hosts[0].ns).contains("-j FLANNEL-POSTRTG"));
    assert!(ipt(&tb.hosts[0].ns).contains("-j FLANNEL-FWD"));

    let ep = tb.etcd.endpoint.clone();
    let restart = |tb: &mut Lab, cfg: &str| {
        assert_eq!(tb.hosts[0].stop_flanneld(), Some(0));
        tb.set_config(cfg);
        tb.hosts[0].start_flanneld(&ep, &["-ip-masq"]);
        tb.hosts[0].wait_env();
    };
    restart(&mut tb, NFT_NET);
    let ns = &tb.hosts[0].ns;
    wait_for(Duration::from_secs(10), "the nftables tables", || {
        nft_table(ns, "ip", "flannel-ipv4").map(|_| ())
    });
    let now = ipt(ns);
    assert!(
        !now.contains("FLANNEL"),
        "iptables mode's rules stay: {now}"
    );
    foreign_in_place(ns);
    assert_pod_traffic_is_masqueraded(&tb, 0);

    restart(&mut tb, IPT_NET);
    let ns = &tb.hosts[0].ns;
    wait_for(Duration::from_secs(10), "the iptables chains", || {
        ipt(ns).contains("-j FLANNEL-POSTRTG").then_some(())
    });
    assert!(nft_table(ns, "ip", "flannel-ipv4").is_none());
    assert!(nft_table(ns, "ip6", "flannel-ipv6").is_none());
    foreign_in_place(ns);
    assert_pod_traffic_is_masqueraded(&tb, 0);
}

/// Dual stack: the ip6 table gets upstream's rules for the IPv6 network and lease.
#[test]
fn nftables_mode_lays_out_the_ipv6_table_as_upstream() {
    let mut tb = lab(0);
    tb.ul
        .ip(&["addr", "add", "fd77::fe/64", "dev", "ul0", "nodad"]);
    tb.add_host();
    let h = &tb.hosts[0];
    h.ns.ip(&["addr", "add", "fd77::1/64", "dev", "eth0", "nodad"]);
    tb.set_config(
        r#"{"Network":"10.48.0.0/16","EnableIPv6":true,"IPv6Network":"fd48::/48","Backend":{"Type":"host-gw"},"EnableNFTables":true}"#,
    );
    tb.start_all(&["-ip-masq", "-ip-masq-fully-random-disable"]);
    let env = tb.hosts[0].wait_env();
    let own: ipnet::Ipv6Net = env
        .lines()
        .find_map(|l| l.strip_prefix("FLANNEL_IPV6_SUBNET="))
        .unwrap_or_else(|| panic!("no IPv6 lease: {env}"))
        .parse()
        .unwrap();
    let own = own.trunc();
    let want = format!(
        "table ip6 flannel-ipv6 {{\n\
         \tcomment \"rules for flannel-ipv6\"\n\
         \tchain postrtg {{\n\
         \t\tcomment \"chain to manage traffic masquerading by flannel\"\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tmeta mark 0x00004000 return\n\
         \t\tip6 saddr {own} ip6 daddr fd48::/48 return\n\
         \t\tip6 saddr fd48::/48 ip6 daddr {own} return\n\
         \t\tip6 saddr != {own} ip6 daddr fd48::/48 return\n\
         \t\tip6 saddr fd48::/48 ip6 daddr != ff00::/8 masquerade\n\
         \t\tip6 saddr != fd48::/48 ip6 daddr fd48::/48 masquerade\n\
         \t}}\n\
         \n\
         \tchain forward {{\n\
         \t\tcomment \"chain to accept flannel traffic\"\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tip6 saddr fd48::/48 accept\n\
         \t\tip6 daddr fd48::/48 accept\n\
         \t}}\n\
         }}\n"
    );
    let ns = &tb.hosts[0].ns;
    assert_eq!(
        nft_table(ns, "ip6", "flannel-ipv6").as_deref(),
        Some(&*want)
    );
    let v4 = nft_table(ns, "ip", "flannel-ipv4").unwrap();
    assert!(
        v4.contains("ip saddr 10.48.0.0/16 ip daddr != 224.0.0.0/4 masquerade\n"),
        "{v4}"
    );
    let (_, ip6t) = ns.exec(&["ip6tables-save"]);
    assert!(!ip6t.contains("FLANNEL"), "{ip6t}");
}
