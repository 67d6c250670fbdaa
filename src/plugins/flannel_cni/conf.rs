//! The flannel plugin's own keys, read from the network config the runtime sent.
//!
//! Go decodes these into struct fields, so the keys match in any case (`SubnetFile` works);
//! the contents of `delegate`, `ipam` and `runtimeConfig` are Go maps, whose keys are kept
//! exactly as written. Top-level keys flannel does not know are ignored, as upstream does: only
//! `delegate`, `ipam` and `runtimeConfig` reach the delegate.

use crate::cni::json::get_ci;
use crate::cni::{Code, Error, NetConf};
use serde_json::{Map, Value};
use std::path::PathBuf;

pub const DEFAULT_SUBNET_FILE: &str = "/run/flannel/subnet.env";
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/flannel";

/// The flannel plugin's own top-level keys (`ipam` and `runtimeConfig` are shared ones).
pub const KEYS: [&str; 3] = ["subnetFile", "dataDir", "delegate"];

/// The flannel plugin's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct FlannelConf {
    pub name: String,
    pub plugin_type: String,
    /// `cniVersion` as written ("" when absent): the delegate gets it only when non-empty.
    pub cni_version: String,
    pub subnet_file: PathBuf,
    pub data_dir: PathBuf,
    /// `delegate`; `None` when absent or null.
    pub delegate: Option<Map<String, Value>>,
    /// `ipam`: the base of the delegate's `ipam`; `None` when absent or null.
    pub ipam: Option<Map<String, Value>>,
    /// `runtimeConfig`, passed to the delegate when present (even empty).
    pub runtime_config: Option<Map<String, Value>>,
}

fn decode_error(key: &str, want: &str, got: &Value) -> Error {
    Error::new(
        Code::DecodingFailure,
        format!("failed to load netconf: {key} must be {want}"),
    )
    .with_details(format!("got {got}"))
}

/// A path key: a non-empty string, or the default when absent or null (Go leaves the field
/// at its default for a JSON null).
fn path_key(raw: &Map<String, Value>, key: &str, default: &str) -> Result<PathBuf, Error> {
    match get_ci(raw, key) {
        None | Some(Value::Null) => Ok(PathBuf::from(default)),
        // Go would take "" and then fail to open "" (or, for dataDir, use the working directory).
        Some(Value::String(s)) if s.is_empty() => Err(Error::invalid_config(format!(
            "{key} must not be empty (leave it out for the default {default})"
        ))),
        Some(Value::String(s)) => Ok(PathBuf::from(s)),
        Some(other) => Err(decode_error(key, "a string", other)),
    }
}

fn object_key(raw: &Map<String, Value>, key: &str) -> Result<Option<Map<String, Value>>, Error> {
    match get_ci(raw, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(other) => Err(decode_error(key, "an object", other)),
    }
}

impl FlannelConf {
    /// Reads flannel's keys with upstream's defaults. Type errors are code 6, as a Go decode
    /// error would be; nothing is checked here that only ADD needs.
    pub fn load(conf: &NetConf) -> Result<FlannelConf, Error> {
        let raw = &conf.raw;
        Ok(FlannelConf {
            name: conf.name.clone(),
            plugin_type: conf.plugin_type.clone(),
            cni_version: conf.cni_version.clone(),
            subnet_file: path_key(raw, "subnetFile", DEFAULT_SUBNET_FILE)?,
            data_dir: path_key(raw, "dataDir", DEFAULT_DATA_DIR)?,
            delegate: object_key(raw, "delegate")?,
            ipam: object_key(raw, "ipam")?,
            runtime_config: object_key(raw, "runtimeConfig")?,
        })
    }

    /// Where DEL looks for the saved config (see [`crate::cni::lenient`]): `None` when
    /// `dataDir` is unusable, because ADD then refused the config and saved nothing.
    pub fn data_dir_for_del(conf: &NetConf) -> Option<PathBuf> {
        path_key(&conf.raw, "dataDir", DEFAULT_DATA_DIR)
            .map_err(|e| log::warn!("flannel: DEL: {e}; ADD saved nothing, nothing to remove"))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(v: Value) -> Result<FlannelConf, Error> {
        FlannelConf::load(&NetConf::parse(v.to_string().as_bytes()).unwrap())
    }

    // Upstream loadFlannelNetConf with subnetFile and dataDir given (its three stacks share the
    // same input shape).
    #[test]
    fn reads_explicit_paths() {
        for env in [
            "/tmp/subnet-v4.env",
            "/tmp/subnet-v6.env",
            "/tmp/subnet-dual.env",
        ] {
            let c = load(json!({"name": "cni-flannel", "type": "flannel",
                                "subnetFile": env, "dataDir": "/tmp/dataDir1"}))
            .unwrap();
            assert_eq!(c.name, "cni-flannel");
            assert_eq!(c.plugin_type, "flannel");
            assert_eq!(c.subnet_file, PathBuf::from(env));
            assert_eq!(c.data_dir, PathBuf::from("/tmp/dataDir1"));
        }
    }

    // Upstream loadFlannelNetConf with only name and type (three identical variants upstream).
    #[test]
    fn defaults_paths() {
        let c = load(json!({"name": "cni-flannel", "type": "flannel"})).unwrap();
        assert_eq!(c.name, "cni-flannel");
        assert_eq!(c.plugin_type, "flannel");
        assert_eq!(c.subnet_file, PathBuf::from("/run/flannel/subnet.env"));
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/cni/flannel"));
        assert_eq!(c.cni_version, "");
        assert!(c.delegate.is_none() && c.ipam.is_none() && c.runtime_config.is_none());
        let c = load(json!({"name": "n", "subnetFile": null, "delegate": null})).unwrap();
        assert_eq!(c.subnet_file, PathBuf::from(DEFAULT_SUBNET_FILE));
        assert!(c.delegate.is_none());
    }

    #[test]
    fn keys_match_in_any_case_contents_do_not_change() {
        let c = load(json!({"name": "n", "SubnetFile": "/a", "DATADIR": "/b",
                            "Delegate": {"Type": "x"}, "IPAM": {"Routes": []},
                            "RuntimeConfig": {}}))
        .unwrap();
        assert_eq!(c.subnet_file, PathBuf::from("/a"));
        assert_eq!(c.data_dir, PathBuf::from("/b"));
        assert_eq!(c.delegate.unwrap()["Type"], "x");
        assert!(c.ipam.unwrap().contains_key("Routes"));
        assert_eq!(c.runtime_config, Some(Map::new()));
    }

    #[test]
    fn wrong_types_and_empty_paths() {
        for (v, code) in [
            (json!({"name": "n", "subnetFile": 5}), Code::DecodingFailure),
            (
                json!({"name": "n", "dataDir": ["/x"]}),
                Code::DecodingFailure,
            ),
            (
                json!({"name": "n", "delegate": "bridge"}),
                Code::DecodingFailure,
            ),
            (json!({"name": "n", "ipam": []}), Code::DecodingFailure),
            (
                json!({"name": "n", "runtimeConfig": 1}),
                Code::DecodingFailure,
            ),
            (json!({"name": "n", "dataDir": ""}), Code::InvalidConfig),
            (json!({"name": "n", "subnetFile": ""}), Code::InvalidConfig),
        ] {
            let e = load(v.clone()).unwrap_err();
            assert_eq!(e.code, code, "{v}: {e}");
        }
        let e = load(json!({"name": "n", "delegate": "bridge"})).unwrap_err();
        assert_eq!(e.msg, "failed to load netconf: delegate must be an object");
    }
}
