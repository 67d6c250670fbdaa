//! IP masquerade for container addresses (the reference's `pkg/ip` ipmasq helpers): traffic
//! from a container IP to anything outside its subnet, except multicast, leaves with the host's
//! address. Two backends, named and filled exactly like the reference so either implementation
//! can tear down what the other set up:
//!
//! - iptables: per attachment a `nat` chain `CNI-<24 hex of sha512(net + id)>` holding
//!   `-d <ip/prefix> -j ACCEPT` and `! -d <multicast> -j MASQUERADE`, entered from POSTROUTING by
//!   `-s <ip> -j <chain>`; all commented `name: "<net>" id: "<id>"`. The key ignores ifname, so
//!   two interfaces of one container on one network share the chain (a reference quirk, kept).
//! - nftables: table `inet cni_plugins_masquerade`, one rule per IP in `masq_checks`, whose
//!   comment starts with a hash of (net, ifname, id) so teardown needs no addresses.

use super::iptables::{self, Iptables};
use super::nft::{self, Nft};
use anyhow::{anyhow, bail, Context, Result};
use ipnet::IpNet;
use serde_json::Value;
use sha2::{Digest, Sha512};
use std::fmt::Write;

const NFT_TABLE: &str = "cni_plugins_masquerade";
const NFT_CHAIN: &str = "masq_checks";
/// knftables' `CommentLengthMax`; nft itself refuses longer comments.
const NFT_COMMENT_MAX: usize = 128;

/// Where a plugin's masquerade rules live (`ipMasqBackend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasqBackend {
    Iptables,
    Nftables,
}

impl MasqBackend {
    /// `ipMasqBackend` as a config writes it; `None` for absent or empty, which
    /// [`setup_ip_masq`] takes as iptables unless only nftables is usable.
    pub fn parse(name: Option<&str>) -> Result<Option<MasqBackend>> {
        match name {
            None | Some("") => Ok(None),
            Some("iptables") => Ok(Some(MasqBackend::Iptables)),
            Some("nftables") => Ok(Some(MasqBackend::Nftables)),
            Some(other) => bail!("unknown ipmasq backend {other:?}"),
        }
    }
}

/// Installs masquerading for `ips` (each an address with its prefix length, as in a CNI result).
pub fn setup_ip_masq(
    backend: Option<MasqBackend>,
    ips: &[IpNet],
    net_name: &str,
    ifname: &str,
    container_id: &str,
) -> Result<()> {
    let backend = match backend {
        Some(b) => b,
        None if !iptables::usable() && nft::usable() => MasqBackend::Nftables,
        None => MasqBackend::Iptables,
    };
    match backend {
        MasqBackend::Iptables => setup_iptables(ips, net_name, container_id),
        MasqBackend::Nftables => setup_nftables(ips, net_name, ifname, container_id),
    }
}

/// Undoes [`setup_ip_masq`]. Both backends are cleaned whatever the config says, because the
/// attachment may have been made by another version or configuration; a backend's failure only
/// counts if that backend is usable here. The nftables side needs no `ips`.
pub fn teardown_ip_masq(
    ips: &[IpNet],
    net_name: &str,
    ifname: &str,
    container_id: &str,
) -> Result<()> {
    let mut errs = Vec::new();
    if let Err(e) = teardown_iptables(ips, net_name, container_id) {
        if iptables::usable() {
            errs.push(format!("{e:#}"));
        }
    }
    if let Err(e) = teardown_nftables(net_name, ifname, container_id) {
        if nft::usable() {
            errs.push(format!("{e:#}"));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(errs.join("\n")))
    }
}

/// The iptables chain of an attachment: `CNI-` and 24 hex digits, 28 characters in all (the
/// iptables limit is 28 usable characters).
pub fn chain_name(net_name: &str, container_id: &str) -> String {
    hash_with_prefix(28, "CNI-", &format!("{net_name}{container_id}"))
}

/// The comment on every iptables rule of an attachment (Go's `name: %q id: %q`).
pub fn iptables_comment(net_name: &str, container_id: &str) -> String {
    format!(
        "name: {} id: {}",
        go_quote(net_name),
        go_quote(container_id)
    )
}

/// The start of the nftables comment shared by every rule of one attachment.
pub fn nft_instance_hash(net_name: &str, ifname: &str, container_id: &str) -> String {
    format!(
        "{}-{}",
        hash_with_prefix(16, "", net_name),
        hash_with_prefix(16, "", &format!("{ifname}:{container_id}"))
    )
}

/// The comment on each nftables rule: the hash, then a description cut to nft's limit.
pub fn nft_comment(net_name: &str, ifname: &str, container_id: &str) -> String {
    let mut c = format!(
        "{}, net: {}, if: {}, id: {}",
        nft_instance_hash(net_name, ifname, container_id),
        net_name.replace('"', ""),
        ifname.replace('"', ""),
        container_id.replace('"', "")
    );
    if c.len() > NFT_COMMENT_MAX {
        let mut end = NFT_COMMENT_MAX;
        while !c.is_char_boundary(end) {
            end -= 1;
        }
        c.truncate(end);
    }
    c
}

