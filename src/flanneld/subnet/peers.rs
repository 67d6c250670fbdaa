//! The other hosts' leases as the data plane needs them: watch events and snapshots turned into
//! "program this peer" and "forget this peer" changes. A removal carries the lease as it was last
//! seen, so a backend still knows the MAC and address to delete.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use super::lease::{Lease, LeaseAttrs, LeaseKey};
use super::manager::LeaseEvent;

/// What a lease event means for this host.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerChange {
    Add(Lease),
    Remove(Lease),
    /// Our own key was deleted (by an operator or by expiry).
    OwnRemoved,
    /// Our own key now holds what another flanneld wrote: another PublicIP, or our PublicIP
    /// with another VTEP's data (two hosts started with the same `-public-ip`).
    OwnTaken(LeaseAttrs),
}

/// What another host's lease may claim. etcd is writable by whoever can reach it, so every
/// lease is checked before the data plane sees it: a subnet outside the network (the hosts' LAN,
/// 0.0.0.0/0) would otherwise have its route replace the host's own, and its removal delete it.
#[derive(Debug, Clone)]
pub struct PeerRules {
    pub network: Ipv4Net,
    pub subnet_len: u8,
    pub subnet_min: Ipv4Addr,
    pub subnet_max: Ipv4Addr,
    /// The IPv6 network and its subnet length, where the network has one.
    pub ipv6: Option<(Ipv6Net, u8)>,
    /// This host's addresses outside its own lease, as they were at start-up.
    pub host_addrs: Vec<IpAddr>,
}

fn bad_public(ip: IpAddr) -> Option<&'static str> {
    let v4_bcast = matches!(ip, IpAddr::V4(a) if a.is_broadcast());
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_multicast() || v4_bcast {
        Some("not unicast")
    } else {
        None
    }
}

impl PeerRules {
    /// Why `l` must not be programmed, if it must not; `own` is our lease.
    pub fn check(&self, l: &Lease, own: &LeaseKey, own_public_ip: Ipv4Addr) -> Result<(), String> {
        let k = l.key.ipv4;
        if k.prefix_len() != self.subnet_len {
            return Err(format!("subnet {k} is not a /{}", self.subnet_len));
        }
        if !self.network.contains(&k) {
            return Err(format!("subnet {k} is outside Network {}", self.network));
        }
        if k.network() < self.subnet_min || k.network() > self.subnet_max {
            return Err(format!(
                "subnet {k} is outside SubnetMin-SubnetMax ({}-{})",
                self.subnet_min, self.subnet_max
            ));
        }
        if k.contains(&own.ipv4) || own.ipv4.contains(&k) {
            return Err(format!("subnet {k} overlaps our own lease {}", own.ipv4));
        }
        if let (Some(k6), Some((net6, len6))) = (l.key.ipv6, self.ipv6) {
            if k6.prefix_len() != len6 || !net6.contains(&k6) {
                return Err(format!("IPv6 subnet {k6} is not a /{len6} inside {net6}"));
            }
            if own.ipv6.is_some_and(|o| o.contains(&k6) || k6.contains(&o)) {
                return Err(format!("IPv6 subnet {k6} overlaps our own lease"));
            }
        }
        if let Some(a) = self.host_addrs.iter().find(|a| {
            IpNet::V4(k).contains(*a) || l.key.ipv6.is_some_and(|k6| IpNet::V6(k6).contains(*a))
        }) {
            return Err(format!("its subnet holds this host's address {a}"));
        }
        let public = l.attrs.public_ip;
        if let Some(why) = bad_public(IpAddr::V4(public)) {
            return Err(format!("PublicIP {public} is {why}"));
        }
        if public == own_public_ip {
            return Err(format!("PublicIP {public} is our own"));
        }
        if let Some(why) = l.attrs.public_ipv6.and_then(|p| bad_public(IpAddr::V6(p))) {
            return Err(format!("PublicIPv6 is {why}"));
        }
        Ok(())
    }
}

/// The set of known peers.
#[derive(Debug, Clone)]
pub struct PeerSet {
    own: LeaseKey,
    /// What we wrote into our lease; anything else appearing there was written by another host.
    own_attrs: LeaseAttrs,
    rules: PeerRules,
    peers: BTreeMap<Ipv4Net, Lease>,
}

