use super::*;

fn rc(subnet: &str, start: Option<&str>, end: Option<&str>, gw: Option<&str>) -> RangeConf {
    RangeConf {
        subnet: subnet.into(),
        range_start: start.map(Into::into),
        range_end: end.map(Into::into),
        gateway: gw.map(Into::into),
    }
}

fn err(c: RangeConf) -> String {
    Range::from_conf(&c).unwrap_err().to_string()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn canonical_defaults() {
    let r = Range::from_conf(&rc("10.1.4.0/24", None, None, None)).unwrap();
    assert_eq!(
        (r.start, r.end, r.gateway),
        (ip("10.1.4.1"), ip("10.1.4.254"), ip("10.1.4.1"))
    );
    let r = Range::from_conf(&rc("192.168.0.0/25", None, None, None)).unwrap();
    assert_eq!(r.end, ip("192.168.0.126"));
    let r = Range::from_conf(&rc("2001:db8:1::/64", None, None, None)).unwrap();
    assert_eq!(r.end, ip("2001:db8:1:0:ffff:ffff:ffff:ffff"));
    assert_eq!(r.gateway, ip("2001:db8:1::1"));
    assert_eq!(
        r.to_string(),
        "2001:db8:1::1-2001:db8:1:0:ffff:ffff:ffff:ffff"
    );
}

#[test]
fn validation_messages() {
    assert_eq!(
        err(rc("192.0.2.0/31", None, None, None)),
        "Network 192.0.2.0/31 too small to allocate from"
    );
    assert!(err(rc("2001:db8::/127", None, None, None)).contains("too small"));
    assert_eq!(
        err(rc("192.0.2.5/24", None, None, None)),
        "Network has host bits set. For a subnet mask of length 24 the network address is 192.0.2.0"
    );
    assert_eq!(
        err(rc("10.1.3.0/23", None, None, None)),
        "Network has host bits set. For a subnet mask of length 23 the network address is 10.1.2.0"
    );
    assert_eq!(
        err(rc("2001:db8:1:1::/63", None, None, None)),
        "Network has host bits set. For a subnet mask of length 63 the network address is 2001:db8:1::"
    );
    assert_eq!(
        err(rc("192.0.2.0/24", Some("192.0.3.0"), None, None)),
        "RangeStart 192.0.3.0 not in network 192.0.2.0/24"
    );
    assert_eq!(
        err(rc("192.0.2.0/24", None, Some("192.0.4.0"), None)),
        "RangeEnd 192.0.4.0 not in network 192.0.2.0/24"
    );
    assert_eq!(
        err(rc(
            "192.0.2.0/24",
            Some("192.0.2.50"),
            Some("192.0.2.40"),
            None
        )),
        "RangeStart 192.0.2.50 not in network 192.0.2.0/24"
    );
    assert_eq!(
        err(rc("banana", None, None, None)),
        "invalid CIDR address: banana"
    );
    assert!(err(rc("10.0.0.0/8", Some("nope"), None, None)).contains("invalid IP"));
}

#[test]
fn contains_is_inclusive() {
    let r = Range::from_conf(&rc(
        "192.168.0.0/24",
        Some("192.168.0.10"),
        Some("192.168.0.20"),
        None,
    ))
    .unwrap();
    for (s, want) in [
        ("192.168.0.9", false),
        ("192.168.0.10", true),
        ("192.168.0.20", true),
        ("192.168.0.21", false),
        ("2001:db8::10", false),
    ] {
        assert_eq!(r.contains(ip(s)), want, "{s}");
    }
    let r = Range::from_conf(&rc(
        "2001:db8::/64",
        Some("2001:db8::10"),
        Some("2001:db8::20"),
        None,
    ))
    .unwrap();
    assert!(r.contains(ip("2001:db8::10")) && r.contains(ip("2001:db8::20")));
    assert!(!r.contains(ip("2001:db8::21")));
}

#[test]
fn overlap_table() {
    let r =
        |s: &str, a: Option<&str>, b: Option<&str>| Range::from_conf(&rc(s, a, b, None)).unwrap();
    let a = r("10.0.0.0/24", None, None);
    assert!(!a.overlaps(&r("10.0.1.0/24", None, None)));
    assert!(!a.overlaps(&r("2001:db8::/64", None, None)));
    assert!(a.overlaps(&r("10.0.0.0/24", None, None)));
    assert!(r("10.0.0.0/20", None, None).overlaps(&a));
    let lo = r("10.0.0.0/24", None, Some("10.0.0.127"));
    let hi = r("10.0.0.0/24", Some("10.0.0.128"), None);
    assert!(!lo.overlaps(&hi));
    let hi2 = r("10.0.0.0/24", Some("10.0.0.127"), None);
    assert!(lo.overlaps(&hi2));
}

#[test]
fn range_sets() {
    let s = RangeSet::from_conf(&[
        rc("192.168.0.0/24", None, None, None),
        rc("172.16.1.0/24", None, None, None),
    ])
    .unwrap();
    assert!(s.contains(ip("172.16.1.5")));
    assert_eq!(
        s.range_for(ip("192.168.99.99")).unwrap_err().to_string(),
        "192.168.99.99 not in range set 192.168.0.1-192.168.0.254,172.16.1.1-172.16.1.254"
    );
    let e = RangeSet::from_conf(&[
        rc("10.1.0.0/22", None, None, None),
        rc("10.1.2.0/24", None, None, None),
    ])
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "subnets 10.1.0.1-10.1.3.254 and 10.1.2.1-10.1.2.254 overlap"
    );
    let e = RangeSet::from_conf(&[
        rc("10.1.0.0/24", None, None, None),
        rc("2001:db8::/64", None, None, None),
    ])
    .unwrap_err();
    assert_eq!(e.to_string(), "mixed address families");
}

#[test]
fn next_ip_wraps() {
    assert_eq!(next_ip(ip("10.0.0.255")), ip("10.0.1.0"));
    assert_eq!(next_ip(ip("255.255.255.255")), ip("0.0.0.0"));
    assert_eq!(next_ip(ip("::ffff")), ip("::1:0"));
    assert_eq!(
        parse_ip_maybe_cidr("10.1.2.11/24").unwrap(),
        ip("10.1.2.11")
    );
}
