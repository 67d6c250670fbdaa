//! flanneld's masquerade and forward rules: iptables chains (the default) or nftables tables
//! (`"EnableNFTables": true`), installed once the lease is known and kept by a resync thread.
//!
//! A host that switches mode loses the other mode's rules at start, as upstream: nftables mode
//! deletes the FLANNEL-POSTRTG and FLANNEL-FWD chains and the jumps to them (upstream only
//! flushes the nat chain and leaves the jump and the filter chain), iptables mode deletes the
//! flannel-ipv4 and flannel-ipv6 tables. The two never run side by side: iptables-nft keeps its
//! rules in nftables tables of its own (`ip nat`, `ip filter`), and a packet would go through
//! both sets, so stale rules of the old mode (an old subnet's, say) would still act.

use anyhow::{Context, Result};
use ipnet::IpNet;
use std::time::Duration;

use crate::flanneld::subnet::config::NetworkConfig;
use crate::flanneld::subnet::manager::OwnLease;
use crate::sys::firewall::flannel::{self as chains, ChainRules};
use crate::sys::firewall::flannel_nft::{self as tables, FamilyRules, Installed, Tables};
use crate::sys::firewall::{Iptables, Nft};

/// What the flags and the network config ask for.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub nftables: bool,
    pub ip_masq: bool,
    pub random_fully: bool,
    pub forward: bool,
}

/// The rules one mode keeps in place.
enum Rules {
    /// (IPv6?, chain) pairs.
    Iptables(Vec<(bool, ChainRules)>),
    Nftables(Installed),
}

impl Rules {
    /// Puts back whatever went missing; logs what it restored.
    fn ensure(&mut self) -> Result<()> {
        match self {
            Rules::Iptables(set) => {
                for (v6, c) in set.iter() {
                    let ipt = Iptables::new(*v6)?;
                    if chains::ensure(&ipt, c)? {
                        log::info!(
                            "installed {} rules in {}/{}",
                            c.rules.len(),
                            c.table,
                            c.chain
                        );
                    }
                }
            }
            Rules::Nftables(t) => {
                if t.ensure()? {
                    log::info!(
                        "restored the nftables tables {} and {}",
                        tables::V4_TABLE,
                        tables::V6_TABLE
                    );
                }
            }
        }
        Ok(())
    }
}

/// Removes the other mode's rules, installs this mode's and keeps them every `every` on a
/// thread of its own.
pub fn start(w: Wanted, cfg: &NetworkConfig, own: &OwnLease, every: Duration) -> Result<()> {
    let mut rules = if w.nftables {
        remove_iptables_rules();
        let nft = Nft::new().context("EnableNFTables is set, but nftables cannot be used")?;
        let wants_random_fully = w.random_fully && w.ip_masq;
        let random_fully = wants_random_fully && tables::random_fully_supported(&nft);
        if wants_random_fully && !random_fully {
            log::warn!("nftables: masquerade fully-random is not supported here; using masquerade");
        }
        let t = Tables {
            random_fully,
            ..nft_tables(w, cfg, own)
        };
        log::info!(
            "nftables mode: setting up {} and {}",
            tables::V4_TABLE,
            tables::V6_TABLE
        );
        Rules::Nftables(Installed::install(nft, &t)?)
    } else {
        remove_nftables_rules();
        let set = iptables_chains(w, cfg, own);
        if set.is_empty() {
            return Ok(());
        }
        let mut r = Rules::Iptables(set);
        r.ensure()?;
        r
    };
    std::thread::Builder::new()
        .name("firewall".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            if let Err(e) = rules.ensure() {
                log::warn!("firewall resync: {e:#}");
            }
        })
        .context("failed to start the firewall resync thread")?;
    Ok(())
}

fn iptables_chains(w: Wanted, cfg: &NetworkConfig, own: &OwnLease) -> Vec<(bool, ChainRules)> {
    let mut v = Vec::new();
    let net4 = IpNet::V4(cfg.network());
    if w.ip_masq {
        v.push((
            false,
            chains::masq_rules(net4, IpNet::V4(own.key.ipv4), w.random_fully),
        ));
        if let (Some(n6), Some(s6)) = (cfg.ipv6_network, own.key.ipv6) {
            v.push((
                true,
                chains::masq_rules(n6.into(), s6.into(), w.random_fully),
            ));
        }
    }
    if w.forward {
        v.push((false, chains::forward_rules(net4)));
        if let Some(n6) = cfg.ipv6_network {
            v.push((true, chains::forward_rules(n6.into())));
        }
    }
    v
}

fn nft_tables(w: Wanted, cfg: &NetworkConfig, own: &OwnLease) -> Tables {
    let net4 = IpNet::V4(cfg.network());
    let v6 = cfg.ipv6_network.map(IpNet::V6);
    Tables {
        v4: FamilyRules {
            masq: w.ip_masq.then_some((net4, IpNet::V4(own.key.ipv4))),
            forward: w.forward.then_some(net4),
        },
        v6: FamilyRules {
            masq: v6.zip(own.key.ipv6.map(IpNet::V6)).filter(|_| w.ip_masq),
            forward: v6.filter(|_| w.forward),
        },
        random_fully: w.random_fully,
    }
}

/// iptables mode's chains go when nftables mode starts. Failing to remove them is logged, not
/// fatal: the new mode's rules still work, and a host without iptables has none to remove.
fn remove_iptables_rules() {
    for v6 in [false, true] {
        let Ok(ipt) = Iptables::new(v6) else { continue };
        match chains::remove_all(&ipt) {
            Ok(true) => log::info!(
                "removed the {} rules of iptables mode",
                if v6 { "ip6tables" } else { "iptables" }
            ),
            Ok(false) => {}
            Err(e) => log::warn!("failed to remove the rules of iptables mode: {e:#}"),
        }
    }
}

/// nftables mode's tables go when iptables mode starts (a host without nft has none).
fn remove_nftables_rules() {
    let Ok(nft) = Nft::new() else { return };
    match tables::remove(&nft) {
        Ok(true) => log::info!(
            "removed the nftables tables {} and {} of nftables mode",
            tables::V4_TABLE,
            tables::V6_TABLE
        ),
        Ok(false) => {}
        Err(e) => log::warn!("failed to remove the tables of nftables mode: {e:#}"),
    }
}
