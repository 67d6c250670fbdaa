//! The reference's iptables layout, all in the nat table:
//!
//! ```text
//! PREROUTING, OUTPUT:   -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
//! CNI-HOSTPORT-DNAT:    per container and protocol, its host ports (multiport, 15 at most per
//!                       rule, a comment naming network and container) -j CNI-DN-<hash>
//! CNI-DN-<hash>:        per mapping: mark hairpin traffic, mark traffic from 127.0.0.1 (IPv4),
//!                       then DNAT to the container's address and port
//! CNI-HOSTPORT-SETMARK: MARK --set-xmark 1<<markMasqBit
//! CNI-HOSTPORT-MASQ:    first in POSTROUTING: MASQUERADE what carries the mark
//! ```
//!
//! The chain names, comments and rules are the reference's, so either plugin removes what the
//! other made. Where the reference runs iptables once per rule, each ADD and DEL here reads the
//! table once (`iptables-save`) and applies its changes in one `iptables-restore --noflush`
//! transaction: the container's chain is declared (created, or emptied) and filled, the jumps to
//! it replaced, and the shared chains and rules added only where the table lacks them.

use super::PortMapConf;
use crate::sys::firewall::masq::hash_with_prefix;
use ipnet::IpNet;
use std::collections::BTreeSet;

pub const TOP_DNAT: &str = "CNI-HOSTPORT-DNAT";
pub const SETMARK: &str = "CNI-HOSTPORT-SETMARK";
pub const MASQ: &str = "CNI-HOSTPORT-MASQ";
/// Made by old versions of the reference; DEL still removes a container's chain in it.
pub const OLD_SNAT: &str = "CNI-HOSTPORT-SNAT";

/// `CNI-DN-` and the start of sha512(network name + container id): 28 characters.
pub fn dnat_chain(net: &str, id: &str) -> String {
    hash_with_prefix(28, "CNI-DN-", &format!("{net}{id}"))
}

pub fn old_snat_chain(net: &str, id: &str) -> String {
    hash_with_prefix(28, "CNI-SN-", &format!("{net}{id}"))
}

/// iptables' `value/mask` for the masquerade mark bit, as Go's `%#x` prints it.
pub fn mark(bit: u32) -> String {
    let v = 1u32 << bit;
    format!("{v:#x}/{v:#x}")
}

/// The container's chain: the rules that jump to it from CNI-HOSTPORT-DNAT (without the
/// `-j`) and its own rules, as argument lists.
#[derive(Debug, PartialEq)]
pub struct DnatChain {
    pub name: String,
    pub entry_rules: Vec<Vec<String>>,
    pub rules: Vec<Vec<String>>,
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The comment on the jumps, cut to iptables' 255 characters as the reference cuts it.
fn comment(net: &str, id: &str) -> String {
    let c = format!("dnat name: \"{net}\" id: \"{id}\"");
    if c.len() <= 255 {
        return c;
    }
    let mut end = 253;
    while !c.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &c[..end])
}

