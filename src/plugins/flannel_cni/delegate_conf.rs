//! The delegate's network config, built from flannel's config and subnet.env exactly as the
//! upstream Linux plugin builds it (`doCmdAdd` and `getDelegateIPAM`), and read back from the
//! saved copy on DEL.
//!
//! Starting from the user's `delegate` object: `runtimeConfig` ← flannel's, `name` ← flannel's,
//! `type` ← `bridge`, `ipMasq` ← `!FLANNEL_IPMASQ`, `mtu` ← `FLANNEL_MTU`, and for a bridge
//! `isGateway` ← `true`, each only when the user did not set it (name always); `cniVersion`
//! when flannel's is non-empty. `ipam` starts from flannel's top-level `ipam`: `type` ←
//! `host-local` when absent, `ranges` always replaced by one range set per subnet (IPv4 first),
//! `routes` = the user's routes then one per flannel network (IPv4 first). Every other key in
//! `delegate` and `ipam` passes through untouched.

use super::conf::FlannelConf;
use super::gojson;
use super::subnet_env::SubnetEnv;
use crate::cni::json::{fold_keys, get_ci};
use crate::cni::result::Route;
use crate::cni::Error;
use serde_json::{json, Map, Value};

/// A delegate config ready to send: the plugin to run and the exact stdin bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct DelegateConf {
    /// The delegate's `type`: the plugin looked up on `CNI_PATH`.
    pub plugin: String,
    /// The config as a map, keys in the order they are written.
    pub conf: Map<String, Value>,
    /// The config as upstream serialises it (Go's `json.Marshal`).
    pub bytes: Vec<u8>,
}

/// Upstream's checks on the user's `delegate` (ADD only upstream; STATUS and GC build the same
/// config so they apply them too). Code 7: the config is wrong, not undecodable.
fn validate(delegate: &Map<String, Value>) -> Result<(), Error> {
    if delegate.get("type").is_some_and(|t| !t.is_string()) {
        return Err(Error::invalid_config(
            "'delegate' dictionary, if present, must have (string) 'type' field",
        ));
    }
    if delegate.contains_key("name") {
        return Err(Error::invalid_config(
            "'delegate' dictionary must not have 'name' field, it'll be set by flannel",
        ));
    }
    if delegate.contains_key("ipam") {
        return Err(Error::invalid_config(
            "'delegate' dictionary must not have 'ipam' field, it'll be set by flannel",
        ));
    }
    Ok(())
}

/// The user's `ipam.routes`, decoded as Go decodes them into `types.Route` (keys in any case,
/// unknown keys dropped, addresses written back in canonical form).
fn user_routes(ipam: &Map<String, Value>) -> Result<Vec<Route>, Error> {
    let fail = |detail: String| {
        Error::invalid_config(
            "failed to assemble Delegate IPAM: failed to read IPAM routes: failed to parse \
             ipam.routes",
        )
        .with_details(detail)
    };
    match ipam.get("routes") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|r| {
                let Value::Object(r) = r else {
                    return Err(fail(format!("a route must be an object, got {r}")));
                };
                let mut r = r.clone();
                fold_keys(
                    &mut r,
                    &["dst", "gw", "mtu", "advmss", "priority", "table", "scope"],
                );
                serde_json::from_value(Value::Object(r)).map_err(|e| fail(e.to_string()))
            })
            .collect(),
        Some(other) => Err(fail(format!("routes must be a list, got {other}"))),
    }
}

/// `getDelegateIPAM`: the delegate's `ipam` object (keys not yet sorted, `routes` last) and
/// the routes it must carry.
fn delegate_ipam(
    fc: &FlannelConf,
    env: &SubnetEnv,
) -> Result<(Map<String, Value>, Vec<Route>), Error> {
    let mut ipam = fc.ipam.clone().unwrap_or_default();
    if !ipam.contains_key("type") {
        ipam.insert("type".into(), json!("host-local"));
    }
    let ranges: Vec<Value> = [env.subnet, env.ipv6_subnet]
        .into_iter()
        .flatten()
        .map(|sn| json!([{"subnet": sn.to_string()}]))
        .collect();
    ipam.insert("ranges".into(), Value::Array(ranges));
    let mut routes = user_routes(&ipam)?;
    routes.extend(
        env.networks
            .iter()
            .chain(&env.ipv6_networks)
            .map(|n| Route::new(*n, None)),
    );
    Ok((ipam, routes))
}

