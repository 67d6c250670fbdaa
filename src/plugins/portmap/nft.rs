//! The reference's nftables layout: one table `cni_hostport` per family (`ip`, `ip6`), shared by
//! every container.
//!
//! ```text
//! prerouting   nat, hook prerouting, priority -100 (dstnat):
//!                  <conditions> fib daddr type local jump hostports_all
//! output       nat, hook output, priority -100: the same rule
//! hostports_all    jump hostip_hostports; jump hostports
//! hostip_hostports no rules (older reference versions put host-IP mappings here)
//! hostports    per mapping: [ip daddr HOSTIP] PROTO dport HOSTPORT dnat to CONTAINER:PORT
//! masquerading nat, hook postrouting, priority 100 (srcnat), with snat only: per container
//!                  ip saddr CONTAINER ip daddr CONTAINER masquerade (hairpin), and for IPv4
//!                  ip saddr 127.0.0.1 ip daddr CONTAINER masquerade (localhost)
//! ```
//!
//! A container's rules carry its id as their comment, which is how DEL and CHECK find them.
//! An ADD declares the table and chains (`add` of what exists changes nothing), flushes and
//! refills the three chains whose content is the same for everyone, and appends the container's
//! rules, all in one `nft -f -` transaction: concurrent ADDs of different containers cannot
//! lose each other's rules, and a refused ADD leaves nothing. Like the reference, an ADD
//! repeated without a DEL appends the container's rules again; DEL removes every copy. DEL
//! leaves the table and the shared chains in place, as the reference does.

use super::plugin::Lock;
use super::PortMapConf;
use crate::sys::firewall::Nft;
use anyhow::{bail, Context, Result};
use ipnet::IpNet;
use serde_json::Value;
use std::fmt::Write;

pub const TABLE: &str = "cni_hostport";
pub const HOSTPORTS: &str = "hostports";
/// Kept empty: the reference declares it still so that a host upgraded from a version that
/// used it keeps a valid layout, and DEL still looks in it.
pub const HOSTIP_HOSTPORTS: &str = "hostip_hostports";
pub const HOSTPORTS_ALL: &str = "hostports_all";
pub const MASQUERADING: &str = "masquerading";
/// The chains that hold per-container rules.
const PER_CONTAINER: [&str; 3] = [HOSTPORTS, HOSTIP_HOSTPORTS, MASQUERADING];

fn family(v6: bool) -> &'static str {
    if v6 {
        "ip6"
    } else {
        "ip"
    }
}

/// The protocol is written into the script as a word: anything else could end the rule and
/// start another command. (nft itself refuses a word it does not know, such as `TCP`.)
pub fn check_protocol(p: &str) -> Result<()> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()) {
        bail!("invalid protocol {p:?} for the nftables backend");
    }
    Ok(())
}

/// Conditions are nftables syntax and go into the script as written; a line break or `;` would
/// start another command and `#` would comment out the rest of the rule, so those are refused.
pub fn check_conditions(c: &[String]) -> Result<()> {
    if let Some(bad) = c
        .iter()
        .find(|w| w.contains(|ch: char| ch == ';' || ch == '#' || ch.is_control()))
    {
        bail!("nftables condition {bad:?} contains a line break, ';' or '#'");
    }
    Ok(())
}

