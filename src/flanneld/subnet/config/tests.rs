use super::*;

fn fixture(name: &str) -> String {
    let p = format!("{}/testdata/flannel/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn parse(name: &str) -> Result<NetworkConfig> {
    NetworkConfig::parse(&fixture(name))
}

#[test]
fn upstream_example_defaults() {
    let c = parse("net-conf-vxlan.json").unwrap();
    assert_eq!(c.network(), "10.5.0.0/16".parse::<Ipv4Net>().unwrap());
    assert_eq!(c.subnet_len, 24);
    assert_eq!(c.subnet_min, Ipv4Addr::new(10, 5, 1, 0));
    assert_eq!(c.subnet_max, Ipv4Addr::new(10, 5, 255, 0));
    assert_eq!(c.backend_type, "vxlan");
    assert!(c.enable_ipv4 && !c.enable_ipv6 && !c.enable_nftables);
}

#[test]
fn lower_case_keys_and_missing_backend_means_udp() {
    let c = parse("net-conf-lowercase.json").unwrap();
    assert_eq!(c.subnet_min, Ipv4Addr::new(10, 3, 1, 0));
    assert_eq!(c.subnet_max, Ipv4Addr::new(10, 3, 255, 0));
    assert_eq!(c.backend_type, "udp");
}

#[test]
fn kube_flannel_net_conf() {
    let c = parse("net-conf-kube-flannel.json").unwrap();
    assert_eq!(c.backend_type, "vxlan");
    assert_eq!(c.subnet_len, 24);
}

#[test]
fn dual_stack_defaults() {
    let c = parse("net-conf-dualstack.json").unwrap();
    assert!(c.enable_ipv6);
    assert_eq!(c.ipv6_subnet_len, 64);
    assert_eq!(
        c.ipv6_subnet_min,
        "fc00:0:0:1::".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(
        c.ipv6_subnet_max,
        "fc00:0:0:ffff::".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(c.backend_type, "host-gw");
}

#[test]
fn explicit_len_min_max_and_backend_options() {
    let c = parse("net-conf-vxlan-options.json").unwrap();
    assert_eq!(c.subnet_len, 26);
    assert_eq!(c.subnet_min, Ipv4Addr::new(10, 10, 4, 0));
    assert_eq!(c.subnet_max, Ipv4Addr::new(10, 10, 7, 192));
    assert_eq!(c.backend_type, "vxlan");
    assert_eq!(get_uint(&c.backend, "vni").unwrap(), Some(4096));
    assert!(backend_bool(&c.backend, "gbp").unwrap());
    assert!(backend_bool(&c.backend, "directrouting").unwrap());
    assert!(!backend_bool(&c.backend, "learning").unwrap());
}

#[test]
fn small_networks_get_two_more_bits() {
    let c = parse("net-conf-small.json").unwrap();
    assert_eq!(c.subnet_len, 28);
    assert_eq!(c.subnet_min, Ipv4Addr::new(10, 1, 2, 16));
    assert_eq!(c.subnet_max, Ipv4Addr::new(10, 1, 2, 48));
}

#[test]
fn bad_configs_say_why() {
    for (name, want) in [
        ("net-conf-bad-min.json", "not inside Network"),
        ("net-conf-too-small.json", "too small"),
        ("net-conf-v6-network.json", "not an IPv4 CIDR"),
        ("net-conf-not-json.json", "not valid JSON"),
    ] {
        let e = format!("{:#}", parse(name).unwrap_err());
        assert!(e.contains(want), "{name}: {e}");
    }
    for (text, want) in [
        (r#"{"Network":"10.0.0.0/16","SubnetLen":31}"#, "at most 30"),
        (
            r#"{"Network":"10.0.0.0/16","SubnetLen":17}"#,
            "at least 2 bits",
        ),
        (
            r#"{"Network":"10.0.0.0/16","SubnetMin":"10.0.1.5"}"#,
            "boundary",
        ),
        (
            r#"{"Network":"10.0.0.0/16","SubnetMin":"10.0.9.0","SubnetMax":"10.0.8.0"}"#,
            "above",
        ),
        (r#"{"EnableIPv4":false}"#, "both false"),
        (
            r#"{"Network":"10.0.0.0/16","EnableIPv6":true}"#,
            "IPv6Network is missing",
        ),
        (r#"{"Backend":{"Type":"vxlan"}}"#, "Network is missing"),
        (
            r#"{"Network":"10.0.0.0/16","Backend":{}}"#,
            "Type is missing",
        ),
        (r#"[]"#, "must be a JSON object"),
    ] {
        let e = format!("{:#}", NetworkConfig::parse(text).unwrap_err());
        assert!(e.contains(want), "{text}: {e}");
    }
}

#[test]
fn fits_checks_len_and_bounds() {
    let c = parse("net-conf-vxlan-options.json").unwrap();
    assert!(c.fits_v4("10.10.4.0/26".parse().unwrap()));
    assert!(c.fits_v4("10.10.7.192/26".parse().unwrap()));
    assert!(!c.fits_v4("10.10.3.192/26".parse().unwrap()));
    assert!(!c.fits_v4("10.10.4.0/24".parse().unwrap()));
    assert!(c.fits_v6(None));
    assert!(!c.fits_v6(Some("fc00::/64".parse().unwrap())));
}

#[test]
fn networks_that_would_take_over_host_traffic_are_refused() {
    for (text, want) in [
        (r#"{"Network":"0.0.0.0/0"}"#, "0.0.0.0/0"),
        (r#"{"Network":"127.0.0.0/8"}"#, "loopback"),
        (r#"{"Network":"126.0.0.0/7"}"#, "loopback"),
        (r#"{"Network":"224.0.0.0/4"}"#, "multicast"),
        (r#"{"Network":"230.0.0.0/16"}"#, "multicast"),
        (r#"{"Network":"192.0.0.0/2"}"#, "multicast"),
        (
            r#"{"Network":"10.0.0.0/16","EnableIPv6":true,"IPv6Network":"::/0"}"#,
            "::/0",
        ),
        (
            r#"{"Network":"10.0.0.0/16","EnableIPv6":true,"IPv6Network":"::/112"}"#,
            "loopback",
        ),
        (
            r#"{"Network":"10.0.0.0/16","EnableIPv6":true,"IPv6Network":"ff02::/64"}"#,
            "multicast",
        ),
    ] {
        let e = format!("{:#}", NetworkConfig::parse(text).unwrap_err());
        assert!(e.contains(want), "{text}: {e}");
    }
    assert!(NetworkConfig::parse(r#"{"Network":"128.0.0.0/2"}"#).is_ok());
}

#[test]
fn vxlan_booleans_must_be_json_booleans() {
    for key in ["GBP", "Learning", "DirectRouting"] {
        let text =
            format!(r#"{{"Network":"10.0.0.0/16","Backend":{{"Type":"vxlan","{key}":"yes"}}}}"#);
        let e = format!("{:#}", NetworkConfig::parse(&text).unwrap_err());
        assert!(
            e.contains(key) && e.contains("true or false"),
            "{text}: {e}"
        );
    }
    let ok = r#"{"Network":"10.0.0.0/16","Backend":{"Type":"vxlan","GBP":true}}"#;
    assert!(NetworkConfig::parse(ok).is_ok());
}