/// Builds the delegate config for ADD (and STATUS/GC, which need the same one).
pub fn build(fc: &FlannelConf, env: &SubnetEnv) -> Result<DelegateConf, Error> {
    let mut d = fc.delegate.clone().unwrap_or_default();
    validate(&d)?;
    if let Some(rc) = &fc.runtime_config {
        d.insert("runtimeConfig".into(), Value::Object(rc.clone()));
    }
    d.insert("name".into(), json!(fc.name));
    if !d.contains_key("type") {
        d.insert("type".into(), json!("bridge"));
    }
    if !d.contains_key("ipMasq") {
        // Whoever masquerades, the other must not: flanneld with --ip-masq means no bridge rule.
        d.insert("ipMasq".into(), json!(!env.ipmasq));
    }
    if !d.contains_key("mtu") {
        d.insert("mtu".into(), json!(env.mtu));
    }
    let plugin = d
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if plugin == "bridge" && !d.contains_key("isGateway") {
        d.insert("isGateway".into(), json!(true));
    }
    if !fc.cni_version.is_empty() {
        d.insert("cniVersion".into(), json!(fc.cni_version));
    }
    let (mut ipam, routes) = delegate_ipam(fc, env)?;
    ipam.insert("routes".into(), Value::Null);
    d.insert("ipam".into(), Value::Object(ipam));
    // Go sorts map keys, but routes are `types.Route` structs whose fields keep their declared
    // order (dst, gw, mtu, ...): sort first, then put the routes in, in that order.
    let mut conf = d;
    gojson::sort_map(&mut conf);
    let routes: Vec<Value> = routes
        .iter()
        .map(|r| serde_json::to_value(r).expect("a route serialises"))
        .collect();
    if let Some(Value::Object(ipam)) = conf.get_mut("ipam") {
        ipam.insert("routes".into(), Value::Array(routes));
    }
    let bytes = gojson::to_vec(&Value::Object(conf.clone()));
    Ok(DelegateConf {
        plugin,
        conf,
        bytes,
    })
}

/// A saved delegate config, as DEL and CHECK read it back.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedConf {
    pub plugin: String,
    pub conf: Map<String, Value>,
}