/// `ip:port`, or `[ip]:port` for IPv6.
fn ip_port(ip: std::net::IpAddr, port: i64) -> String {
    match ip {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// The container's chain for `container` (one of its addresses), as the reference builds it.
pub fn dnat(conf: &PortMapConf, id: &str, container: IpNet) -> DnatChain {
    let v6 = container.addr().is_ipv6();
    let name = dnat_chain(&conf.name, id);
    let conditions = if v6 {
        &conf.conditions_v6
    } else {
        &conf.conditions_v4
    };
    // Host ports per protocol (in the order given), protocols sorted; every mapping counts here,
    // whichever family its host address is.
    let mut protos: Vec<&str> = conf.mappings.iter().map(|m| m.protocol.as_str()).collect();
    protos.sort_unstable();
    protos.dedup();
    let mut entry_rules = Vec::new();
    for proto in protos {
        let ports: Vec<String> = conf
            .mappings
            .iter()
            .filter(|m| m.protocol == proto)
            .map(|m| m.host_port.to_string())
            .collect();
        for chunk in ports.chunks(15) {
            let mut r = args(&["-m", "comment", "--comment"]);
            r.push(comment(&conf.name, id));
            r.extend(args(&[
                "-m",
                "multiport",
                "-p",
                proto,
                "--destination-ports",
            ]));
            r.push(chunk.join(","));
            r.extend(conditions.iter().cloned());
            entry_rules.push(r);
        }
    }
    let set_mark = conf.external_set_mark_chain.as_deref().unwrap_or(SETMARK);
    let mut rules = Vec::new();
    for m in conf.mappings.iter().filter(|m| m.applies_to(v6)) {
        let mut base = args(&["-p", &m.protocol, "--dport", &m.host_port.to_string()]);
        if let Some(h) = m.host_addr() {
            base.extend(args(&["-d", &h.to_string()]));
        }
        if conf.snat {
            let src = match (conf.masq_all, v6) {
                (true, true) => "::/0".to_string(),
                (true, false) => "0.0.0.0/0".to_string(),
                (false, _) => container.to_string(),
            };
            rules.push([base.clone(), args(&["-s", &src, "-j", set_mark])].concat());
            if !v6 && !conf.masq_all {
                rules.push([base.clone(), args(&["-s", "127.0.0.1", "-j", set_mark])].concat());
            }
        }
        let to = ip_port(container.addr(), m.container_port);
        rules.push([base, args(&["-j", "DNAT", "--to-destination", &to])].concat());
    }
    DnatChain {
        name,
        entry_rules,
        rules,
    }
}

/// A rule every container's forwarding shares: its chain, and the rule as iptables-save prints
/// it (which is how the table is searched for it).
struct Shared {
    chain: &'static str,
    rule: String,
    first: bool,
}

fn shared(conf: &PortMapConf) -> (Vec<&'static str>, Vec<Shared>) {
    let jump = format!("-m addrtype --dst-type LOCAL -j {TOP_DNAT}");
    let mut chains = vec![TOP_DNAT];
    let mut rules = vec![
        Shared {
            chain: "PREROUTING",
            rule: jump.clone(),
            first: false,
        },
        Shared {
            chain: "OUTPUT",
            rule: jump,
            first: false,
        },
    ];
    if conf.snat && conf.external_set_mark_chain.is_none() {
        let m = mark(conf.mark_masq_bit);
        chains.extend([SETMARK, MASQ]);
        rules.extend([
            Shared {
                chain: SETMARK,
                rule: format!(
                    "-m comment --comment \"CNI portfwd masquerade mark\" -j MARK --set-xmark {m}"
                ),
                first: false,
            },
            Shared {
                chain: MASQ,
                rule: format!("-m mark --mark {m} -j MASQUERADE"),
                first: false,
            },
            // First in POSTROUTING: the bridge and ptp plugins' masquerade rules would
            // otherwise take the packet before it.
            Shared {
                chain: "POSTROUTING",
                rule: format!(
                    "-m comment --comment \"CNI portfwd requiring masquerade\" -j {MASQ}"
                ),
                first: true,
            },
        ]);
    }
    (chains, rules)
}

/// The nat table as `iptables-save -t nat` printed it: its chains and rules.
#[derive(Debug, Default)]
pub struct Table {
    chains: BTreeSet<String>,
    /// (chain, the rule after `-A CHAIN `), in order.
    rules: Vec<(String, String)>,
}

impl Table {
    pub fn parse(save: &str) -> Table {
        let mut t = Table::default();
        for line in save.lines() {
            if let Some(decl) = line.strip_prefix(':') {
                if let Some(name) = decl.split_whitespace().next() {
                    t.chains.insert(name.to_string());
                }
            } else if let Some(rule) = line.strip_prefix("-A ") {
                if let Some((chain, rest)) = rule.split_once(' ') {
                    t.rules.push((chain.to_string(), rest.to_string()));
                }
            }
        }
        t
    }

    pub fn has_chain(&self, chain: &str) -> bool {
        self.chains.contains(chain)
    }

    fn has_rule(&self, chain: &str, rule: &str) -> bool {
        self.rules.iter().any(|(c, r)| c == chain && r == rule)
    }

    /// The rules of `chain` that jump to `target`, each with its position in the chain
    /// (counted from 1, as `-R` and `-I` count).
    fn jumps(&self, chain: &str, target: &str) -> Vec<(usize, &str)> {
        let suffix = format!("-j {target}");
        self.rules
            .iter()
            .filter(|(c, _)| c == chain)
            .enumerate()
            .filter(|(_, (_, r))| r == &suffix || r.ends_with(&format!(" {suffix}")))
            .map(|(i, (_, r))| (i + 1, r.as_str()))
            .collect()
    }
}

/// One argument as iptables-restore reads it: quoted when it holds a blank or a quote.
fn word(a: &str) -> String {
    if !a.is_empty() && !a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
        return a.to_string();
    }
    format!("\"{}\"", a.replace('\\', "\\\\").replace('"', "\\\""))
}

fn line(op: &str, chain: &str, rule: &[String]) -> String {
    let mut l = format!("{op} {chain}");
    for a in rule {
        l.push(' ');
        l.push_str(&word(a));
    }
    l
}

/// The restore input that sets up `c` in `table`.
pub fn add_script(table: &Table, conf: &PortMapConf, c: &DnatChain) -> String {
    let (chains, shared) = shared(conf);
    let mut out = vec!["*nat".to_string()];
    for ch in chains.iter().filter(|ch| !table.has_chain(ch)) {
        out.push(format!("-N {ch}"));
    }
    // Declaring the container's chain creates it, or empties one an earlier ADD left.
    out.push(format!(":{} - [0:0]", c.name));
    for s in shared.iter().filter(|s| !table.has_rule(s.chain, &s.rule)) {
        let op = if s.first { "-I" } else { "-A" };
        let at = if s.first { " 1" } else { "" };
        out.push(format!("{op} {}{at} {}", s.chain, s.rule));
    }
    // The jumps to the container's chain: replaced where they are when there are as many as
    // before (a repeated ADD keeps the chain's order, as the reference's does), else removed
    // and appended.
    let old = table.jumps(TOP_DNAT, &c.name);
    let same_count = old.len() == c.entry_rules.len();
    if !same_count {
        for (_, rule) in &old {
            out.push(format!("-D {TOP_DNAT} {rule}"));
        }
    }
    for (i, r) in c.entry_rules.iter().enumerate() {
        let mut r = r.clone();
        r.extend(["-j".to_string(), c.name.clone()]);
        match old.get(i).filter(|_| same_count) {
            Some((pos, _)) => out.push(line("-R", &format!("{TOP_DNAT} {pos}"), &r)),
            None => out.push(line("-A", TOP_DNAT, &r)),
        }
    }
    for r in &c.rules {
        out.push(line("-A", &c.name, r));
    }
    out.push("COMMIT".into());
    out.join("\n") + "\n"
}

/// The restore input that removes container `id`'s chains and the jumps to them; None when the
/// table holds neither.
pub fn del_script(table: &Table, net: &str, id: &str) -> Option<String> {
    let mut out = vec!["*nat".to_string()];
    for (top, chain) in [
        (TOP_DNAT, dnat_chain(net, id)),
        (OLD_SNAT, old_snat_chain(net, id)),
    ] {
        if !table.has_chain(&chain) {
            continue;
        }
        for (_, old) in table.jumps(top, &chain) {
            out.push(format!("-D {top} {old}"));
        }
        out.push(format!("-F {chain}"));
        out.push(format!("-X {chain}"));
    }
    if out.len() == 1 {
        return None;
    }
    out.push("COMMIT".into());
    Some(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::portmap::PortMapping;

    fn conf(mappings: Vec<PortMapping>) -> PortMapConf {
        PortMapConf {
            name: "mynet".into(),
            backend: crate::plugins::portmap::Backend::Iptables,
            snat: true,
            conditions_v4: vec![],
            conditions_v6: vec![],
            masq_all: false,
            mark_masq_bit: 13,
            external_set_mark_chain: None,
            mappings,
        }
    }

    fn pm(host: i64, cont: i64, proto: &str, ip: &str) -> PortMapping {
        PortMapping {
            host_port: host,
            container_port: cont,
            protocol: proto.into(),
            host_ip: ip.into(),
        }
    }

    #[test]
    fn names_and_marks_are_the_references() {
        // As the Go plugin names the chain of network "mynet", container "abc123".
        assert_eq!(
            dnat_chain("mynet", "abc123"),
            "CNI-DN-70a29d9dc18bc4d652ea5"
        );
        assert_eq!(mark(13), "0x2000/0x2000");
        assert_eq!(mark(0), "0x1/0x1");
    }

    #[test]
    fn rules_per_mapping_and_family() {
        let c = conf(vec![
            pm(8080, 80, "tcp", ""),
            pm(9090, 90, "tcp", "192.168.1.5"),
        ]);
        let v4 = dnat(&c, "abc123", "10.1.2.3/24".parse().unwrap());
        assert_eq!(v4.entry_rules.len(), 1);
        assert_eq!(v4.rules.len(), 6);
        assert_eq!(
            v4.rules[2],
            args(&[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-j",
                "DNAT",
                "--to-destination",
                "10.1.2.3:80"
            ])
        );
        assert_eq!(
            v4.rules[3],
            args(&[
                "-p",
                "tcp",
                "--dport",
                "9090",
                "-d",
                "192.168.1.5",
                "-s",
                "10.1.2.3/24",
                "-j",
                SETMARK
            ])
        );
        let v6 = dnat(&c, "abc123", "fd00::3/64".parse().unwrap());
        // The v4 host address leaves one mapping for v6, and no localhost mark.
        assert_eq!(v6.rules.len(), 2);
        assert_eq!(v6.rules[1].last().unwrap(), "[fd00::3]:80");
        // The multiport list still names both ports, as the reference's does.
        assert!(v6.entry_rules[0].contains(&"8080,9090".to_string()));
    }

    #[test]
    fn more_than_fifteen_ports_split() {
        let c = conf((1..=16).map(|p| pm(p, 80, "udp", "")).collect());
        let d = dnat(&c, "x", "10.1.2.3/24".parse().unwrap());
        assert_eq!(d.entry_rules.len(), 2);
    }

    #[test]
    fn the_shared_rules_are_added_once() {
        let c = conf(vec![pm(8080, 80, "tcp", "")]);
        let d = dnat(&c, "abc123", "10.1.2.3/24".parse().unwrap());
        let empty = add_script(&Table::default(), &c, &d);
        assert!(empty.contains("-N CNI-HOSTPORT-DNAT\n"));
        assert!(empty.contains("-I POSTROUTING 1 -m comment"));
        let saved = "*nat\n:PREROUTING ACCEPT [0:0]\n:CNI-HOSTPORT-DNAT - [0:0]\n\
            :CNI-HOSTPORT-MASQ - [0:0]\n:CNI-HOSTPORT-SETMARK - [0:0]\n:CNI-DN-70a29d9dc18bc4d652ea5 - [0:0]\n\
            -A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n\
            -A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n\
            -A POSTROUTING -m comment --comment \"CNI portfwd requiring masquerade\" -j CNI-HOSTPORT-MASQ\n\
            -A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"x\" -m multiport --dports 8080 -j CNI-DN-70a29d9dc18bc4d652ea5\n\
            -A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE\n\
            -A CNI-HOSTPORT-SETMARK -m comment --comment \"CNI portfwd masquerade mark\" -j MARK --set-xmark 0x2000/0x2000\n\
            COMMIT\n";
        let t = Table::parse(saved);
        let again = add_script(&t, &c, &d);
        assert!(!again.contains("-N "), "{again}");
        assert!(!again.contains("PREROUTING"), "{again}");
        assert!(!again.contains("POSTROUTING"), "{again}");
        assert!(!again.contains("-D "), "{again}");
        assert!(again.contains(
            "-R CNI-HOSTPORT-DNAT 1 -m comment --comment \"dnat name: \\\"mynet\\\" id: \\\"abc123\\\"\" -m multiport -p tcp --destination-ports 8080 -j CNI-DN-70a29d9dc18bc4d652ea5\n"
        ), "{again}");
        let del = del_script(&t, "mynet", "abc123").unwrap();
        assert_eq!(
            del,
            "*nat\n-D CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"x\" -m multiport --dports 8080 -j CNI-DN-70a29d9dc18bc4d652ea5\n\
             -F CNI-DN-70a29d9dc18bc4d652ea5\n-X CNI-DN-70a29d9dc18bc4d652ea5\nCOMMIT\n"
        );
        assert_eq!(del_script(&t, "mynet", "other"), None);
    }

    #[test]
    fn long_comments_are_cut_as_the_reference_cuts_them() {
        let id = "a".repeat(300);
        let c = comment("n", &id);
        assert_eq!(c.len(), 256);
        assert!(c.ends_with("..."));
    }
}
