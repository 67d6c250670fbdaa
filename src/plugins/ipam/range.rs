//! Address ranges and range sets as host-local defines them: validation, defaults, membership
//! and overlap. Pure: no I/O.

use anyhow::{anyhow, bail, Result};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// A range as written in config (`ranges`, legacy top-level keys, `runtimeConfig.ipRanges`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeConf {
    #[serde(default)]
    pub subnet: String,
    #[serde(
        rename = "rangeStart",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub range_start: Option<String>,
    #[serde(rename = "rangeEnd", default, skip_serializing_if = "Option::is_none")]
    pub range_end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

/// The JSON keys of a range, for case-insensitive decoding.
pub const RANGE_KEYS: [&str; 4] = ["subnet", "rangeStart", "rangeEnd", "gateway"];

/// A validated range: every bound filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// The subnet (network address, prefix).
    pub subnet: IpNet,
    /// First address handed out (inclusive).
    pub start: IpAddr,
    /// Last address handed out (inclusive).
    pub end: IpAddr,
    /// Never handed out.
    pub gateway: IpAddr,
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

fn from_u128(n: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4((n as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(n.into()),
    }
}

/// The address after `ip` (wrapping), as Go's `ip.NextIP`.
pub fn next_ip(ip: IpAddr) -> IpAddr {
    let max = if ip.is_ipv4() {
        u32::MAX as u128
    } else {
        u128::MAX
    };
    let n = to_u128(ip);
    from_u128(if n == max { 0 } else { n + 1 }, ip)
}

fn parse_ip(s: &str) -> Result<IpAddr> {
    s.trim()
        .parse()
        .map_err(|_| anyhow!("invalid IP address {s:?}"))
}

/// Parses an IP given as `ip` or `ip/prefix` (the prefix is dropped), as requested IPs are.
pub fn parse_ip_maybe_cidr(s: &str) -> Result<IpAddr> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n.addr());
    }
    s.parse().map_err(|_| anyhow!("invalid IP {s:?}"))
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

impl Range {
    /// Validates `conf` and fills in defaults: start = network+1, end = broadcast-1 (IPv4) or
    /// the last address (IPv6), gateway = network+1.
    pub fn from_conf(conf: &RangeConf) -> Result<Range> {
        let given: IpNet = conf
            .subnet
            .trim()
            .parse()
            .map_err(|_| anyhow!("invalid CIDR address: {}", conf.subnet))?;
        let bits = if given.addr().is_ipv4() { 32 } else { 128 };
        if given.prefix_len() > bits - 2 {
            bail!("Network {given} too small to allocate from");
        }
        if given.addr() != given.network() {
            bail!(
                "Network has host bits set. For a subnet mask of length {} the network address is {}",
                given.prefix_len(),
                given.network()
            );
        }
        let subnet = given.trunc();
        let gateway = match &conf.gateway {
            Some(g) if !g.is_empty() => parse_ip(g)?,
            _ => next_ip(subnet.network()),
        };
        let given_start = match &conf.range_start {
            Some(s) if !s.is_empty() => Some(parse_ip(s)?),
            _ => None,
        };
        let given_end = match &conf.range_end {
            Some(s) if !s.is_empty() => Some(parse_ip(s)?),
            _ => None,
        };
        // Bounds are checked against each other the way Go's Contains does while they are being
        // filled in: a start after a given end is "not in network".
        let in_bounds = |ip: IpAddr, lo: Option<IpAddr>, hi: Option<IpAddr>| {
            same_family(ip, subnet.addr())
                && subnet.contains(&ip)
                && lo.is_none_or(|l| to_u128(ip) >= to_u128(l))
                && hi.is_none_or(|h| to_u128(ip) <= to_u128(h))
        };
        let start = match given_start {
            Some(s) if !in_bounds(s, None, given_end) => {
                bail!("RangeStart {s} not in network {subnet}")
            }
            Some(s) => s,
            None => next_ip(subnet.network()),
        };
        let end = match given_end {
            Some(e) if !in_bounds(e, Some(start), None) => {
                bail!("RangeEnd {e} not in network {subnet}")
            }
            Some(e) => e,
            None => match subnet {
                IpNet::V4(n) => IpAddr::V4((u32::from(n.broadcast()) - 1).into()),
                IpNet::V6(n) => IpAddr::V6(n.broadcast()),
            },
        };
        Ok(Range {
            subnet,
            start,
            end,
            gateway,
        })
    }

    /// True if `ip` is inside the subnet and between start and end (inclusive).
    pub fn contains(&self, ip: IpAddr) -> bool {
        same_family(ip, self.start)
            && self.subnet.contains(&ip)
            && to_u128(ip) >= to_u128(self.start)
            && to_u128(ip) <= to_u128(self.end)
    }

    /// True if the two ranges share an address.
    pub fn overlaps(&self, other: &Range) -> bool {
        same_family(self.start, other.start)
            && (self.contains(other.start)
                || self.contains(other.end)
                || other.contains(self.start)
                || other.contains(self.end))
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// Ranges of one family that together give one address per attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet(pub Vec<Range>);

impl RangeSet {
    /// Validates every range, then that they share a family and do not overlap.
    pub fn from_conf(confs: &[RangeConf]) -> Result<RangeSet> {
        if confs.is_empty() {
            bail!("empty range set");
        }
        let ranges = confs
            .iter()
            .map(Range::from_conf)
            .collect::<Result<Vec<_>>>()?;
        let v4 = ranges[0].start.is_ipv4();
        if ranges.iter().any(|r| r.start.is_ipv4() != v4) {
            bail!("mixed address families");
        }
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[i + 1..] {
                if a.overlaps(b) {
                    bail!("subnets {a} and {b} overlap");
                }
            }
        }
        Ok(RangeSet(ranges))
    }

    pub fn is_ipv4(&self) -> bool {
        self.0.first().is_some_and(|r| r.start.is_ipv4())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|r| r.contains(ip))
    }

    /// The range holding `ip`.
    pub fn range_for(&self, ip: IpAddr) -> Result<&Range> {
        self.0
            .iter()
            .find(|r| r.contains(ip))
            .ok_or_else(|| anyhow!("{ip} not in range set {self}"))
    }

    pub fn overlaps(&self, other: &RangeSet) -> bool {
        self.0.iter().any(|a| other.0.iter().any(|b| a.overlaps(b)))
    }
}

impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|r| r.to_string()).collect();
        write!(f, "{}", parts.join(","))
    }
}

#[cfg(test)]
mod tests;
