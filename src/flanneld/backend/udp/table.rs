//! Which host holds which subnet: the udp backend's forwarding table, kept from the lease watch.
//!
//! Upstream searches a list (moving the last hit to the front); weft looks up one hash map per
//! prefix length present, longest first, so a network of a thousand hosts costs the same per
//! packet as one of three. The data-plane thread publishes a new table on every lease change;
//! the packet thread picks it up between batches by comparing a generation number, so the hot
//! path takes no lock.

use ipnet::Ipv4Net;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Subnet -> peer endpoint (PublicIP and the network's udp port).
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// (prefix length, network address as u32 -> peer), longest prefix first.
    by_len: Vec<(u8, HashMap<u32, SocketAddrV4>)>,
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

impl Table {
    /// Sets (or replaces) the peer for `net`.
    pub fn insert(&mut self, net: Ipv4Net, peer: SocketAddrV4) {
        let len = net.prefix_len();
        let key = u32::from(net.network());
        match self.by_len.iter_mut().find(|(l, _)| *l == len) {
            Some((_, m)) => {
                m.insert(key, peer);
            }
            None => {
                self.by_len.push((len, HashMap::from([(key, peer)])));
                self.by_len.sort_by_key(|e| std::cmp::Reverse(e.0));
            }
        }
    }

    /// Forgets `net`; returns whether it was there.
    pub fn remove(&mut self, net: Ipv4Net) -> bool {
        let len = net.prefix_len();
        let key = u32::from(net.network());
        let Some(i) = self.by_len.iter().position(|(l, _)| *l == len) else {
            return false;
        };
        let found = self.by_len[i].1.remove(&key).is_some();
        if self.by_len[i].1.is_empty() {
            self.by_len.remove(i);
        }
        found
    }

    /// The peer holding the longest subnet that contains `dst`.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<SocketAddrV4> {
        let a = u32::from(dst);
        self.by_len
            .iter()
            .find_map(|(len, m)| m.get(&(a & mask(*len))).copied())
    }

    pub fn len(&self) -> usize {
        self.by_len.iter().map(|(_, m)| m.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_len.is_empty()
    }
}

/// The table as published to the packet thread.
#[derive(Default)]
pub struct Shared {
    generation: AtomicU64,
    current: Mutex<Arc<Table>>,
}

impl Shared {
    /// Applies `f` to a copy of the table and publishes the result.
    pub fn update(&self, f: impl FnOnce(&mut Table)) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = Table::clone(&cur);
        f(&mut next);
        *cur = Arc::new(next);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// A copy of the current table.
    pub fn snapshot(&self) -> Arc<Table> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The packet thread's view: refreshed between batches, read without locking in between.
pub struct Reader {
    shared: Arc<Shared>,
    generation: u64,
    table: Arc<Table>,
}

impl Reader {
    pub fn new(shared: Arc<Shared>) -> Reader {
        let generation = shared.generation.load(Ordering::Acquire);
        let table = shared.snapshot();
        Reader {
            shared,
            generation,
            table,
        }
    }

    /// The newest table; takes the lock only when a change was published.
    pub fn refresh(&mut self) -> &Table {
        let g = self.shared.generation.load(Ordering::Acquire);
        if g != self.generation {
            self.generation = g;
            self.table = self.shared.snapshot();
        }
        &self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(last: u8) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 168, 77, last), 8285)
    }

    #[test]
    fn finds_the_host_of_a_subnet() {
        let mut t = Table::default();
        assert_eq!(t.lookup(Ipv4Addr::new(10, 5, 2, 3)), None);
        t.insert("10.5.2.0/24".parse().unwrap(), ep(2));
        t.insert("10.5.3.0/24".parse().unwrap(), ep(3));
        assert_eq!(t.lookup(Ipv4Addr::new(10, 5, 2, 3)), Some(ep(2)));
        assert_eq!(t.lookup(Ipv4Addr::new(10, 5, 3, 255)), Some(ep(3)));
        assert_eq!(t.lookup(Ipv4Addr::new(10, 5, 4, 1)), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn replace_and_remove() {
        let mut t = Table::default();
        let n: Ipv4Net = "10.5.2.0/24".parse().unwrap();
        t.insert(n, ep(2));
        t.insert(n, ep(9));
        assert_eq!(t.lookup(Ipv4Addr::new(10, 5, 2, 1)), Some(ep(9)));
        assert_eq!(t.len(), 1);
        assert!(t.remove(n));
        assert!(!t.remove(n));
        assert!(t.is_empty());
        assert_eq!(t.lookup(Ipv4Addr::new(10, 5, 2, 1)), None);
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = Table::default();
        t.insert("10.5.0.0/16".parse().unwrap(), ep(1));
        t.insert("10.5.2.0/24".parse().unwrap(), ep(2));
        t.insert("10.5.2.128/25".parse().unwrap(), ep(3));
        assert_eq!(t.lookup(Ipv4Addr::new(10, 5, 2, 200)), Some(ep(3)));
        assert_eq!(t.lookup(Ipv4Addr::new(10, 5, 2, 100)), Some(ep(2)));
        assert_eq!(t.lookup(Ipv4Addr::new(10, 5, 7, 1)), Some(ep(1)));
        t.insert("0.0.0.0/0".parse().unwrap(), ep(4));
        assert_eq!(t.lookup(Ipv4Addr::new(8, 8, 8, 8)), Some(ep(4)));
    }

    #[test]
    fn a_reader_sees_published_changes() {
        let shared = Arc::new(Shared::default());
        let mut r = Reader::new(shared.clone());
        assert!(r.refresh().is_empty());
        shared.update(|t| t.insert("10.5.2.0/24".parse().unwrap(), ep(2)));
        assert_eq!(r.refresh().lookup(Ipv4Addr::new(10, 5, 2, 1)), Some(ep(2)));
        shared.update(|t| {
            t.remove("10.5.2.0/24".parse().unwrap());
        });
        assert_eq!(r.refresh().lookup(Ipv4Addr::new(10, 5, 2, 1)), None);
    }
}
