//! The request configuration a plugin reads from stdin: the fields every plugin shares, with the
//! raw object kept so plugin-specific keys and delegation see exactly what the runtime sent.

use super::error::{Code, Error};
use super::json::{fold_keys, get_ci};
use super::result::Dns;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One attachment named in GC's `cni.dev/valid-attachments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    #[serde(rename = "ifname")]
    pub ifname: String,
}

/// The shared part of a network configuration, validated.
#[derive(Debug, Clone)]
pub struct NetConf {
    /// `cniVersion` as written ("" when absent, which means 0.1.0).
    pub cni_version: String,
    pub name: String,
    pub plugin_type: String,
    /// `ipam.type`, "" when there is no IPAM section or it has no type.
    pub ipam_type: String,
    pub prev_result: Option<Value>,
    /// `runtimeConfig` (any case), an empty map when absent.
    pub runtime_config: Map<String, Value>,
    pub valid_attachments: Option<Vec<Attachment>>,
    /// The object, for plugin-specific keys: whole from [`NetConf::parse`], the shared and
    /// the plugin's own keys from [`NetConf::parse_for`].
    pub raw: Map<String, Value>,
}

/// Go's network-name rule, shared with container IDs.
pub fn is_valid_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Go's `ValidateNetworkName`.
pub fn validate_network_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::invalid_config("missing network name"));
    }
    if !is_valid_name(name) {
        return Err(
            Error::invalid_config("invalid characters found in network name").with_details(name),
        );
    }
    Ok(())
}

fn opt_string(obj: &Map<String, Value>, key: &str) -> Result<String, Error> {
    match get_ci(obj, key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(
            Error::new(Code::DecodingFailure, "error unmarshall network config")
                .with_details(format!("{key}: expected a string, got {other}")),
        ),
    }
}

/// The top-level keys every plugin's [`NetConf`] keeps, besides the plugin's own.
pub const SHARED_KEYS: [&str; 9] = [
    "cniVersion",
    "name",
    "type",
    "ipam",
    "dns",
    "args",
    "runtimeConfig",
    "prevResult",
    "cni.dev/valid-attachments",
];

