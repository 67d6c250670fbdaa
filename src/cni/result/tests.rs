use super::*;
use crate::cni::version::SUPPORTED;

fn rich() -> CniResult {
    let mut r6 = Route::new("::/0".parse().unwrap(), Some("fd00::1".parse().unwrap()));
    r6.mtu = 1400;
    r6.table = Some(100);
    r6.scope = Some(0);
    CniResult {
        interfaces: vec![
            Interface {
                name: "cni0".into(),
                mac: "0a:58:0a:01:00:01".into(),
                ..Default::default()
            },
            Interface {
                name: "eth0".into(),
                mac: "0a:58:0a:01:00:05".into(),
                mtu: 1450,
                sandbox: "/run/netns/x".into(),
                socket_path: "/s".into(),
                pci_id: "0000:00:01.0".into(),
            },
        ],
        ips: vec![
            IpConfig {
                interface: Some(1),
                address: "10.1.0.5/16".parse().unwrap(),
                gateway: Some("10.1.0.1".parse().unwrap()),
            },
            IpConfig {
                interface: Some(1),
                address: "10.2.0.5/16".parse().unwrap(),
                gateway: None,
            },
            IpConfig {
                interface: Some(1),
                address: "fd00::5/64".parse().unwrap(),
                gateway: Some("fd00::1".parse().unwrap()),
            },
        ],
        routes: vec![
            Route::new(
                "0.0.0.0/0".parse().unwrap(),
                Some("10.1.0.1".parse().unwrap()),
            ),
            Route::new("192.168.0.0/16".parse().unwrap(), None),
            r6,
        ],
        dns: Dns {
            nameservers: vec!["10.1.0.1".into()],
            domain: "example.com".into(),
            search: vec!["a".into()],
            options: vec!["ndots:5".into()],
        },
    }
}

/// What survives a trip through a version family, written independently of the converter.
fn through(r: &CniResult, ver: &str) -> CniResult {
    let mut r = r.clone();
    match version::family(ver).unwrap() {
        Family::V02 => {
            let v4 = r.ips.iter().find(|i| i.address.addr().is_ipv4()).cloned();
            let v6 = r.ips.iter().find(|i| i.address.addr().is_ipv6()).cloned();
            r.ips = v4.into_iter().chain(v6).collect();
            for ip in &mut r.ips {
                ip.interface = None;
            }
            let has4 = r.ips.iter().any(|i| i.address.addr().is_ipv4());
            let has6 = r.ips.iter().any(|i| i.address.addr().is_ipv6());
            let (r4, r6): (Vec<Route>, Vec<Route>) = r
                .routes
                .iter()
                .cloned()
                .partition(|x| x.dst.addr().is_ipv4());
            r.routes = Vec::new();
            for (keep, list) in [(has4, r4), (has6, r6)] {
                if keep {
                    r.routes
                        .extend(list.into_iter().map(|x| Route::new(x.dst, x.gw)));
                }
            }
            r.interfaces.clear();
        }
        Family::V04 => {
            for i in &mut r.interfaces {
                i.mtu = 0;
                i.socket_path.clear();
                i.pci_id.clear();
            }
        }
        Family::V1 => {}
    }
    r
}

#[test]
fn converts_between_every_pair_of_versions() {
    let base = rich();
    for from in SUPPORTED {
        let printed = base.to_json(from).unwrap();
        let v: Value = serde_json::from_str(&printed).unwrap();
        assert_eq!(v["cniVersion"], from);
        let (parsed, ver) = CniResult::parse(&v, "1.1.0").unwrap();
        assert_eq!(ver, from);
        assert_eq!(parsed, through(&base, from), "via {from}");
        for to in SUPPORTED {
            let out: Value = serde_json::from_str(&parsed.to_json(to).unwrap()).unwrap();
            assert_eq!(out["cniVersion"], to);
            let (again, _) = CniResult::parse(&out, "1.1.0").unwrap();
            assert_eq!(again, through(&through(&base, from), to), "{from} -> {to}");
        }
    }
}