fn setup_iptables(ips: &[IpNet], net_name: &str, container_id: &str) -> Result<()> {
    let chain = chain_name(net_name, container_id);
    let comment = iptables_comment(net_name, container_id);
    for ip in ips {
        let v6 = matches!(ip, IpNet::V6(_));
        let ipt = Iptables::new(v6)?;
        let multicast = if v6 { "ff00::/8" } else { "224.0.0.0/4" };
        let tag = ["-m", "comment", "--comment", &comment];
        ipt.ensure_chain("nat", &chain)?;
        // The address keeps its host bits (`10.1.2.3/24`), as the reference passes it;
        // iptables stores and shows the network (`10.1.2.0/24`).
        let dst = ip.to_string();
        ipt.append_unique(
            "nat",
            &chain,
            &[&["-d", &dst, "-j", "ACCEPT"], &tag[..]].concat(),
        )?;
        ipt.append_unique(
            "nat",
            &chain,
            &[&["!", "-d", multicast, "-j", "MASQUERADE"], &tag[..]].concat(),
        )?;
        let src = ip.addr().to_string();
        ipt.append_unique(
            "nat",
            "POSTROUTING",
            &[&["-s", &src, "-j", &chain], &tag[..]].concat(),
        )?;
    }
    Ok(())
}

/// All POSTROUTING jumps go before any chain is deleted: the chain is shared by every address
/// of the family, and the kernel refuses to delete a chain that a jump still names. (The
/// reference works address by address and so reports a spurious EBUSY when a container has two
/// addresses of one family, although it ends up clean.)
/// Removes the attachment's chain and every POSTROUTING jump into it, in both families. The
/// jumps are found by listing POSTROUTING, not from `ips`, so a DEL whose namespace (and with
/// it the addresses) is already gone still cleans up — the reference leaks the chain then.
fn teardown_iptables(ips: &[IpNet], net_name: &str, container_id: &str) -> Result<()> {
    let chain = chain_name(net_name, container_id);
    let mut errs = Vec::new();
    for v6 in [false, true] {
        let ipt = match Iptables::new(v6) {
            Ok(ipt) => ipt,
            // A missing ip6tables only matters if there were IPv6 addresses to clean.
            Err(e) if !v6 || ips.iter().any(|i| matches!(i, IpNet::V6(_))) => {
                errs.push(format!("{e:#}"));
                continue;
            }
            Err(_) => continue,
        };
        match ipt.chain_exists("nat", &chain) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                errs.push(format!("{e:#}"));
                continue;
            }
        }
        let jump = format!("-j {chain}");
        let rules = match ipt.list_rules("nat", "POSTROUTING") {
            Ok(r) => r,
            Err(e) => {
                errs.push(format!("{e:#}"));
                continue;
            }
        };
        for line in rules
            .iter()
            .filter(|l| l.ends_with(&jump) || l.contains(&format!("{jump} ")))
        {
            let argv = split_rule(line);
            // `-A POSTROUTING <rule...>`
            let rule: Vec<&str> = argv.iter().skip(2).map(String::as_str).collect();
            if let Err(e) = ipt.delete_rule("nat", "POSTROUTING", &rule) {
                errs.push(format!("{e:#}"));
            }
        }
        if let Err(e) = ipt.clear_and_delete_chain("nat", &chain) {
            errs.push(format!("{e:#}"));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(errs.join("\n")))
    }
}