/// Which top-level keys become part of the tree; the others are checked as JSON and skipped,
/// as Go's decoder skips what its struct has no field for. A config can carry megabytes its
/// plugin never reads (a runtime's annotations, another plugin's state); a tree of those costs
/// several times their size.
#[derive(Clone, Copy)]
struct Keep<'k>(Option<&'k [&'k str]>);

impl Keep<'_> {
    fn wants(&self, key: &str) -> bool {
        let Some(own) = self.0 else {
            return true;
        };
        SHARED_KEYS
            .iter()
            .chain(own)
            .any(|k| k.eq_ignore_ascii_case(key))
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Keep<'_> {
    type Value = Map<String, Value>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Keep<'_> {
    type Value = Map<String, Value>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the network config as a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if self.wants(&key) {
                out.insert(key, map.next_value()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

impl NetConf {
    /// Parses and validates stdin, keeping every key: JSON object (code 6), a valid `name`
    /// (code 7).
    pub fn parse(stdin: &[u8]) -> Result<NetConf, Error> {
        NetConf::parse_keeping(stdin, Keep(None))
    }

    /// [`NetConf::parse`] for a plugin that reads `own` beside [`SHARED_KEYS`]: other keys are
    /// not kept in [`NetConf::raw`] (the bytes stay in the request for delegation).
    pub fn parse_for(stdin: &[u8], own: &[&str]) -> Result<NetConf, Error> {
        NetConf::parse_keeping(stdin, Keep(Some(own)))
    }

    fn parse_keeping(stdin: &[u8], keep: Keep) -> Result<NetConf, Error> {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_slice(stdin);
        let raw = keep
            .deserialize(&mut de)
            .and_then(|raw| de.end().map(|_| raw))
            .map_err(|e| {
                Error::new(Code::DecodingFailure, "error unmarshall network config")
                    .with_details(e.to_string())
            })?;
        let name = opt_string(&raw, "name")?;
        validate_network_name(&name)?;
        let ipam_type = match get_ci(&raw, "ipam") {
            Some(Value::Object(ipam)) => opt_string(ipam, "type")?,
            _ => String::new(),
        };
        let runtime_config = match get_ci(&raw, "runtimeConfig") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let valid_attachments = match get_ci(&raw, "cni.dev/valid-attachments") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value::<Vec<Value>>(v.clone())
                    .and_then(|list| {
                        list.into_iter()
                            .map(|a| {
                                let mut a = match a {
                                    Value::Object(m) => m,
                                    other => return serde_json::from_value(other),
                                };
                                fold_keys(&mut a, &["containerID", "ifname"]);
                                serde_json::from_value(Value::Object(a))
                            })
                            .collect()
                    })
                    .map_err(|e| {
                        Error::new(Code::DecodingFailure, "error unmarshall network config")
                            .with_details(format!("cni.dev/valid-attachments: {e}"))
                    })?,
            ),
        };
        Ok(NetConf {
            cni_version: opt_string(&raw, "cniVersion")?,
            plugin_type: opt_string(&raw, "type")?,
            prev_result: get_ci(&raw, "prevResult").filter(|v| !v.is_null()).cloned(),
            name,
            ipam_type,
            runtime_config,
            valid_attachments,
            raw,
        })
    }

    /// The version results are printed in: the config's, with "" meaning 0.1.0.
    pub fn result_version(&self) -> &str {
        if self.cni_version.is_empty() {
            "0.1.0"
        } else {
            &self.cni_version
        }
    }

    /// The config's own `dns` when it sets any field (even to an empty list): bridge and ptp then
    /// report it instead of the IPAM plugin's, as the reference decides.
    pub fn dns_override(&self) -> Result<Option<Dns>, Error> {
        let Some(Value::Object(m)) = get_ci(&self.raw, "dns") else {
            return Ok(None);
        };
        let mut m = m.clone();
        let keys = ["nameservers", "domain", "search", "options"];
        fold_keys(&mut m, &keys);
        if !keys.iter().any(|k| m.contains_key(*k)) {
            return Ok(None);
        }
        serde_json::from_value(Value::Object(m))
            .map(Some)
            .map_err(|e| {
                Error::new(Code::DecodingFailure, "failed to load netconf: dns")
                    .with_details(e.to_string())
            })
    }

    /// A plugin-specific section decoded into its wire type, keys folded to `keys` first.
    pub fn section<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        keys: &[&str],
    ) -> Result<Option<T>, Error> {
        let Some(v) = get_ci(&self.raw, key).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let mut v = v.clone();
        if let Value::Object(m) = &mut v {
            fold_keys(m, keys);
        }
        serde_json::from_value(v).map(Some).map_err(|e| {
            Error::invalid_config(format!("failed to load netconf: {key}"))
                .with_details(e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_name_and_json() {
        assert_eq!(
            NetConf::parse(b"{").unwrap_err().code,
            Code::DecodingFailure
        );
        assert_eq!(
            NetConf::parse(b"[]").unwrap_err().code,
            Code::DecodingFailure
        );
        let e = NetConf::parse(br#"{"cniVersion":"1.0.0"}"#).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (Code::InvalidConfig, "missing network name")
        );
        for bad in ["../x", "/", "a/b", "-x", ".x", "a b"] {
            let j = serde_json::json!({"name": bad}).to_string();
            let e = NetConf::parse(j.as_bytes()).unwrap_err();
            assert_eq!(e.msg, "invalid characters found in network name", "{bad}");
        }
        assert!(NetConf::parse(br#"{"name":"a.b_c-9"}"#).is_ok());
    }

    #[test]
    fn reads_shared_fields_case_insensitively() {
        let c = NetConf::parse(
            br#"{"CNIVersion":"0.4.0","Name":"n","TYPE":"bridge","IPAM":{"Type":"host-local"},
                "RuntimeConfig":{"mac":"x"},"prevResult":{"ips":[]},
                "cni.dev/valid-attachments":[{"containerID":"c","ifname":"eth0"}]}"#,
        )
        .unwrap();
        assert_eq!(c.cni_version, "0.4.0");
        assert_eq!(c.name, "n");
        assert_eq!(c.plugin_type, "bridge");
        assert_eq!(c.ipam_type, "host-local");
        assert_eq!(c.runtime_config["mac"], "x");
        assert!(c.prev_result.is_some());
        assert_eq!(c.valid_attachments.unwrap()[0].container_id, "c");
        assert_eq!(
            NetConf::parse(br#"{"name":"n"}"#).unwrap().result_version(),
            "0.1.0"
        );
    }
}
