use super::*;

fn load(json: &str, args: &str) -> Result<IpamConfig, Error> {
    IpamConfig::load(&NetConf::parse(json.as_bytes()).unwrap(), args)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn legacy_and_new_style() {
    let c = load(
        r#"{"cniVersion":"0.3.1","name":"n","ipam":{"type":"host-local","subnet":"10.1.2.0/24",
            "rangeStart":"10.1.2.9","gateway":"10.1.2.30","routes":[{"dst":"0.0.0.0/0"}],
            "ranges":[[{"subnet":"10.1.4.0/24"}]]}}"#,
        "",
    )
    .unwrap();
    assert_eq!(c.ranges.len(), 2);
    assert_eq!(c.ranges[0].0[0].start, ip("10.1.2.9"));
    assert_eq!(c.ranges[0].0[0].gateway, ip("10.1.2.30"));
    assert_eq!(c.ranges[1].0[0].end, ip("10.1.4.254"));
    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/cni/networks"));
}

#[test]
fn order_runtime_then_legacy_then_ranges() {
    let c = load(
        r#"{"cniVersion":"1.0.0","name":"n","RuntimeConfig":{"ipRanges":[[{"subnet":"10.9.0.0/24"}]]},
            "ipam":{"type":"host-local","Subnet":"10.1.2.0/24","ranges":[[{"subnet":"10.1.4.0/24"}]]}}"#,
        "",
    )
    .unwrap();
    let firsts: Vec<String> = c.ranges.iter().map(|s| s.0[0].subnet.to_string()).collect();
    assert_eq!(firsts, ["10.9.0.0/24", "10.1.2.0/24", "10.1.4.0/24"]);
}

#[test]
fn errors() {
    let e = load(r#"{"cniVersion":"1.0.0","name":"n"}"#, "").unwrap_err();
    assert_eq!(e.msg, "IPAM config missing 'ipam' key");
    let e = load(
        r#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local"}}"#,
        "",
    )
    .unwrap_err();
    assert_eq!(e.msg, "no IP ranges specified");
    let e = load(
        r#"{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.0.0/24"},{"subnet":"fd00::/64"}]]}}"#,
        "",
    )
    .unwrap_err();
    assert_eq!(e.msg, "invalid range set 0: mixed address families");
    let e = load(
        r#"{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.0.0/24"}],[{"subnet":"10.1.0.0/16"}]]}}"#,
        "",
    )
    .unwrap_err();
    assert_eq!(e.msg, "range set 0 overlaps with 1");
    let e = load(
        r#"{"cniVersion":"0.2.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.0.0/24"}],[{"subnet":"10.2.0.0/16"}]]}}"#,
        "",
    )
    .unwrap_err();
    assert_eq!(
        e.msg,
        "CNI version 0.2.0 does not support more than 1 address per family"
    );
    assert!(load(
        r#"{"cniVersion":"0.2.0","name":"n","ipam":{"ranges":[[{"subnet":"10.1.0.0/24"}],[{"subnet":"fd00::/64"}]]}}"#,
        ""
    )
    .is_ok());
    let e = load(
        r#"{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.1.0.0/31"}}"#,
        "",
    )
    .unwrap_err();
    assert_eq!(e.code, crate::cni::Code::InvalidConfig);
    assert_eq!(
        e.msg,
        "invalid range set 0: Network 10.1.0.0/31 too small to allocate from"
    );
}

#[test]
fn requested_ip_sources_in_order() {
    let c = load(
        r#"{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.1.2.0/24"},
            "args":{"cni":{"ips":["10.1.2.20"]}},
            "runtimeConfig":{"ips":["192.168.0.1","192.168.0.5/24","2001:db8::1/64"]}}"#,
        "IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.1.2.11/24",
    )
    .unwrap();
    let got: Vec<String> = c.requested.iter().map(|i| i.to_string()).collect();
    assert_eq!(
        got,
        [
            "10.1.2.11",
            "10.1.2.20",
            "192.168.0.1",
            "192.168.0.5",
            "2001:db8::1"
        ]
    );
    let e = load(
        r#"{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.1.2.0/24"}}"#,
        "FOO=1",
    )
    .unwrap_err();
    assert!(e.msg.starts_with("ARGS: unknown args"));
}

fn fixture(name: &str) -> String {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/cni/");
    std::fs::read_to_string(format!("{p}{name}")).unwrap()
}

#[test]
fn documented_example_fixture() {
    let c = load(&fixture("host-local-conf-example.json"), "").unwrap();
    assert_eq!(c.ranges.len(), 2);
    assert_eq!(
        c.ranges[0].to_string(),
        "10.10.1.20-10.10.3.50,172.16.5.1-172.16.5.254"
    );
    assert_eq!(c.ranges[0].0[0].gateway, ip("10.10.0.254"));
    assert_eq!(
        c.ranges[1].to_string(),
        "3ffe:ffff:0:1ff::10-3ffe:ffff:0:1ff::20"
    );
    assert_eq!(c.routes.len(), 3);
    assert_eq!(c.routes[1].gw, Some(ip("10.10.5.1")));
    assert_eq!(
        c.data_dir,
        PathBuf::from("/run/my-orchestrator/container-ipam-state")
    );
}

#[test]
fn legacy_bridge_fixture() {
    let c = load(&fixture("host-local-conf-legacy.json"), "").unwrap();
    assert_eq!(c.ranges.len(), 1);
    assert_eq!(c.ranges[0].to_string(), "10.22.0.1-10.22.255.254");
}

#[test]
fn null_is_absent_as_in_go() {
    let c = load(
        r#"{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.1.2.0/24","dataDir":null,
            "ranges":null,"routes":null,"resolvConf":null}}"#,
        "",
    )
    .unwrap();
    assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    assert!(c.routes.is_empty() && c.resolv_conf.is_none());
    assert_eq!(c.ranges.len(), 1);
}