impl SavedConf {
    /// Parses a saved file: a JSON object with a string `type` (any case, as Go's
    /// `types.NetConf` reads it). `Err` says why it cannot be used.
    pub fn parse(bytes: &[u8]) -> Result<SavedConf, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let Value::Object(conf) = v else {
            return Err("the saved config is not a JSON object".into());
        };
        let plugin = match get_ci(&conf, "type") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(format!("type must be a string, got {other}")),
        };
        Ok(SavedConf { plugin, conf })
    }

    /// The saved config with `key` set to `value` (for CHECK's `prevResult`), serialised.
    pub fn with(&self, extra: &[(&str, Value)]) -> Vec<u8> {
        let mut conf = self.conf.clone();
        for (k, v) in extra {
            conf.insert((*k).to_string(), v.clone());
        }
        gojson::to_vec(&Value::Object(conf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::{Code, NetConf};
    use std::path::Path;

    fn testdata(name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/flannel-cni")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"))
    }

    fn senv(name: &str) -> SubnetEnv {
        SubnetEnv::parse(&testdata(name), name).unwrap()
    }

    fn fconf(v: &Value) -> FlannelConf {
        FlannelConf::load(&NetConf::parse(v.to_string().as_bytes()).unwrap()).unwrap()
    }

    /// Upstream's test input: the name, type and paths, plus `ipam` when given.
    fn upstream_input(ipam: Option<Value>) -> Value {
        let mut v = json!({"name": "cni-flannel", "type": "flannel",
                           "subnetFile": "/unused", "dataDir": "/unused"});
        if let Some(ipam) = ipam {
            v["ipam"] = ipam;
        }
        v
    }

    /// Upstream's `makeInputIPAM(type, inputIPAMRoutes, "")`.
    fn upstream_ipam(ipam_type: Option<&str>) -> Value {
        let mut v = json!({"unknown-param": "unknown-value", "routes": [
            {"dst": "10.96.0.0/12"}, {"dst": "192.168.244.0/24", "gw": "10.1.17.20"}]});
        if let Some(t) = ipam_type {
            v["type"] = json!(t);
        }
        v
    }

    fn ipam_of(fc: &FlannelConf, env: &str) -> Value {
        build(fc, &senv(env)).unwrap().conf["ipam"].clone()
    }

    /// Compares `bytes` with the golden file `name` byte for byte.
    fn assert_golden(bytes: &[u8], name: &str) {
        let want = testdata(name);
        assert_eq!(
            String::from_utf8_lossy(bytes),
            want.trim_end_matches('\n'),
            "golden {name}"
        );
    }

    // Upstream CNI lifecycle cases: the saved config for the plain input on each stack.
    #[test]
    fn golden_delegate_configs_for_upstream_inputs() {
        let fc = fconf(&upstream_input(None));
        for (env, golden) in [
            ("subnet-v4.env", "delegate-v4.json"),
            ("subnet-v4-multi.env", "delegate-v4-multi.json"),
            ("subnet-v6.env", "delegate-v6.json"),
            ("subnet-dual.env", "delegate-dual.json"),
        ] {
            let d = build(&fc, &senv(env)).unwrap();
            assert_eq!(d.plugin, "bridge");
            assert_golden(&d.bytes, golden);
        }
    }

    // Upstream getDelegateIPAM with input IPAM, ipv4 / ipv6 / dual stack.
    #[test]
    fn ipam_keeps_user_type_params_and_routes_first() {
        let fc = fconf(&upstream_input(Some(upstream_ipam(Some("my-ipam")))));
        let user =
            json!([{"dst": "10.96.0.0/12"}, {"dst": "192.168.244.0/24", "gw": "10.1.17.20"}]);
        let with = |extra: &[&str]| {
            let mut r = user.as_array().unwrap().clone();
            r.extend(extra.iter().map(|d| json!({"dst": d})));
            Value::Array(r)
        };
        for (env, ranges, routes) in [
            (
                "subnet-v4.env",
                json!([[{"subnet": "10.1.17.0/24"}]]),
                with(&["10.1.0.0/16"]),
            ),
            (
                "subnet-v6.env",
                json!([[{"subnet": "fc00::/64"}]]),
                with(&["fc00::/48"]),
            ),
            (
                "subnet-dual.env",
                json!([[{"subnet": "10.1.17.0/24"}], [{"subnet": "fc00::/64"}]]),
                with(&["10.1.0.0/16", "fc00::/48"]),
            ),
        ] {
            let want = json!({"type": "my-ipam", "unknown-param": "unknown-value",
                              "routes": routes, "ranges": ranges});
            assert_eq!(ipam_of(&fc, env), want, "{env}");
        }
    }

    // Upstream getDelegateIPAM with two networks (its test ends up with no input IPAM).
    #[test]
    fn ipam_two_networks_two_routes_one_range() {
        let fc = fconf(&upstream_input(None));
        assert_eq!(
            ipam_of(&fc, "subnet-v4-multi.env"),
            json!({"ranges": [[{"subnet": "10.1.17.0/24"}]],
                   "routes": [{"dst": "10.1.0.0/16"}, {"dst": "192.168.0.0/16"}],
                   "type": "host-local"})
        );
    }

    // Upstream getDelegateIPAM with input IPAM without `type`, three stacks.
    #[test]
    fn ipam_type_defaults_to_host_local() {
        let fc = fconf(&upstream_input(Some(upstream_ipam(None))));
        for env in ["subnet-v4.env", "subnet-v6.env", "subnet-dual.env"] {
            let ipam = ipam_of(&fc, env);
            assert_eq!(ipam["type"], "host-local", "{env}");
            assert_eq!(ipam["unknown-param"], "unknown-value");
            assert_eq!(ipam["routes"][1]["gw"], "10.1.17.20");
        }
    }

    #[test]
    fn golden_with_every_override_and_pass_through() {
        let fc = fconf(&json!({
            "cniVersion": "1.0.0", "name": "cbr0", "type": "flannel",
            "unknownTopLevel": "not forwarded",
            "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80}],
                              "bandwidth": {"ingressRate": 1.0}},
            "delegate": {"hairpinMode": true, "isDefaultGateway": true, "bridge": "cni1",
                         "runtimeConfig": {"replaced": true}, "cniVersion": "0.3.1",
                         "zeta": {"b": 1, "a": "<&>"}},
            "ipam": {"dataDir": "/tmp/hl", "subnet": "10.99.0.0/16",
                     "ranges": [[{"subnet": "10.99.0.0/16"}]],
                     "routes": [{"GW": "10.1.17.1", "dst": "0.0.0.0/0", "ignored": 1,
                                 "priority": 5, "table": 0}]}
        }));
        let d = build(&fc, &senv("subnet-dual-nomasq.env")).unwrap();
        assert_golden(&d.bytes, "delegate-overrides.json");
    }

    #[test]
    fn user_values_win_except_name_cniversion_and_ranges() {
        let fc = fconf(&json!({"name": "n", "cniVersion": "0.4.0",
            "delegate": {"type": "ptp", "ipMasq": true, "mtu": 1400, "isGateway": false}}));
        let d = build(&fc, &senv("subnet-v4.env")).unwrap();
        assert_eq!(d.plugin, "ptp");
        assert_eq!(
            String::from_utf8(d.bytes).unwrap(),
            r#"{"cniVersion":"0.4.0","ipMasq":true,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isGateway":false,"mtu":1400,"name":"n","type":"ptp"}"#
        );
        // Not a bridge: no isGateway added.
        let fc = fconf(&json!({"name": "n", "delegate": {"type": "ptp"}}));
        let d = build(&fc, &senv("subnet-v4.env")).unwrap();
        assert!(!d.conf.contains_key("isGateway"));
        // Delegate keys are a Go map: exact case, so `Type` is just another key.
        let fc = fconf(&json!({"name": "n", "delegate": {"Type": "ptp"}}));
        let d = build(&fc, &senv("subnet-v4.env")).unwrap();
        assert_eq!(
            (d.plugin.as_str(), &d.conf["Type"]),
            ("bridge", &json!("ptp"))
        );
        // Empty runtimeConfig still replaces the delegate's.
        let fc =
            fconf(&json!({"name": "n", "runtimeConfig": {}, "delegate": {"runtimeConfig": 1}}));
        let d = build(&fc, &senv("subnet-v4.env")).unwrap();
        assert_eq!(d.conf["runtimeConfig"], json!({}));
    }

    #[test]
    fn invalid_delegate_and_routes() {
        for (v, msg) in [
            (
                json!({"name": "n", "delegate": {"type": 1}}),
                "must have (string) 'type' field",
            ),
            (
                json!({"name": "n", "delegate": {"type": null}}),
                "must have (string) 'type' field",
            ),
            (
                json!({"name": "n", "delegate": {"name": "x"}}),
                "must not have 'name' field",
            ),
            (
                json!({"name": "n", "delegate": {"ipam": {}}}),
                "must not have 'ipam' field",
            ),
            (
                json!({"name": "n", "ipam": {"routes": {}}}),
                "failed to parse ipam.routes",
            ),
            (
                json!({"name": "n", "ipam": {"routes": [1]}}),
                "failed to parse ipam.routes",
            ),
            (
                json!({"name": "n", "ipam": {"routes": [{"dst": "x"}]}}),
                "failed to parse",
            ),
            (
                json!({"name": "n", "ipam": {"routes": [{"gw": "1.2.3.4"}]}}),
                "failed to parse",
            ),
        ] {
            let e = build(&fconf(&v), &senv("subnet-v4.env")).unwrap_err();
            assert_eq!(e.code, Code::InvalidConfig, "{v}");
            assert!(e.msg.contains(msg), "{v}: {e}");
        }
        // A null routes list is no routes, as Go's decoder makes it.
        let fc = fconf(&json!({"name": "n", "ipam": {"routes": null}}));
        assert_eq!(
            ipam_of(&fc, "subnet-v4.env")["routes"],
            json!([{"dst": "10.1.0.0/16"}])
        );
    }

    #[test]
    fn saved_conf_round_trip() {
        let s = SavedConf::parse(testdata("delegate-v4.json").as_bytes()).unwrap();
        assert_eq!(s.plugin, "bridge");
        let s = SavedConf::parse(br#"{"TYPE":"ptp","name":"n"}"#).unwrap();
        assert_eq!(s.plugin, "ptp");
        assert_eq!(SavedConf::parse(br#"{"name":"n"}"#).unwrap().plugin, "");
        assert!(SavedConf::parse(b"{trunc").is_err());
        assert!(SavedConf::parse(b"[]").is_err());
        assert!(SavedConf::parse(br#"{"type":1}"#).is_err());
        let out = s.with(&[("prevResult", json!({"ips": []}))]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"TYPE":"ptp","name":"n","prevResult":{"ips":[]}}"#
        );
    }
}
