//! flanneld's rules in nftables mode (`"EnableNFTables": true`), laid out as upstream's: table
//! `ip flannel-ipv4` and table `ip6 flannel-ipv6`, both always made, each with a `postrtg` nat
//! chain when -ip-masq is on and a `forward` filter chain unless -iptables-forward-rules=false,
//! holding upstream's rules and comments in upstream's order.
//!
//! Where weft differs, and why:
//! - Upstream applies the tables, then each chain, as five transactions and never looks at them
//!   again. weft replaces both tables whole in one `nft -f` transaction (add, delete, add: the
//!   delete cannot fail on a missing table), so there is no moment with half the rules, and a
//!   chain a changed flag no longer asks for does not stay behind.
//! - After installing, weft keeps the tables' listing; the resync loop lists them again every
//!   period and re-installs when anything differs (a flush, a deleted or added rule, a deleted
//!   table).
//!
//! The rules are upstream's even where they differ from its iptables mode: the kube-proxy mark
//! is matched exactly (`meta mark 0x4000`, where iptables masks it), and the fourth masquerade
//! rule returns for anything not from our subnet headed into the network (iptables: anything
//! from outside the network headed into our subnet), which also leaves the host's own traffic to
//! remote pods unmasqueraded.

use anyhow::{Context, Result};
use ipnet::IpNet;

use super::Nft;

pub const V4_TABLE: &str = "flannel-ipv4";
pub const V6_TABLE: &str = "flannel-ipv6";
/// (family, table): the order both are made, listed and deleted in.
const TABLES: [(&str, &str); 2] = [("ip", V4_TABLE), ("ip6", V6_TABLE)];
const MASQ_CHAIN: &str = "postrtg";
const FORWARD_CHAIN: &str = "forward";
/// The kube-proxy mark, as upstream's nftables mode matches it.
const KUBE_MARK: &str = "0x4000";

/// What flanneld asks of one address family.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FamilyRules {
    /// The network and this host's subnet in it, when masquerading.
    pub masq: Option<(IpNet, IpNet)>,
    /// The network, when accepting its forwarded traffic.
    pub forward: Option<IpNet>,
}

/// Both tables' contents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tables {
    pub v4: FamilyRules,
    pub v6: FamilyRules,
    /// `masquerade fully-random` rather than `masquerade`.
    pub random_fully: bool,
}

impl Tables {
    /// The one transaction that replaces both tables. `object_comments`: whether this kernel
    /// takes comments on tables and chains (see [`Nft::object_comments`]).
    pub fn script(&self, object_comments: bool) -> String {
        let mut s = String::new();
        for ((family, table), rules) in TABLES.into_iter().zip([&self.v4, &self.v6]) {
            let comment = |text: &str| {
                if object_comments {
                    format!(" comment \"{text}\" ;")
                } else {
                    String::new()
                }
            };
            s += &format!("add table {family} {table}\ndelete table {family} {table}\n");
            if object_comments {
                s += &format!("add table {family} {table} {{ comment \"rules for {table}\" ; }}\n");
            } else {
                s += &format!("add table {family} {table}\n");
            }
            let prefix = format!("add rule {family} {table}");
            if let Some((net, pod)) = rules.masq {
                let c = comment("chain to manage traffic masquerading by flannel");
                s += &format!(
                    "add chain {family} {table} {MASQ_CHAIN} {{ type nat hook postrouting \
                     priority srcnat ;{c} }}\n"
                );
                for r in masq_rules(family, net, pod, self.random_fully) {
                    s += &format!("{prefix} {MASQ_CHAIN} {r}\n");
                }
            }
            if let Some(net) = rules.forward {
                let c = comment("chain to accept flannel traffic");
                s += &format!(
                    "add chain {family} {table} {FORWARD_CHAIN} {{ type filter hook forward \
                     priority filter ;{c} }}\n"
                );
                let net = net.trunc();
                s += &format!("{prefix} {FORWARD_CHAIN} {family} saddr {net} accept\n");
                s += &format!("{prefix} {FORWARD_CHAIN} {family} daddr {net} accept\n");
            }
        }
        s
    }
}

fn masq_rules(family: &str, net: IpNet, pod: IpNet, random_fully: bool) -> Vec<String> {
    let multicast = if family == "ip6" {
        "ff00::/8"
    } else {
        "224.0.0.0/4"
    };
    let (net, pod) = (net.trunc(), pod.trunc());
    let masq = if random_fully {
        "masquerade fully-random"
    } else {
        "masquerade"
    };
    let f = family;
    vec![
        format!("meta mark {KUBE_MARK} return"),
        format!("{f} saddr {pod} {f} daddr {net} return"),
        format!("{f} saddr {net} {f} daddr {pod} return"),
        format!("{f} saddr != {pod} {f} daddr {net} return"),
        format!("{f} saddr {net} {f} daddr != {multicast} {masq}"),
        format!("{f} saddr != {net} {f} daddr {net} {masq}"),
    ]
}