/// Splits a line of `iptables -S` back into arguments: words, with `"..."` (and `\"` inside)
/// as one argument.
fn split_rule(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped, mut any) = (false, false, false);
    for c in line.chars() {
        match c {
            _ if escaped => {
                cur.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            _ => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn setup_nftables(ips: &[IpNet], net_name: &str, ifname: &str, container_id: &str) -> Result<()> {
    let nft = Nft::new()?;
    let stale = find_rules(&nft, &nft_instance_hash(net_name, ifname, container_id))?;
    let comment = nft::quote(&nft_comment(net_name, ifname, container_id))?;
    let t = format!("inet {NFT_TABLE}");
    let mut s = String::new();
    // One transaction: the base chain is flushed and refilled every time, so a partial or older
    // layout is repaired, and the attachment's earlier rules are replaced by the new ones.
    if nft.object_comments() {
        s += &format!("add table {t} {{ comment \"Masquerading for plugins from github.com/containernetworking/plugins\" ; }}\n");
        s += &format!("add chain {t} {NFT_CHAIN} {{ comment \"Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet\" ; }}\n");
    } else {
        s += &format!("add table {t}\nadd chain {t} {NFT_CHAIN}\n");
    }
    s += &format!("add chain {t} postrouting {{ type nat hook postrouting priority 100 ; }}\n");
    s += &format!("flush chain {t} postrouting\n");
    s += &format!("add rule {t} postrouting ip daddr == 224.0.0.0/4  return\n");
    s += &format!("add rule {t} postrouting ip6 daddr == ff00::/8  return\n");
    s += &format!("add rule {t} postrouting goto {NFT_CHAIN}\n");
    for handle in stale {
        let _ = writeln!(s, "delete rule {t} {NFT_CHAIN} handle {handle}");
    }
    for ip in ips {
        let fam = if matches!(ip, IpNet::V6(_)) {
            "ip6"
        } else {
            "ip"
        };
        let _ = writeln!(
            s,
            "add rule {t} {NFT_CHAIN} {fam} saddr == {} {fam} daddr != {} masquerade comment {comment}",
            ip.addr(),
            ip.trunc()
        );
    }
    nft.run_script(&s)
        .context("failed to set up nftables masquerade")
}

fn teardown_nftables(net_name: &str, ifname: &str, container_id: &str) -> Result<()> {
    let nft = Nft::new()?;
    let handles = find_rules(&nft, &nft_instance_hash(net_name, ifname, container_id))?;
    if handles.is_empty() {
        return Ok(());
    }
    let mut s = String::new();
    for h in handles {
        let _ = writeln!(s, "delete rule inet {NFT_TABLE} {NFT_CHAIN} handle {h}");
    }
    nft.run_script(&s)
        .context("failed to tear down nftables masquerade")
}

/// Handles of the `masq_checks` rules whose comment starts with `prefix`; none if the chain is
/// not there yet.
fn find_rules(nft: &Nft, prefix: &str) -> Result<Vec<u64>> {
    let rules = nft.list_rules("inet", NFT_TABLE, NFT_CHAIN)?;
    Ok(rules
        .iter()
        .filter(|r| {
            r.get("comment")
                .and_then(Value::as_str)
                .is_some_and(|c| c.starts_with(prefix))
        })
        .filter_map(|r| r.get("handle").and_then(Value::as_u64))
        .collect())
}

/// The reference's `MustFormatHashWithPrefix`: `prefix` then the hex sha512 of `input`, cut to
/// `len` characters.
pub(crate) fn hash_with_prefix(len: usize, prefix: &str, input: &str) -> String {
    assert!(prefix.len() < len && len <= 128, "invalid length");
    let mut s = prefix.to_string();
    for b in Sha512::digest(input.as_bytes()) {
        let _ = write!(s, "{b:02x}");
    }
    s.truncate(len);
    s
}

/// Go's `%q` for the characters a network name or container id can realistically hold: the
/// comment must match the reference's byte for byte or `iptables -C`/`-D` would not find rules
/// the Go plugin made.
fn go_quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\x07' => q.push_str("\\a"),
            '\x08' => q.push_str("\\b"),
            '\x0c' => q.push_str("\\f"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            '\x0b' => q.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(q, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iptables_save_lines_split_back_into_arguments() {
        let line = r#"-A POSTROUTING -s 10.1.2.2/32 -m comment --comment "name: \"mynet\" id: \"c1\"" -j CNI-x"#;
        assert_eq!(
            split_rule(line),
            [
                "-A",
                "POSTROUTING",
                "-s",
                "10.1.2.2/32",
                "-m",
                "comment",
                "--comment",
                r#"name: "mynet" id: "c1""#,
                "-j",
                "CNI-x"
            ]
        );
        assert_eq!(
            split_rule(r#"-A X --comment """#),
            ["-A", "X", "--comment", ""]
        );
    }

    // Expected values from the reference's own tests (pkg/ip/ipmasq_nftables_linux_test.go).
    #[test]
    fn nft_comment_matches_reference() {
        assert_eq!(
            nft_comment("unit-test", "eth0", "one"),
            "6fd94d501e58f0aa-287fc69eff0574a2, net: unit-test, if: eth0, id: one"
        );
        assert_eq!(
            nft_comment("alternate", "net1", "three"),
            "82783ef24bdc7036-acb19d111858e348, net: alternate, if: net1, id: three"
        );
    }

    #[test]
    fn nft_comment_is_cut_to_128_bytes_on_a_char_boundary() {
        let c = nft_comment("net\"", "eth0", &"é".repeat(100));
        assert!(c.len() <= NFT_COMMENT_MAX && c.len() >= NFT_COMMENT_MAX - 1);
        assert!(c.contains("net: net, "));
    }

    #[test]
    fn chain_name_is_28_chars() {
        let c = chain_name("mynet", "dummy");
        assert_eq!(c.len(), 28);
        assert!(c.starts_with("CNI-"));
        assert!(c[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(c, chain_name("mynet", "dummy2"));
    }

    #[test]
    fn iptables_comment_quotes_like_go() {
        assert_eq!(
            iptables_comment("mynet", "abc"),
            r#"name: "mynet" id: "abc""#
        );
        assert_eq!(go_quote("a\"b\\c\n\x01"), r#""a\"b\\c\n\x01""#);
    }

    #[test]
    fn unknown_backend_is_refused_before_anything_runs() {
        let e = MasqBackend::parse(Some("pf")).unwrap_err();
        assert_eq!(e.to_string(), r#"unknown ipmasq backend "pf""#);
    }
}
