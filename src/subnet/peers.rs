//! The other hosts' leases as the data plane needs them: watch events and snapshots turned into
//! "program this peer" and "forget this peer" changes. A removal carries the lease as it was last
//! seen, so a backend still knows the MAC and address to delete.

use ipnet::Ipv4Net;
use std::collections::BTreeMap;

use super::etcd::LeaseEvent;
use super::lease::{Lease, LeaseAttrs, LeaseKey};

/// What a lease event means for this host.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerChange {
    Add(Lease),
    Remove(Lease),
    /// Our own key was deleted (by an operator or by expiry).
    OwnRemoved,
    /// Our own key now names another host.
    OwnTaken(LeaseAttrs),
}

/// The set of known peers.
#[derive(Debug, Clone)]
pub struct PeerSet {
    own: LeaseKey,
    own_public_ip: std::net::Ipv4Addr,
    peers: BTreeMap<Ipv4Net, Lease>,
}

impl PeerSet {
    pub fn new(own: LeaseKey, own_public_ip: std::net::Ipv4Addr) -> PeerSet {
        PeerSet {
            own,
            own_public_ip,
            peers: BTreeMap::new(),
        }
    }

    pub fn peers(&self) -> impl Iterator<Item = &Lease> {
        self.peers.values()
    }

    fn is_own(&self, k: &LeaseKey) -> bool {
        k.ipv4 == self.own.ipv4
    }

    fn add(&mut self, lease: Lease, out: &mut Vec<PeerChange>) {
        if self.is_own(&lease.key) {
            if lease.attrs.public_ip != self.own_public_ip {
                out.push(PeerChange::OwnTaken(lease.attrs));
            }
            return;
        }
        match self.peers.get(&lease.key.ipv4) {
            Some(old) if old.key == lease.key && old.attrs == lease.attrs => {
                // A renewal: same host, same data; only the etcd lease id moved.
                self.peers.insert(lease.key.ipv4, lease);
            }
            Some(old) => {
                out.push(PeerChange::Remove(old.clone()));
                self.peers.insert(lease.key.ipv4, lease.clone());
                out.push(PeerChange::Add(lease));
            }
            None => {
                self.peers.insert(lease.key.ipv4, lease.clone());
                out.push(PeerChange::Add(lease));
            }
        }
    }

    /// Applies one event and says what changed.
    pub fn apply(&mut self, ev: LeaseEvent) -> Vec<PeerChange> {
        let mut out = Vec::new();
        match ev {
            LeaseEvent::Added(l) => self.add(l, &mut out),
            LeaseEvent::Removed(k) => {
                if self.is_own(&k) {
                    out.push(PeerChange::OwnRemoved);
                } else if let Some(old) = self.peers.remove(&k.ipv4) {
                    out.push(PeerChange::Remove(old));
                }
            }
            LeaseEvent::Snapshot(all) => {
                let present: std::collections::BTreeSet<Ipv4Net> =
                    all.iter().map(|l| l.key.ipv4).collect();
                let gone: Vec<Ipv4Net> = self
                    .peers
                    .keys()
                    .filter(|s| !present.contains(s))
                    .copied()
                    .collect();
                for s in gone {
                    if let Some(old) = self.peers.remove(&s) {
                        out.push(PeerChange::Remove(old));
                    }
                }
                if !present.contains(&self.own.ipv4) {
                    out.push(PeerChange::OwnRemoved);
                }
                for l in all {
                    self.add(l, &mut out);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(net: &str, ip: &str, mac: &str) -> Lease {
        Lease {
            key: LeaseKey::new(net.parse().unwrap(), None),
            attrs: LeaseAttrs {
                public_ip: ip.parse().unwrap(),
                public_ipv6: None,
                backend_type: "vxlan".into(),
                backend_data: Some(serde_json::json!({"VNI":1,"VtepMAC":mac})),
                backend_v6_data: None,
            },
            etcd_lease: 1,
        }
    }

    fn set() -> PeerSet {
        PeerSet::new(
            LeaseKey::new("10.5.1.0/24".parse().unwrap(), None),
            "192.168.0.1".parse().unwrap(),
        )
    }

    #[test]
    fn add_remove_and_removal_carries_the_old_lease() {
        let mut s = set();
        let a = lease("10.5.2.0/24", "192.168.0.2", "aa:aa:aa:aa:aa:02");
        assert_eq!(
            s.apply(LeaseEvent::Added(a.clone())),
            vec![PeerChange::Add(a.clone())]
        );
        assert_eq!(
            s.apply(LeaseEvent::Removed(a.key)),
            vec![PeerChange::Remove(a.clone())]
        );
        assert!(s.apply(LeaseEvent::Removed(a.key)).is_empty());
        assert_eq!(s.peers().count(), 0);
    }

    #[test]
    fn renewals_are_silent_and_changed_attrs_replace() {
        let mut s = set();
        let a = lease("10.5.2.0/24", "192.168.0.2", "aa:aa:aa:aa:aa:02");
        s.apply(LeaseEvent::Added(a.clone()));
        let mut renewed = a.clone();
        renewed.etcd_lease = 9;
        assert!(s.apply(LeaseEvent::Added(renewed.clone())).is_empty());
        let moved = lease("10.5.2.0/24", "192.168.0.2", "aa:aa:aa:aa:aa:99");
        assert_eq!(
            s.apply(LeaseEvent::Added(moved.clone())),
            vec![PeerChange::Remove(renewed), PeerChange::Add(moved)]
        );
    }

    #[test]
    fn own_lease_is_never_a_peer() {
        let mut s = set();
        let mine = lease("10.5.1.0/24", "192.168.0.1", "aa:aa:aa:aa:aa:01");
        assert!(s.apply(LeaseEvent::Added(mine.clone())).is_empty());
        let stolen = lease("10.5.1.0/24", "192.168.0.7", "aa:aa:aa:aa:aa:07");
        assert_eq!(
            s.apply(LeaseEvent::Added(stolen.clone())),
            vec![PeerChange::OwnTaken(stolen.attrs)]
        );
        assert_eq!(
            s.apply(LeaseEvent::Removed(mine.key)),
            vec![PeerChange::OwnRemoved]
        );
    }

    #[test]
    fn snapshot_diffs_against_what_is_known() {
        let mut s = set();
        let mine = lease("10.5.1.0/24", "192.168.0.1", "aa:aa:aa:aa:aa:01");
        let a = lease("10.5.2.0/24", "192.168.0.2", "aa:aa:aa:aa:aa:02");
        let b = lease("10.5.3.0/24", "192.168.0.3", "aa:aa:aa:aa:aa:03");
        s.apply(LeaseEvent::Added(a.clone()));
        let out = s.apply(LeaseEvent::Snapshot(vec![mine.clone(), b.clone()]));
        assert_eq!(out, vec![PeerChange::Remove(a), PeerChange::Add(b.clone())]);
        assert_eq!(
            s.apply(LeaseEvent::Snapshot(vec![b])),
            vec![PeerChange::OwnRemoved]
        );
    }
}
