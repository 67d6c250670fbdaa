use super::*;
use serde_json::json;

fn load(v: Value, cni_args: &str) -> Result<BridgeConf, Error> {
    let c = NetConf::parse(v.to_string().as_bytes()).unwrap();
    BridgeConf::load(&c, cni_args)
}

fn base() -> Value {
    json!({"cniVersion": "1.0.0", "name": "n", "type": "bridge"})
}

fn with(key: &str, v: Value) -> Value {
    let mut b = base();
    b[key] = v;
    b
}

#[test]
fn defaults_are_the_reference_ones() {
    let c = load(base(), "").unwrap();
    assert_eq!(c.bridge, "cni0");
    assert!(!c.is_gateway && !c.ip_masq && !c.hairpin_mode && !c.preserve_default_vlan);
    assert_eq!((c.mtu, c.vlan, c.mac), (None, 0, None));
    assert!(!c.vlan_filtering() && !c.has_ipam && c.dns.is_none());
    let c = load(with("isDefaultGateway", json!(true)), "").unwrap();
    assert!(c.is_gateway, "isDefaultGateway implies isGateway");
}

#[test]
fn vlan_trunk_parsing_matches_reference_cases() {
    let trunk = |t: Value| load(with("vlanTrunk", t), "").map(|c| c.vlan_trunk);
    assert_eq!(trunk(json!([])).unwrap(), Vec::<u16>::new());
    assert!(load(with("vlanTrunk", json!([])), "")
        .unwrap()
        .vlan_filtering());
    assert_eq!(
        trunk(json!([{"minID": 100, "maxID": 105}])).unwrap(),
        [100, 101, 102, 103, 104, 105]
    );
    assert_eq!(trunk(json!([{"id": 10}])).unwrap(), [10]);
    assert_eq!(
        trunk(json!([{"id": 11}, {"minID": 9, "maxID": 11}, {"id": 3}])).unwrap(),
        [3, 9, 10, 11]
    );
    let err = |t: Value| trunk(t).unwrap_err().msg;
    assert_eq!(
        err(json!([{"minID": 100}])),
        "minID and maxID should be configured simultaneously, maxID is missing"
    );
    assert_eq!(
        err(json!([{"maxID": 100}])),
        "minID and maxID should be configured simultaneously, minID is missing"
    );
    assert_eq!(
        err(json!([{"minID": 0, "maxID": 5}])),
        "incorrect trunk minID parameter"
    );
    assert_eq!(
        err(json!([{"minID": 1, "maxID": 4095}])),
        "incorrect trunk maxID parameter"
    );
    assert_eq!(
        err(json!([{"minID": 10, "maxID": 5}])),
        "minID is greater than maxID in trunk parameter"
    );
    assert_eq!(err(json!([{"id": 5000}])), "incorrect trunk id parameter");
    assert_eq!(err(json!([{"id": -1}])), "incorrect trunk id parameter");
}

#[test]
fn invalid_vlan_mtu_and_combinations_are_config_errors() {
    for v in [-100, 5000] {
        let e = load(with("vlan", json!(v)), "").unwrap_err();
        assert_eq!(e.code, Code::InvalidConfig);
        assert_eq!(
            e.msg,
            format!("invalid VLAN ID {v} (must be between 0 and 4094)")
        );
    }
    assert_eq!(load(with("vlan", json!(0)), "").unwrap().vlan, 0);
    for m in [-1, 1, 67, 65536] {
        let e = load(with("mtu", json!(m)), "").unwrap_err();
        assert!(e.msg.starts_with(&format!("invalid MTU {m}")), "{}", e.msg);
    }
    assert_eq!(load(with("mtu", json!(1400)), "").unwrap().mtu, Some(1400));
    let mut both = with("hairpinMode", json!(true));
    both["promiscMode"] = json!(true);
    assert_eq!(
        load(both, "").unwrap_err().msg,
        "cannot set hairpin mode and promiscuous mode at the same time"
    );
    let mut dci = with("disableContainerInterface", json!(true));
    dci["ipam"] = json!({"type": "host-local"});
    assert_eq!(
        load(dci, "").unwrap_err().msg,
        "cannot use IPAM when DisableContainerInterface flag is set"
    );
    let e = load(with("mtu", json!("big")), "").unwrap_err();
    assert_eq!(e.code, Code::DecodingFailure);
}

#[test]
fn mac_precedence_runtime_config_then_args_then_cni_args() {
    let a = "MAC=02:00:00:00:00:01";
    assert_eq!(load(base(), a).unwrap().mac, parse_mac("02:00:00:00:00:01"));
    let mut c = with("args", json!({"cni": {"mac": "02:00:00:00:00:02"}}));
    assert_eq!(
        load(c.clone(), a).unwrap().mac,
        parse_mac("02:00:00:00:00:02")
    );
    c["runtimeConfig"] = json!({"mac": "02:00:00:00:00:03"});
    assert_eq!(load(c, a).unwrap().mac, parse_mac("02:00:00:00:00:03"));
    assert_eq!(
        load(base(), "MAC=zz").unwrap_err().msg,
        "invalid MAC address \"zz\""
    );
    assert_eq!(
        load(base(), "IP=10.0.0.2").unwrap_err().code,
        Code::InvalidEnv
    );
    assert!(load(base(), "IgnoreUnknown=1;IP=10.0.0.2").is_ok());
}

#[test]
fn keys_are_case_insensitive_and_dns_counts_when_any_field_is_present() {
    let c = load(
        json!({"cniVersion": "1.0.0", "name": "n", "Bridge": "br9", "ISGATEWAY": true,
               "dns": {"nameservers": []}}),
        "",
    )
    .unwrap();
    assert_eq!(c.bridge, "br9");
    assert!(c.is_gateway);
    assert_eq!(c.dns, Some(Dns::default()));
    assert!(load(with("dns", json!({})), "").unwrap().dns.is_none());
}