/// The commands that set up forwarding to `container` (one of the container's addresses) in
/// its family's table. `object_comments`: whether this kernel takes a comment on a table.
pub fn add_script(
    conf: &PortMapConf,
    id: &str,
    container: IpNet,
    object_comments: bool,
) -> Result<String> {
    let v6 = container.addr().is_ipv6();
    let ip = family(v6);
    let t = format!("{ip} {TABLE}");
    let comment = crate::sys::firewall::nft::quote(id)?;
    let conditions = if v6 {
        &conf.conditions_v6
    } else {
        &conf.conditions_v4
    };
    let mut s = String::new();
    if object_comments {
        let _ = writeln!(s, "add table {t} {{ comment \"CNI portmap plugin\" ; }}");
    } else {
        let _ = writeln!(s, "add table {t}");
    }
    for chain in [HOSTPORTS, HOSTIP_HOSTPORTS, HOSTPORTS_ALL] {
        let _ = writeln!(s, "add chain {t} {chain}");
    }
    let _ = writeln!(s, "flush chain {t} {HOSTPORTS_ALL}");
    let _ = writeln!(s, "add rule {t} {HOSTPORTS_ALL} jump {HOSTIP_HOSTPORTS}");
    let _ = writeln!(s, "add rule {t} {HOSTPORTS_ALL} jump {HOSTPORTS}");
    // The entry chains hold one rule that every container shares, with the conditions of
    // whichever config ADD saw last: refilled, not appended to.
    let entry: Vec<&str> = conditions
        .iter()
        .map(String::as_str)
        .chain(["fib daddr type local jump", HOSTPORTS_ALL])
        .collect();
    for (chain, hook) in [("prerouting", "prerouting"), ("output", "output")] {
        let _ = writeln!(
            s,
            "add chain {t} {chain} {{ type nat hook {hook} priority -100 ; }}"
        );
        let _ = writeln!(s, "flush chain {t} {chain}");
        let _ = writeln!(s, "add rule {t} {chain} {}", entry.join(" "));
    }
    if conf.snat {
        let _ = writeln!(
            s,
            "add chain {t} {MASQUERADING} {{ type nat hook postrouting priority 100 ; }}"
        );
    }
    let to = |port: i64| match container.addr() {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    };
    for m in conf.mappings.iter().filter(|m| m.applies_to(v6)) {
        let daddr = m
            .host_addr()
            .map(|h| format!("{ip} daddr {h} "))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "add rule {t} {HOSTPORTS} {daddr}{} dport {} dnat to {} comment {comment}",
            m.protocol,
            m.host_port,
            to(m.container_port)
        );
    }
    if conf.snat {
        let addr = container.addr();
        // Hairpin: the container reaching itself through a host port must see the reply come
        // from the host, not from its own address.
        let src = match (conf.masq_all, v6) {
            (true, true) => "::/0".to_string(),
            (true, false) => "0.0.0.0/0".to_string(),
            (false, _) => addr.to_string(),
        };
        let _ = writeln!(
            s,
            "add rule {t} {MASQUERADING} {ip} saddr {src} {ip} daddr {addr} masquerade comment {comment}"
        );
        // 127.0.0.1:hostPort from the host; 0.0.0.0/0 covers it already.
        if !v6 && !conf.masq_all {
            let _ = writeln!(
                s,
                "add rule {t} {MASQUERADING} {ip} saddr 127.0.0.1 {ip} daddr {addr} masquerade comment {comment}"
            );
        }
    }
    Ok(s)
}

/// How many rules of the container CHECK wants in `hostports` and in `masquerading`.
pub fn expected(conf: &PortMapConf, v6: bool) -> (usize, usize) {
    let hostports = conf.mappings.iter().filter(|m| m.applies_to(v6)).count();
    let masq = match (conf.snat, v6 || conf.masq_all) {
        (false, _) => 0,
        (true, true) => 1,
        (true, false) => 2,
    };
    (hostports, masq)
}

/// The rules (chain, handle) of container `id` in a table listing (`nft -j list table`).
pub fn owned(items: &[Value], id: &str) -> Vec<(String, u64)> {
    items
        .iter()
        .filter_map(|o| o.get("rule"))
        .filter(|r| r.get("comment").and_then(Value::as_str) == Some(id))
        .filter_map(|r| {
            let chain = r.get("chain").and_then(Value::as_str)?;
            let handle = r.get("handle").and_then(Value::as_u64)?;
            PER_CONTAINER
                .contains(&chain)
                .then(|| (chain.to_string(), handle))
        })
        .collect()
}

/// How many of container `id`'s rules `chain` holds.
fn count(items: &[Value], id: &str, chain: &str) -> usize {
    owned(items, id).iter().filter(|(c, _)| c == chain).count()
}

fn list_table(nft: &Nft, v6: bool) -> Result<Vec<Value>> {
    Ok(nft
        .list(&["table", family(v6), TABLE])
        .with_context(|| format!("could not list rules in table {TABLE}"))?
        .unwrap_or_default())
}

/// Sets up the forwarding to each of `addrs` (the container's IPv4 and IPv6 address) in one
/// transaction: if one family is refused, neither is set up.
pub fn forward(conf: &PortMapConf, id: &str, addrs: &[IpNet]) -> Result<()> {
    let nft = Nft::new()?;
    let mut script = String::new();
    for a in addrs {
        script += &add_script(conf, id, *a, nft.object_comments())?;
    }
    nft.run_script(&script)
        .context("unable to set up nftables rules for port mappings")
}