#[test]
fn old_shapes_are_exact() {
    let v = rich().to_value("0.2.0").unwrap();
    assert_eq!(
        v,
        json!({"cniVersion": "0.2.0",
            "ip4": {"ip": "10.1.0.5/16", "gateway": "10.1.0.1",
                    "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "192.168.0.0/16"}]},
            "ip6": {"ip": "fd00::5/64", "gateway": "fd00::1",
                    "routes": [{"dst": "::/0", "gw": "fd00::1"}]},
            "dns": {"nameservers": ["10.1.0.1"], "domain": "example.com",
                    "search": ["a"], "options": ["ndots:5"]}})
    );
    let v = rich().to_value("0.4.0").unwrap();
    assert_eq!(v["ips"][0]["version"], "4");
    assert_eq!(v["ips"][2]["version"], "6");
    assert!(v["interfaces"][1].get("mtu").is_none());
    // Go keeps the 1.1 route fields when it writes 0.4.0.
    assert_eq!(v["routes"][2]["table"], 100);
    let v = rich().to_value("1.0.0").unwrap();
    assert!(v["ips"][0].get("version").is_none());
    assert_eq!(v["interfaces"][1]["mtu"], 1450);
    assert_eq!(v["routes"][2]["scope"], 0);
}

#[test]
fn empty_fields_are_omitted_and_old_dns_is_always_present() {
    let r = CniResult {
        ips: vec![IpConfig {
            interface: None,
            address: "10.0.0.2/24".parse().unwrap(),
            gateway: None,
        }],
        ..Default::default()
    };
    assert_eq!(
        r.to_value("1.0.0").unwrap(),
        json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]})
    );
    assert_eq!(
        r.to_value("0.3.1").unwrap(),
        json!({"cniVersion": "0.3.1", "ips": [{"version": "4", "address": "10.0.0.2/24"}], "dns": {}})
    );
    assert_eq!(
        r.to_value("0.1.0").unwrap(),
        json!({"cniVersion": "0.1.0", "ip4": {"ip": "10.0.0.2/24"}, "dns": {}})
    );
}

#[test]
fn no_ip_cannot_go_to_old_versions() {
    let r = CniResult {
        interfaces: vec![Interface {
            name: "eth0".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    for v in ["0.1.0", "0.2.0"] {
        assert_eq!(
            r.to_json(v).unwrap_err().msg,
            "cannot convert: no valid IP addresses"
        );
    }
    assert!(r.to_json("0.3.0").is_ok());
}

#[test]
fn prev_result_rules() {
    let v = json!({"ips": [{"address": "10.0.0.2/24"}]});
    let r = CniResult::parse_prev(&v, "1.0.0").unwrap();
    assert_eq!(r.ips.len(), 1);
    let v = json!({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.0.0.2/24"}]});
    let e = CniResult::parse_prev(&v, "1.0.0").unwrap_err();
    assert_eq!(
        e.msg,
        "failed to parse result: result type supports [1.0.0 1.1.0] but unmarshalled CNIVersion is \"0.4.0\""
    );
    let v = json!({"cniVersion": "0.3.0", "ips": []});
    assert!(CniResult::parse_prev(&v, "0.4.0").is_ok());
    let v = json!({"cniVersion": "7.0.0"});
    assert!(CniResult::parse(&v, "1.0.0").is_err());
    let v = json!({"cniVersion": "1.0.0", "ips": [{"address": "nope"}]});
    assert_eq!(
        CniResult::parse(&v, "1.0.0").unwrap_err().code,
        Code::DecodingFailure
    );
}

/// Results printed by the Go host-local (Debian 1.1.1) for one dual-stack config at each version:
/// weft must print every one of them byte for byte, from any of the others.
#[test]
fn reproduces_go_output_byte_for_byte_from_every_version() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/cni/");
    let go_versions = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"];
    let golden: Vec<String> = go_versions
        .iter()
        .map(|v| std::fs::read_to_string(format!("{dir}host-local-go-result-{v}.json")).unwrap())
        .collect();
    for (i, from) in go_versions.iter().enumerate() {
        let v: Value = serde_json::from_str(&golden[i]).unwrap();
        let (parsed, ver) = CniResult::parse(&v, "1.0.0").unwrap();
        assert_eq!(&ver, from);
        for (j, to) in go_versions.iter().enumerate() {
            assert_eq!(parsed.to_json(to).unwrap(), golden[j], "{from} -> {to}");
        }
    }
}
