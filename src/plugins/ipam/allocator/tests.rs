use super::*;
use crate::plugins::ipam::range::RangeConf;
use std::collections::{BTreeMap, HashMap};

#[derive(Default)]
struct MapStore {
    held: BTreeMap<IpAddr, (String, String)>,
    last: HashMap<usize, IpAddr>,
}

impl AddressStore for MapStore {
    fn reserve(&mut self, id: &str, ifname: &str, ip: IpAddr, range_id: usize) -> Result<bool> {
        if self.held.contains_key(&ip) {
            return Ok(false);
        }
        self.held.insert(ip, (id.into(), ifname.into()));
        self.last.insert(range_id, ip);
        Ok(true)
    }
    fn last_reserved_ip(&self, range_id: usize) -> Option<IpAddr> {
        self.last.get(&range_id).copied()
    }
    fn get_by_id(&self, id: &str, ifname: &str) -> Result<Vec<IpAddr>> {
        Ok(self
            .held
            .iter()
            .filter(|(_, (i, f))| i == id && f == ifname)
            .map(|(ip, _)| *ip)
            .collect())
    }
}

fn set(subnets: &[&str]) -> RangeSet {
    let confs: Vec<RangeConf> = subnets
        .iter()
        .map(|s| RangeConf {
            subnet: s.to_string(),
            ..Default::default()
        })
        .collect();
    RangeSet::from_conf(&confs).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn walk(s: &RangeSet, last: Option<&str>) -> Vec<String> {
    RangeIter::new(s, last.map(ip))
        .map(|a| a.address.addr().to_string())
        .collect()
}

#[test]
fn iterator_order() {
    let s = set(&["192.168.1.0/29"]);
    let all = [
        "192.168.1.2",
        "192.168.1.3",
        "192.168.1.4",
        "192.168.1.5",
        "192.168.1.6",
    ];
    assert_eq!(walk(&s, None), all);
    assert_eq!(walk(&s, Some("192.168.1.6")), all);
    assert_eq!(
        walk(&s, Some("192.168.1.3")),
        [
            "192.168.1.4",
            "192.168.1.5",
            "192.168.1.6",
            "192.168.1.2",
            "192.168.1.3"
        ]
    );
    // A last-reserved IP outside the set restarts from the beginning.
    assert_eq!(walk(&s, Some("10.0.0.1")), all);
}

fn next_free(subnets: &[&str], last: Option<&str>, taken: &[&str]) -> String {
    let s = set(subnets);
    let mut st = MapStore::default();
    for t in taken {
        st.held.insert(ip(t), ("other".into(), "eth0".into()));
    }
    if let Some(l) = last {
        st.last.insert(0, ip(l));
    }
    allocate(&mut st, &s, 0, "id", "eth0", None)
        .unwrap()
        .address
        .addr()
        .to_string()
}

#[test]
fn round_robin_table() {
    assert_eq!(next_free(&["192.168.1.0/29"], None, &[]), "192.168.1.2");
    assert_eq!(next_free(&["2001:db8:1::/64"], None, &[]), "2001:db8:1::2");
    assert_eq!(next_free(&["192.168.1.0/30"], None, &[]), "192.168.1.2");
    assert_eq!(
        next_free(&["192.168.1.0/29"], None, &["192.168.1.2"]),
        "192.168.1.3"
    );
    assert_eq!(
        next_free(&["192.168.1.0/29"], Some("192.168.1.5"), &[]),
        "192.168.1.6"
    );
    assert_eq!(
        next_free(
            &["192.168.1.0/29"],
            Some("192.168.1.3"),
            &["192.168.1.4", "192.168.1.5"]
        ),
        "192.168.1.6"
    );
    assert_eq!(
        next_free(&["192.168.1.0/29"], Some("192.168.1.5"), &["192.168.1.6"]),
        "192.168.1.2"
    );
    assert_eq!(
        next_free(&["192.168.1.0/29"], Some("10.0.0.1"), &[]),
        "192.168.1.2"
    );
    assert_eq!(
        next_free(
            &["192.168.1.0/29"],
            Some("192.168.1.3"),
            &["192.168.1.2", "192.168.1.4", "192.168.1.5", "192.168.1.6"]
        ),
        "192.168.1.3"
    );
    assert_eq!(
        next_free(&["10.0.0.0/30", "10.0.1.0/30"], None, &[]),
        "10.0.0.2"
    );
    assert_eq!(
        next_free(&["10.0.0.0/30", "10.0.1.0/30"], Some("10.0.0.2"), &[]),
        "10.0.1.2"
    );
    assert_eq!(
        next_free(
            &["10.0.0.0/30", "10.0.1.0/30", "10.0.2.0/30"],
            Some("10.0.2.2"),
            &[]
        ),
        "10.0.0.2"
    );
}

#[test]
fn exhaustion_and_duplicates() {
    let s = set(&["192.168.1.0/29"]);
    let mut st = MapStore::default();
    for n in 2..=6 {
        let a = allocate(&mut st, &s, 0, &format!("c{n}"), "eth0", None).unwrap();
        assert_eq!(a.address.to_string(), format!("192.168.1.{n}/29"));
        assert_eq!(a.gateway, ip("192.168.1.1"));
    }
    let e = allocate(&mut st, &s, 0, "c7", "eth0", None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no IP addresses available in range set: 192.168.1.1-192.168.1.6"
    );
    let e = allocate(&mut st, &s, 0, "c2", "eth0", None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "192.168.1.2 has been allocated to c2, duplicate allocation is not allowed"
    );
    let two = set(&["10.0.0.0/30", "10.0.1.0/30"]);
    let mut st = MapStore::default();
    allocate(&mut st, &two, 0, "a", "eth0", None).unwrap();
    allocate(&mut st, &two, 0, "b", "eth0", None).unwrap();
    let e = allocate(&mut st, &two, 0, "c", "eth0", None).unwrap_err();
    assert!(e
        .to_string()
        .starts_with("no IP addresses available in range set"));
}

#[test]
fn get_release_get_is_round_robin() {
    let s = set(&["192.168.1.0/29"]);
    let mut st = MapStore::default();
    let a = allocate(&mut st, &s, 0, "a", "eth0", None).unwrap();
    st.held.remove(&a.address.addr());
    let b = allocate(&mut st, &s, 0, "a", "eth0", None).unwrap();
    assert_eq!(b.address.addr(), ip("192.168.1.3"));
}

#[test]
fn requested_ips() {
    let s = RangeSet::from_conf(&[RangeConf {
        subnet: "192.168.1.0/29".into(),
        ..Default::default()
    }])
    .unwrap();
    let mut st = MapStore::default();
    let a = allocate(&mut st, &s, 0, "a", "eth0", Some(ip("192.168.1.5"))).unwrap();
    assert_eq!(a.address.to_string(), "192.168.1.5/29");
    let e = allocate(&mut st, &s, 0, "b", "eth0", Some(ip("192.168.1.5"))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "requested IP address 192.168.1.5 is not available in range set 192.168.1.1-192.168.1.6"
    );
    let e = allocate(&mut st, &s, 0, "b", "eth0", Some(ip("192.168.1.1"))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "requested ip 192.168.1.1 is subnet's gateway"
    );
    let e = allocate(&mut st, &s, 0, "b", "eth0", Some(ip("192.168.1.7"))).unwrap_err();
    assert!(e.to_string().contains("not in range set"));
    // The round-robin pointer follows requested reservations too.
    assert_eq!(st.last_reserved_ip(0), Some(ip("192.168.1.5")));
}

#[test]
fn multi_range_start_points() {
    let s = RangeSet::from_conf(&[
        RangeConf {
            subnet: "192.168.1.0/24".into(),
            range_start: Some("192.168.1.10".into()),
            range_end: Some("192.168.1.20".into()),
            ..Default::default()
        },
        RangeConf {
            subnet: "192.168.2.0/24".into(),
            range_start: Some("192.168.2.30".into()),
            ..Default::default()
        },
    ])
    .unwrap();
    assert_eq!(walk(&s, Some("192.168.1.20"))[0], "192.168.2.30");
    assert_eq!(walk(&s, None)[0], "192.168.1.10");
}