/// Whether the kernel takes `masquerade fully-random` (checked as upstream does, with a rule
/// nft only checks and never applies).
pub fn random_fully_supported(nft: &Nft) -> bool {
    nft.check_script(&format!(
        "add table ip {V4_TABLE}\nadd chain ip {V4_TABLE} masqueradeTest {{ type nat hook \
         postrouting priority srcnat ; }}\nadd rule ip {V4_TABLE} masqueradeTest ip saddr != \
         127.0.0.1 masquerade fully-random\n"
    ))
}

/// Both tables as `nft list` prints them, missing ones as empty text.
pub fn listing(nft: &Nft) -> Result<String> {
    let mut out = String::new();
    for (family, table) in TABLES {
        out += &nft.show(&["table", family, table])?.unwrap_or_default();
    }
    Ok(out)
}

/// The tables as installed, and their listing right after.
#[derive(Debug)]
pub struct Installed {
    nft: Nft,
    script: String,
    listing: String,
}

impl Installed {
    /// Replaces both tables with `tables`.
    pub fn install(nft: Nft, tables: &Tables) -> Result<Installed> {
        let script = tables.script(nft.object_comments());
        nft.run_script(&script)
            .context("failed to set up flannel's nftables tables")?;
        let listing = listing(&nft)?;
        Ok(Installed {
            nft,
            script,
            listing,
        })
    }

    /// Re-installs when the tables no longer list as they did; true when it had to.
    pub fn ensure(&mut self) -> Result<bool> {
        if listing(&self.nft)? == self.listing {
            return Ok(false);
        }
        self.nft
            .run_script(&self.script)
            .context("failed to restore flannel's nftables tables")?;
        self.listing = listing(&self.nft)?;
        Ok(true)
    }
}

/// Deletes both tables (what nftables mode made) where they exist; true when one did.
pub fn remove(nft: &Nft) -> Result<bool> {
    let mut script = String::new();
    for (family, table) in TABLES {
        if nft.show(&["table", family, table])?.is_some() {
            script += &format!("delete table {family} {table}\n");
        }
    }
    if script.is_empty() {
        return Ok(false);
    }
    nft.run_script(&script)
        .context("failed to delete flannel's nftables tables")?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_lays_out_upstreams_tables() {
        let t = Tables {
            v4: FamilyRules {
                masq: Some((
                    "10.5.0.0/16".parse().unwrap(),
                    "10.5.72.1/24".parse().unwrap(),
                )),
                forward: Some("10.5.0.0/16".parse().unwrap()),
            },
            v6: FamilyRules::default(),
            random_fully: true,
        };
        let s = t.script(true);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines,
            [
                "add table ip flannel-ipv4",
                "delete table ip flannel-ipv4",
                "add table ip flannel-ipv4 { comment \"rules for flannel-ipv4\" ; }",
                "add chain ip flannel-ipv4 postrtg { type nat hook postrouting priority srcnat ; \
                 comment \"chain to manage traffic masquerading by flannel\" ; }",
                "add rule ip flannel-ipv4 postrtg meta mark 0x4000 return",
                "add rule ip flannel-ipv4 postrtg ip saddr 10.5.72.0/24 ip daddr 10.5.0.0/16 return",
                "add rule ip flannel-ipv4 postrtg ip saddr 10.5.0.0/16 ip daddr 10.5.72.0/24 return",
                "add rule ip flannel-ipv4 postrtg ip saddr != 10.5.72.0/24 ip daddr 10.5.0.0/16 return",
                "add rule ip flannel-ipv4 postrtg ip saddr 10.5.0.0/16 ip daddr != 224.0.0.0/4 \
                 masquerade fully-random",
                "add rule ip flannel-ipv4 postrtg ip saddr != 10.5.0.0/16 ip daddr 10.5.0.0/16 \
                 masquerade fully-random",
                "add chain ip flannel-ipv4 forward { type filter hook forward priority filter ; \
                 comment \"chain to accept flannel traffic\" ; }",
                "add rule ip flannel-ipv4 forward ip saddr 10.5.0.0/16 accept",
                "add rule ip flannel-ipv4 forward ip daddr 10.5.0.0/16 accept",
                "add table ip6 flannel-ipv6",
                "delete table ip6 flannel-ipv6",
                "add table ip6 flannel-ipv6 { comment \"rules for flannel-ipv6\" ; }",
            ]
        );
        let bare = t.script(false);
        assert!(!bare.contains("comment"), "{bare}");
        assert_eq!(bare.lines().nth(2), Some("add table ip flannel-ipv4"));
    }

    #[test]
    fn ipv6_rules_use_the_ip6_family_and_multicast_range() {
        let t = Tables {
            v6: FamilyRules {
                masq: Some((
                    "fc00::/48".parse().unwrap(),
                    "fc00:0:0:5::/64".parse().unwrap(),
                )),
                forward: None,
            },
            ..Tables::default()
        };
        let s = t.script(true);
        assert!(s.contains(
            "add rule ip6 flannel-ipv6 postrtg ip6 saddr fc00::/48 ip6 daddr != ff00::/8 \
             masquerade\n"
        ));
        assert!(!s.contains("ip6 flannel-ipv6 forward"));
        assert!(!s.contains("flannel-ipv4 postrtg"));
    }
}