/// Removes container `id`'s rules from both families' tables in one transaction. Where nft
/// cannot be run there is nothing it could have set up, so that is success, as in the reference.
pub fn unforward(id: &str) -> Result<()> {
    let Ok(nft) = Nft::new() else {
        return Ok(());
    };
    // Two DELs of one container must not both try to delete the same handles.
    let _lock = Lock::take()?;
    let mut script = String::new();
    for v6 in [false, true] {
        for (chain, handle) in owned(&list_table(&nft, v6)?, id) {
            let _ = writeln!(
                script,
                "delete rule {} {TABLE} {chain} handle {handle}",
                family(v6)
            );
        }
    }
    if script.is_empty() {
        return Ok(());
    }
    nft.run_script(&script)
        .context("error deleting nftables rules")
}

/// Whether every rule ADD made for `container` is there (counted by the container's comment,
/// as the reference counts them).
pub fn check(conf: &PortMapConf, id: &str, container: IpNet) -> Result<()> {
    let v6 = container.addr().is_ipv6();
    let nft = Nft::new()?;
    let items = list_table(&nft, v6)?;
    let (hostports, masq) = expected(conf, v6);
    for (chain, want) in [(HOSTPORTS, hostports), (MASQUERADING, masq)] {
        if count(&items, id, chain) < want {
            bail!("missing hostport rules in {chain:?} chain");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::portmap::{Backend, PortMapping};
    use serde_json::json;

    fn pm(host: i64, cont: i64, proto: &str, ip: &str) -> PortMapping {
        PortMapping {
            host_port: host,
            container_port: cont,
            protocol: proto.into(),
            host_ip: ip.into(),
        }
    }

    /// The reference's own test config for this backend.
    fn conf() -> PortMapConf {
        PortMapConf {
            name: "test".into(),
            backend: Backend::Nftables,
            snat: true,
            conditions_v4: vec!["a".into(), "b".into()],
            conditions_v6: vec!["c".into(), "d".into()],
            masq_all: false,
            mark_masq_bit: 13,
            external_set_mark_chain: None,
            mappings: vec![
                pm(8080, 80, "tcp", ""),
                pm(8081, 80, "tcp", ""),
                pm(8080, 81, "udp", ""),
                pm(8082, 82, "udp", ""),
                pm(8083, 83, "tcp", "192.168.0.2"),
                pm(8084, 84, "tcp", "0.0.0.0"),
                pm(8085, 85, "tcp", "2001:db8:a::1"),
                pm(8086, 86, "tcp", "::"),
            ],
        }
    }

    fn sorted(s: &str) -> Vec<&str> {
        let mut v: Vec<&str> = s.lines().filter(|l| !l.starts_with("flush ")).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn ipv4_layout_is_the_references() {
        let s = add_script(
            &conf(),
            "icee6giejonei6so",
            "10.0.0.2/24".parse().unwrap(),
            true,
        )
        .unwrap();
        // The reference's expected commands (its test sorts them; flushes aside).
        let want = r#"add table ip cni_hostport { comment "CNI portmap plugin" ; }
add chain ip cni_hostport hostip_hostports
add chain ip cni_hostport hostports
add chain ip cni_hostport hostports_all
add chain ip cni_hostport masquerading { type nat hook postrouting priority 100 ; }
add chain ip cni_hostport output { type nat hook output priority -100 ; }
add chain ip cni_hostport prerouting { type nat hook prerouting priority -100 ; }
add rule ip cni_hostport hostports tcp dport 8080 dnat to 10.0.0.2:80 comment "icee6giejonei6so"
add rule ip cni_hostport hostports tcp dport 8081 dnat to 10.0.0.2:80 comment "icee6giejonei6so"
add rule ip cni_hostport hostports udp dport 8080 dnat to 10.0.0.2:81 comment "icee6giejonei6so"
add rule ip cni_hostport hostports udp dport 8082 dnat to 10.0.0.2:82 comment "icee6giejonei6so"
add rule ip cni_hostport hostports ip daddr 192.168.0.2 tcp dport 8083 dnat to 10.0.0.2:83 comment "icee6giejonei6so"
add rule ip cni_hostport hostports tcp dport 8084 dnat to 10.0.0.2:84 comment "icee6giejonei6so"
add rule ip cni_hostport hostports_all jump hostip_hostports
add rule ip cni_hostport hostports_all jump hostports
add rule ip cni_hostport masquerading ip saddr 10.0.0.2 ip daddr 10.0.0.2 masquerade comment "icee6giejonei6so"
add rule ip cni_hostport masquerading ip saddr 127.0.0.1 ip daddr 10.0.0.2 masquerade comment "icee6giejonei6so"
add rule ip cni_hostport output a b fib daddr type local jump hostports_all
add rule ip cni_hostport prerouting a b fib daddr type local jump hostports_all"#;
        assert_eq!(sorted(&s), sorted(want));
        // The shared chains are refilled, never appended to.
        for chain in ["hostports_all", "prerouting", "output"] {
            assert!(
                s.contains(&format!("flush chain ip cni_hostport {chain}\n")),
                "{s}"
            );
        }
    }

    #[test]
    fn ipv6_without_snat_and_without_object_comments() {
        let mut c = conf();
        c.snat = false;
        let s = add_script(
            &c,
            "icee6giejonei6so",
            "2001:db8::2/64".parse().unwrap(),
            false,
        )
        .unwrap();
        assert!(s.starts_with("add table ip6 cni_hostport\n"), "{s}");
        assert!(!s.contains("masquerad"), "{s}");
        assert!(s.contains(
            "add rule ip6 cni_hostport hostports ip6 daddr 2001:db8:a::1 tcp dport 8085 dnat to [2001:db8::2]:85 comment \"icee6giejonei6so\"\n"
        ), "{s}");
        assert!(s.contains(
            "add rule ip6 cni_hostport hostports tcp dport 8086 dnat to [2001:db8::2]:86 comment"
        ), "{s}");
        assert!(!s.contains("8083") && !s.contains("8084"), "{s}");
        assert!(s.contains(
            "add rule ip6 cni_hostport output c d fib daddr type local jump hostports_all\n"
        ));
        assert_eq!(expected(&c, true), (6, 0));
    }

    #[test]
    fn masq_all_matches_every_source_once() {
        let mut c = conf();
        c.masq_all = true;
        let s = add_script(&c, "x", "10.0.0.2/24".parse().unwrap(), true).unwrap();
        assert!(s.contains("masquerading ip saddr 0.0.0.0/0 ip daddr 10.0.0.2 masquerade"));
        assert!(!s.contains("127.0.0.1"), "{s}");
        assert_eq!(expected(&c, false), (6, 1));
        assert_eq!(expected(&conf(), false), (6, 2));
        let s = add_script(&c, "x", "2001:db8::2/64".parse().unwrap(), true).unwrap();
        assert!(s.contains("masquerading ip6 saddr ::/0 ip6 daddr 2001:db8::2 masquerade"));
    }

    #[test]
    fn nothing_can_end_a_command_early() {
        assert!(check_protocol("tcp").is_ok());
        assert!(check_protocol("").is_err());
        assert!(check_protocol("tcp dport 1 accept\nadd table ip x").is_err());
        assert!(check_conditions(&["ip saddr { 1.2.3.4, 5.6.7.8 }".into()]).is_ok());
        for bad in ["a; add table ip x", "a # b", "a\nb"] {
            assert!(check_conditions(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(add_script(&conf(), "a\"b", "10.0.0.2/24".parse().unwrap(), true).is_err());
    }

    #[test]
    fn owned_rules_are_found_by_comment_in_the_container_chains() {
        let rule = |chain: &str, handle: u64, comment: Option<&str>| {
            let mut r = json!({"family": "ip", "table": TABLE, "chain": chain, "handle": handle});
            if let Some(c) = comment {
                r["comment"] = json!(c);
            }
            json!({ "rule": r })
        };
        let items = vec![
            json!({"table": {"family": "ip", "name": TABLE, "handle": 1}}),
            json!({"chain": {"family": "ip", "table": TABLE, "name": HOSTPORTS, "handle": 2}}),
            rule("prerouting", 3, None),
            rule(HOSTPORTS, 4, Some("c1")),
            rule(HOSTPORTS, 5, Some("c2")),
            rule(HOSTIP_HOSTPORTS, 6, Some("c1")),
            rule(MASQUERADING, 7, Some("c1")),
            rule("elsewhere", 8, Some("c1")),
            rule(HOSTPORTS, 9, Some("c1x")),
        ];
        assert_eq!(
            owned(&items, "c1"),
            vec![
                (HOSTPORTS.to_string(), 4),
                (HOSTIP_HOSTPORTS.to_string(), 6),
                (MASQUERADING.to_string(), 7)
            ]
        );
        assert_eq!(count(&items, "c2", HOSTPORTS), 1);
        assert!(owned(&items, "c3").is_empty());
    }
}
