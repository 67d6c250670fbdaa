//! The host-local allocation algorithm over any [`AddressStore`]: requested IPs, duplicate detection,
//! and round-robin iteration that resumes after the last address reserved in the range set.
//! Pure logic; the caller holds the store's lock around each call.

use super::range::{next_ip, RangeSet};
use anyhow::{bail, Result};
use ipnet::IpNet;
use std::net::IpAddr;

/// Where reservations live. The disk store is the real one; tests use a map.
pub trait AddressStore {
    /// Atomically claims `ip` for (id, ifname); `false` if someone holds it. On success also
    /// records `ip` as the last one reserved in range set `range_id`.
    fn reserve(&mut self, id: &str, ifname: &str, ip: IpAddr, range_id: usize) -> Result<bool>;
    /// The address last reserved in range set `range_id`, if any was recorded and is readable.
    fn last_reserved_ip(&self, range_id: usize) -> Option<IpAddr>;
    /// Addresses held by (id, ifname), including legacy id-only reservations.
    fn get_by_id(&self, id: &str, ifname: &str) -> Result<Vec<IpAddr>>;
}

/// One address handed out: with the subnet's prefix, and the range's gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub address: IpNet,
    pub gateway: IpAddr,
}

/// Walks a range set from a starting point, wrapping once around, skipping gateways.
#[derive(Debug)]
pub struct RangeIter<'a> {
    set: &'a RangeSet,
    idx: usize,
    cur: Option<IpAddr>,
    start: Option<IpAddr>,
}

impl<'a> RangeIter<'a> {
    /// Starts after `last` if it lies in the set, else at the first range's start.
    pub fn new(set: &'a RangeSet, last: Option<IpAddr>) -> RangeIter<'a> {
        if let Some(last) = last {
            if let Some(idx) = set.0.iter().position(|r| r.contains(last)) {
                return RangeIter {
                    set,
                    idx,
                    cur: Some(last),
                    start: None,
                };
            }
        }
        RangeIter {
            set,
            idx: 0,
            cur: None,
            start: None,
        }
    }
}

impl Iterator for RangeIter<'_> {
    type Item = Allocation;

    fn next(&mut self) -> Option<Allocation> {
        loop {
            let r = &self.set.0[self.idx];
            let cur = match self.cur {
                None => {
                    self.start = Some(r.start);
                    r.start
                }
                Some(c) => {
                    let n = if c == r.end {
                        self.idx = (self.idx + 1) % self.set.0.len();
                        self.set.0[self.idx].start
                    } else {
                        next_ip(c)
                    };
                    match self.start {
                        None => self.start = Some(n),
                        Some(s) if s == n => return None,
                        Some(_) => {}
                    }
                    n
                }
            };
            self.cur = Some(cur);
            let r = &self.set.0[self.idx];
            if cur == r.gateway {
                continue;
            }
            let address = IpNet::new(cur, r.subnet.prefix_len()).ok()?;
            return Some(Allocation {
                address,
                gateway: r.gateway,
            });
        }
    }
}

/// Reserves one address from range set `range_id` for (id, ifname): `requested` if given,
/// else the next free one round-robin.
pub fn allocate(
    store: &mut dyn AddressStore,
    set: &RangeSet,
    range_id: usize,
    id: &str,
    ifname: &str,
    requested: Option<IpAddr>,
) -> Result<Allocation> {
    let held = store.get_by_id(id, ifname)?;
    allocate_with_held(store, set, range_id, id, ifname, requested, &held)
}

/// [`allocate`] with the addresses (id, ifname) already holds looked up by the caller. The disk
/// store's lookup reads every reservation file, so host-local makes it before taking the lock:
/// only an ADD for this same attachment could add to that list meanwhile, and the spec forbids
/// a runtime to run two at once.
pub fn allocate_with_held(
    store: &mut dyn AddressStore,
    set: &RangeSet,
    range_id: usize,
    id: &str,
    ifname: &str,
    requested: Option<IpAddr>,
    held: &[IpAddr],
) -> Result<Allocation> {
    if let Some(ip) = requested {
        let r = set.range_for(ip)?;
        if ip == r.gateway {
            bail!("requested ip {ip} is subnet's gateway");
        }
        if !store.reserve(id, ifname, ip, range_id)? {
            bail!("requested IP address {ip} is not available in range set {set}");
        }
        return Ok(Allocation {
            address: IpNet::new(ip, r.subnet.prefix_len())?,
            gateway: r.gateway,
        });
    }
    // The spec forbids two ADDs for one attachment without a DEL between them.
    for &held in held {
        if set.contains(held) {
            bail!("{held} has been allocated to {id}, duplicate allocation is not allowed");
        }
    }
    let last = store.last_reserved_ip(range_id);
    for candidate in RangeIter::new(set, last) {
        if store.reserve(id, ifname, candidate.address.addr(), range_id)? {
            return Ok(candidate);
        }
    }
    bail!("no IP addresses available in range set: {set}")
}

#[cfg(test)]
mod tests;
