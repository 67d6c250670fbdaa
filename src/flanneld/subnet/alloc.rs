//! Choosing a free subnet: walk from SubnetMin to SubnetMax in SubnetLen steps, skip every subnet
//! that overlaps an existing lease, keep at most the first 100 free ones, pick one at random (as
//! upstream does, so hosts starting together rarely collide).

use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::config::NetworkConfig;

/// How many free candidates the random pick chooses among.
const CANDIDATES: usize = 100;

/// A free IPv4 subnet, or `None` when the range is exhausted. `pick(n)` returns an index below n.
pub fn choose_v4(
    cfg: &NetworkConfig,
    taken: &[Ipv4Net],
    pick: &mut dyn FnMut(usize) -> usize,
) -> Option<Ipv4Net> {
    let step = 1u64 << (32 - cfg.subnet_len as u32);
    let mut free = Vec::new();
    let mut at = u64::from(u32::from(cfg.subnet_min));
    let max = u64::from(u32::from(cfg.subnet_max));
    while at <= max && free.len() < CANDIDATES {
        let s = Ipv4Net::new(Ipv4Addr::from(at as u32), cfg.subnet_len).ok()?;
        if !taken.iter().any(|t| t.contains(&s) || s.contains(t)) {
            free.push(s);
        }
        at += step;
    }
    if free.is_empty() {
        return None;
    }
    let i = pick(free.len()).min(free.len() - 1);
    Some(free[i])
}

/// The same for IPv6.
pub fn choose_v6(
    cfg: &NetworkConfig,
    taken: &[Ipv6Net],
    pick: &mut dyn FnMut(usize) -> usize,
) -> Option<Ipv6Net> {
    let step = 1u128.checked_shl(128 - cfg.ipv6_subnet_len as u32)?;
    let mut free = Vec::new();
    let mut at = u128::from(cfg.ipv6_subnet_min);
    let max = u128::from(cfg.ipv6_subnet_max);
    while at <= max && free.len() < CANDIDATES {
        let s = Ipv6Net::new(Ipv6Addr::from(at), cfg.ipv6_subnet_len).ok()?;
        if !taken.iter().any(|t| t.contains(&s) || s.contains(t)) {
            free.push(s);
        }
        match at.checked_add(step) {
            Some(n) => at = n,
            None => break,
        }
    }
    if free.is_empty() {
        return None;
    }
    let i = pick(free.len()).min(free.len() - 1);
    Some(free[i])
}

/// A random index below `n` from the kernel's generator.
pub fn random_index(n: usize) -> usize {
    let mut b = [0u8; 8];
    if crate::sys::random::fill(&mut b).is_err() {
        // Fall back on the clock: the pick only spreads hosts, it protects nothing.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        b = t.to_ne_bytes();
    }
    (u64::from_ne_bytes(b) % n.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> NetworkConfig {
        NetworkConfig::parse(text).unwrap()
    }

    #[test]
    fn first_free_candidates_within_min_max() {
        let c = cfg(r#"{"Network":"10.0.0.0/16","SubnetMin":"10.0.5.0","SubnetMax":"10.0.7.0"}"#);
        let taken = ["10.0.5.0/24".parse().unwrap()];
        let mut seen = Vec::new();
        let mut first = |n: usize| {
            seen.push(n);
            0
        };
        assert_eq!(
            choose_v4(&c, &taken, &mut first),
            Some("10.0.6.0/24".parse().unwrap())
        );
        assert_eq!(seen, vec![2]);
        let mut last = |n: usize| n - 1;
        assert_eq!(
            choose_v4(&c, &taken, &mut last),
            Some("10.0.7.0/24".parse().unwrap())
        );
    }

    #[test]
    fn overlapping_leases_are_skipped_and_exhaustion_is_none() {
        let c = cfg(r#"{"Network":"10.0.0.0/16","SubnetMin":"10.0.1.0","SubnetMax":"10.0.2.0"}"#);
        // A wider lease (an old config's /23) covers both candidates.
        let taken = [
            "10.0.0.0/23".parse().unwrap(),
            "10.0.2.128/25".parse().unwrap(),
        ];
        assert_eq!(choose_v4(&c, &taken, &mut |_| 0), None);
    }

    #[test]
    fn at_most_one_hundred_candidates() {
        let c = cfg(r#"{"Network":"10.0.0.0/8"}"#);
        let mut n_seen = 0;
        let s = choose_v4(&c, &[], &mut |n| {
            n_seen = n;
            n - 1
        });
        assert_eq!(n_seen, 100);
        assert_eq!(s, Some("10.0.100.0/24".parse().unwrap()));
    }

    #[test]
    fn subnet_max_at_the_top_of_the_address_space_does_not_overflow() {
        let c = cfg(r#"{"Network":"255.255.255.0/24","SubnetLen":26}"#);
        assert_eq!(
            choose_v4(&c, &[], &mut |n| n - 1),
            Some("255.255.255.192/26".parse().unwrap())
        );
    }

    #[test]
    fn ipv6_choice() {
        let c = cfg(r#"{"Network":"10.0.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/62"}"#);
        let taken = ["fc00:0:0:1::/64".parse().unwrap()];
        assert_eq!(
            choose_v6(&c, &taken, &mut |n| {
                assert_eq!(n, 2);
                0
            }),
            Some("fc00:0:0:2::/64".parse().unwrap())
        );
    }

    #[test]
    fn random_index_is_in_range() {
        for n in 1..50 {
            assert!(random_index(n) < n);
        }
    }
}
