//! flanneld's rules, named, ordered and commented exactly as upstream's so either daemon can
//! take over from the other: FLANNEL-POSTRTG (nat, jumped to from POSTROUTING) when -ip-masq is
//! on, FLANNEL-FWD (filter, jumped to from FORWARD) unless -iptables-forward-rules=false.
//! Installing flushes and refills the chain, so a changed network or subnet leaves no stale rule;
//! the resync loop re-installs whenever a rule has gone missing. Nothing is removed at exit.

use anyhow::Result;
use ipnet::IpNet;

use super::Iptables;

pub const MASQ_CHAIN: &str = "FLANNEL-POSTRTG";
pub const FORWARD_CHAIN: &str = "FLANNEL-FWD";
const MASQ_COMMENT: &str = "flanneld masq";
const FORWARD_COMMENT: &str = "flanneld forward";
/// kube-proxy marks what it will masquerade itself; skipping it avoids double NAT.
const KUBE_MARK: &str = "0x4000/0x4000";

/// A chain flanneld owns: where it is jumped to from and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRules {
    pub table: &'static str,
    pub chain: &'static str,
    pub from: &'static str,
    pub jump: Vec<String>,
    pub rules: Vec<Vec<String>>,
}

fn rule(parts: &[&str], comment: &str, target: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
    v.extend(["-m", "comment", "--comment", comment].map(String::from));
    v.push("-j".into());
    v.extend(target.iter().map(|s| s.to_string()));
    v
}

/// The masquerade chain for network `net` and this host's subnet `pod`.
pub fn masq_rules(net: IpNet, pod: IpNet, random_fully: bool) -> ChainRules {
    let mc = match net {
        IpNet::V6(_) => "ff00::/8",
        IpNet::V4(_) => "224.0.0.0/4",
    };
    let (net, pod) = (net.trunc().to_string(), pod.trunc().to_string());
    let masq: &[&str] = if random_fully {
        &["MASQUERADE", "--random-fully"]
    } else {
        &["MASQUERADE"]
    };
    let c = MASQ_COMMENT;
    ChainRules {
        table: "nat",
        chain: MASQ_CHAIN,
        from: "POSTROUTING",
        jump: rule(&[], c, &[MASQ_CHAIN]),
        rules: vec![
            rule(&["-m", "mark", "--mark", KUBE_MARK], c, &["RETURN"]),
            rule(&["-s", &pod, "-d", &net], c, &["RETURN"]),
            rule(&["-s", &net, "-d", &pod], c, &["RETURN"]),
            rule(&["!", "-s", &net, "-d", &pod], c, &["RETURN"]),
            rule(&["-s", &net, "!", "-d", mc], c, masq),
            rule(&["!", "-s", &net, "-d", &net], c, masq),
        ],
    }
}

/// The forward-accept chain for network `net`.
pub fn forward_rules(net: IpNet) -> ChainRules {
    let net = net.trunc().to_string();
    let c = FORWARD_COMMENT;
    ChainRules {
        table: "filter",
        chain: FORWARD_CHAIN,
        from: "FORWARD",
        jump: rule(&[], c, &[FORWARD_CHAIN]),
        rules: vec![
            rule(&["-s", &net], c, &["ACCEPT"]),
            rule(&["-d", &net], c, &["ACCEPT"]),
        ],
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Whether every rule (and the jump) is in place, in number: a missing or extra rule means the
/// chain must be rebuilt.
pub fn in_place(ipt: &Iptables, c: &ChainRules) -> Result<bool> {
    if !ipt.chain_exists(c.table, c.chain)? || !ipt.exists(c.table, c.from, &refs(&c.jump))? {
        return Ok(false);
    }
    let listed = ipt.list_rules(c.table, c.chain)?;
    let count = listed.iter().filter(|l| l.starts_with("-A ")).count();
    if count != c.rules.len() {
        return Ok(false);
    }
    for r in &c.rules {
        if !ipt.exists(c.table, c.chain, &refs(r))? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Creates or rebuilds the chain and appends the jump to it (at the end of `from`, as upstream).
pub fn install(ipt: &Iptables, c: &ChainRules) -> Result<()> {
    ipt.ensure_chain(c.table, c.chain)?;
    ipt.flush_chain(c.table, c.chain)?;
    for r in &c.rules {
        ipt.append(c.table, c.chain, &refs(r))?;
    }
    ipt.append_unique(c.table, c.from, &refs(&c.jump))
}

/// Re-installs the chain if anything is missing; true when it had to.
pub fn ensure(ipt: &Iptables, c: &ChainRules) -> Result<bool> {
    if in_place(ipt, c)? {
        return Ok(false);
    }
    install(ipt, c)?;
    Ok(true)
}

/// Removes flanneld's chains in this family and the jumps to them (what iptables mode made,
/// weft's or upstream's), for a host that moves to nftables mode; true when there was any.
pub fn remove_all(ipt: &Iptables) -> Result<bool> {
    let mut found = false;
    for (table, from, chain, comment) in [
        ("nat", "POSTROUTING", MASQ_CHAIN, MASQ_COMMENT),
        ("filter", "FORWARD", FORWARD_CHAIN, FORWARD_COMMENT),
    ] {
        if !ipt.chain_exists(table, chain)? {
            continue;
        }
        found = true;
        let jump = rule(&[], comment, &[chain]);
        while ipt.exists(table, from, &refs(&jump))? {
            ipt.delete_rule(table, from, &refs(&jump))?;
        }
        ipt.clear_and_delete_chain(table, chain)?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masq_rules_match_upstream() {
        let c = masq_rules(
            "10.5.0.0/16".parse().unwrap(),
            "10.5.72.1/24".parse().unwrap(),
            true,
        );
        let lines: Vec<String> = c.rules.iter().map(|r| r.join(" ")).collect();
        assert_eq!(
            lines,
            vec![
                "-m mark --mark 0x4000/0x4000 -m comment --comment flanneld masq -j RETURN",
                "-s 10.5.72.0/24 -d 10.5.0.0/16 -m comment --comment flanneld masq -j RETURN",
                "-s 10.5.0.0/16 -d 10.5.72.0/24 -m comment --comment flanneld masq -j RETURN",
                "! -s 10.5.0.0/16 -d 10.5.72.0/24 -m comment --comment flanneld masq -j RETURN",
                "-s 10.5.0.0/16 ! -d 224.0.0.0/4 -m comment --comment flanneld masq -j MASQUERADE --random-fully",
                "! -s 10.5.0.0/16 -d 10.5.0.0/16 -m comment --comment flanneld masq -j MASQUERADE --random-fully",
            ]
        );
        assert_eq!(
            c.jump.join(" "),
            "-m comment --comment flanneld masq -j FLANNEL-POSTRTG"
        );
        let v6 = masq_rules(
            "fc00::/48".parse().unwrap(),
            "fc00:0:0:5::/64".parse().unwrap(),
            false,
        );
        assert!(v6.rules[4].join(" ").contains("! -d ff00::/8"));
        assert!(v6.rules[4].last().unwrap() == "MASQUERADE");
    }

    #[test]
    fn forward_rules_match_upstream() {
        let c = forward_rules("10.5.0.0/16".parse().unwrap());
        assert_eq!(c.table, "filter");
        assert_eq!(
            c.rules[0].join(" "),
            "-s 10.5.0.0/16 -m comment --comment flanneld forward -j ACCEPT"
        );
        assert_eq!(
            c.rules[1].join(" "),
            "-d 10.5.0.0/16 -m comment --comment flanneld forward -j ACCEPT"
        );
    }
}