impl PeerSet {
    pub fn new(own: LeaseKey, own_attrs: LeaseAttrs, rules: PeerRules) -> PeerSet {
        PeerSet {
            own,
            own_attrs,
            rules,
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
            if lease.attrs != self.own_attrs {
                out.push(PeerChange::OwnTaken(lease.attrs));
            }
            return;
        }
        if let Err(why) = self
            .rules
            .check(&lease, &self.own, self.own_attrs.public_ip)
        {
            log::warn!("ignoring lease {}: {why}", lease.key.to_key());
            // What was programmed for the key before stays only as long as its lease is good.
            if let Some(old) = self.peers.remove(&lease.key.ipv4) {
                out.push(PeerChange::Remove(old));
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

    fn rules() -> PeerRules {
        PeerRules {
            network: "10.5.0.0/16".parse().unwrap(),
            subnet_len: 24,
            subnet_min: "10.5.1.0".parse().unwrap(),
            subnet_max: "10.5.254.0".parse().unwrap(),
            ipv6: None,
            host_addrs: vec!["192.168.0.1".parse().unwrap()],
        }
    }

    fn mine() -> Lease {
        lease("10.5.1.0/24", "192.168.0.1", "aa:aa:aa:aa:aa:01")
    }

    fn set() -> PeerSet {
        PeerSet::new(mine().key, mine().attrs, rules())
    }

    /// Leases that would route what is not the overlay's never reach the data plane, and a
    /// good lease replaced by a bad one at its key is removed.
    #[test]
    fn leases_outside_the_rules_are_ignored() {
        let mut s = set();
        for (net, ip) in [
            ("192.168.0.0/24", "192.168.0.9"), // the hosts' LAN
            ("0.0.0.0/0", "192.168.0.9"),      // the default route
            ("10.5.0.0/24", "192.168.0.9"),    // below SubnetMin
            ("10.5.3.0/25", "192.168.0.9"),    // not a SubnetLen subnet
            ("10.4.0.0/24", "192.168.0.9"),    // outside Network
            ("10.5.2.0/24", "0.0.0.0"),
            ("10.5.2.0/24", "127.0.0.1"),
            ("10.5.2.0/24", "224.0.0.5"),
            ("10.5.2.0/24", "255.255.255.255"),
            ("10.5.2.0/24", "192.168.0.1"), // our own PublicIP
        ] {
            let l = lease(net, ip, "aa:aa:aa:aa:aa:02");
            assert!(s.apply(LeaseEvent::Added(l)).is_empty(), "{net} {ip}");
        }
        assert_eq!(s.peers().count(), 0);
        let good = lease("10.5.2.0/24", "192.168.0.2", "aa:aa:aa:aa:aa:02");
        s.apply(LeaseEvent::Added(good.clone()));
        let bad = lease("10.5.2.0/24", "127.0.0.1", "aa:aa:aa:aa:aa:02");
        assert_eq!(
            s.apply(LeaseEvent::Added(bad)),
            vec![PeerChange::Remove(good)]
        );
        let mut r = rules();
        r.host_addrs.push("10.5.7.1".parse().unwrap());
        let mut s = PeerSet::new(mine().key, mine().attrs, r);
        let l = lease("10.5.7.0/24", "192.168.0.3", "aa:aa:aa:aa:aa:03");
        assert!(s.apply(LeaseEvent::Added(l)).is_empty());
    }

    #[test]
    fn ipv6_leases_meet_the_same_rules() {
        let mut r = rules();
        r.ipv6 = Some(("fc00::/48".parse().unwrap(), 64));
        r.host_addrs.push("fc00:0:0:9::1".parse().unwrap());
        let own = LeaseKey::new(
            "10.5.1.0/24".parse().unwrap(),
            Some("fc00:0:0:1::/64".parse().unwrap()),
        );
        let mut s = PeerSet::new(own, mine().attrs, r);
        let v6 = |net6: &str, pub6: &str| {
            let mut l = lease("10.5.2.0/24", "192.168.0.2", "aa:aa:aa:aa:aa:02");
            l.key.ipv6 = Some(net6.parse().unwrap());
            l.attrs.public_ipv6 = Some(pub6.parse().unwrap());
            l
        };
        for (net6, pub6) in [
            ("fc00:1::/64", "fd00::2"),     // outside the IPv6 network
            ("fc00::/56", "fd00::2"),       // not a /64
            ("fc00:0:0:1::/64", "fd00::2"), // our own
            ("fc00:0:0:9::/64", "fd00::2"), // holds this host's address
            ("fc00:0:0:2::/64", "::1"),     // loopback PublicIPv6
            ("fc00:0:0:2::/64", "ff02::1"), // multicast PublicIPv6
        ] {
            assert!(
                s.apply(LeaseEvent::Added(v6(net6, pub6))).is_empty(),
                "{net6} {pub6}"
            );
        }
        let good = v6("fc00:0:0:2::/64", "fd00::2");
        assert_eq!(
            s.apply(LeaseEvent::Added(good.clone())),
            vec![PeerChange::Add(good)]
        );
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
        // Our PublicIP with another VTEP: a second host started with the same -public-ip.
        let twin = lease("10.5.1.0/24", "192.168.0.1", "aa:aa:aa:aa:aa:77");
        assert_eq!(
            s.apply(LeaseEvent::Added(twin.clone())),
            vec![PeerChange::OwnTaken(twin.attrs)]
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
