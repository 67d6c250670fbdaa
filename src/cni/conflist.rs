//! The runtime's side of configuration (libcni `conf.go`): a network configuration list, the
//! version chosen for it, and the exact stdin each plugin in the chain receives (`name` and
//! `cniVersion` injected, `prevResult` converted to that version, `runtimeConfig` holding only the
//! capabilities the plugin asked for). weft's tests drive chains with it, and the flannel
//! meta-plugin builds its delegate's config the same way.

use super::error::{Code, Error};
use super::json::get_ci;
use super::result::CniResult;
use super::version::{self, Semver};
use serde_json::{Map, Value};

/// A parsed `.conflist` (or a single legacy `.conf`, up-converted to a one-plugin list).
#[derive(Debug, Clone)]
pub struct ConfList {
    pub name: String,
    /// The version every plugin in the list is called with.
    pub cni_version: String,
    pub disable_check: bool,
    pub disable_gc: bool,
    pub plugins: Vec<Map<String, Value>>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(Code::InvalidConfig, msg)
}

/// A bool written as JSON bool or as the strings "true"/"false", as libcni accepts.
fn loose_bool(obj: &Map<String, Value>, key: &str) -> Result<bool, Error> {
    match get_ci(obj, key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid(format!("{key} must be a bool, got {s:?}"))),
        },
        Some(other) => Err(invalid(format!("{key} must be a bool, got {other}"))),
    }
}

impl ConfList {
    pub fn parse(bytes: &[u8]) -> Result<ConfList, Error> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(Code::DecodingFailure, "error parsing configuration list")
                .with_details(e.to_string())
        })?;
        let obj = v
            .as_object()
            .ok_or_else(|| invalid("configuration list must be an object"))?;
        let name = get_ci(obj, "name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            return Err(invalid("missing network name"));
        }
        if !super::conf::is_valid_name(name) {
            return Err(invalid("invalid characters found in network name").with_details(name));
        }
        let plugins: Vec<Map<String, Value>> = match get_ci(obj, "plugins") {
            Some(Value::Array(list)) => list
                .iter()
                .map(|p| {
                    p.as_object()
                        .cloned()
                        .ok_or_else(|| invalid("plugin entry must be an object"))
                })
                .collect::<Result<_, _>>()?,
            // A legacy single-plugin file is a list of one.
            None if get_ci(obj, "type").is_some() => vec![obj.clone()],
            _ => return Err(invalid(format!("no plugins in list {name:?}"))),
        };
        if plugins.is_empty() {
            return Err(invalid(format!("no plugins in list {name:?}")));
        }
        for p in &plugins {
            let ty = get_ci(p, "type").and_then(Value::as_str).unwrap_or("");
            if ty.is_empty() || ty.contains('/') {
                return Err(invalid(format!("invalid plugin type {ty:?}")));
            }
        }
        let mut candidates: Vec<String> = Vec::new();
        if let Some(v) = get_ci(obj, "cniVersion").and_then(Value::as_str) {
            candidates.push(v.to_string());
        }
        if let Some(list) = get_ci(obj, "cniVersions") {
            let list = list
                .as_array()
                .ok_or_else(|| invalid("cniVersions must be a list"))?;
            for v in list {
                let s = v
                    .as_str()
                    .ok_or_else(|| invalid("cniVersions entries must be strings"))?;
                Semver::parse(s)
                    .map_err(|_| invalid(format!("invalid cniVersions entry {s:?}")))?;
                candidates.push(s.to_string());
            }
        }
        let current = Semver::parse(version::CURRENT)?;
        let mut best: Option<(Semver, String)> = None;
        for c in candidates {
            let sv = Semver::parse(&c)?;
            if sv > current {
                continue;
            }
            if best.as_ref().is_none_or(|(b, _)| sv > *b) {
                best = Some((sv, c));
            }
        }
        Ok(ConfList {
            name: name.to_string(),
            cni_version: best.map(|(_, v)| v).unwrap_or_default(),
            disable_check: loose_bool(obj, "disableCheck")?,
            disable_gc: loose_bool(obj, "disableGC")?,
            plugins,
        })
    }

    /// The stdin for plugin `idx`: its object with `name` and `cniVersion` set, `prevResult`
    /// converted to the list's version, and `runtimeConfig` from the capabilities it enables.
    pub fn plugin_stdin(
        &self,
        idx: usize,
        prev: Option<&CniResult>,
        capability_args: &Map<String, Value>,
    ) -> Result<Vec<u8>, Error> {
        let mut p = self
            .plugins
            .get(idx)
            .cloned()
            .ok_or_else(|| invalid(format!("no plugin {idx} in list {:?}", self.name)))?;
        p.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
        p.insert("name".into(), Value::String(self.name.clone()));
        if let Some(prev) = prev {
            let ver = if self.cni_version.is_empty() {
                "0.1.0"
            } else {
                &self.cni_version
            };
            p.insert("prevResult".into(), prev.to_value(ver)?);
        }
        let mut rc = Map::new();
        if let Some(Value::Object(caps)) = get_ci(&p, "capabilities") {
            for (cap, on) in caps {
                if on.as_bool() == Some(true) {
                    if let Some(v) = capability_args.get(cap) {
                        rc.insert(cap.clone(), v.clone());
                    }
                }
            }
        }
        if !rc.is_empty() {
            p.insert("runtimeConfig".into(), Value::Object(rc));
        }
        serde_json::to_vec(&Value::Object(p)).map_err(|e| invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_highest_supported_version() {
        let l = ConfList::parse(
            br#"{"cniVersion":"0.4.0","cniVersions":["1.0.0","9.0.0"],"name":"n",
                 "plugins":[{"type":"bridge"}],"disableCheck":"true"}"#,
        )
        .unwrap();
        assert_eq!(l.cni_version, "1.0.0");
        assert!(l.disable_check && !l.disable_gc);
        let e = ConfList::parse(br#"{"cniVersions":["x"],"name":"n","plugins":[{"type":"a"}]}"#)
            .unwrap_err();
        assert!(e.msg.contains("invalid cniVersions entry"));
        assert!(ConfList::parse(br#"{"name":"n","plugins":[]}"#).is_err());
        assert!(ConfList::parse(br#"{"name":"n","plugins":[{"type":"../x"}]}"#).is_err());
        let single = ConfList::parse(br#"{"cniVersion":"0.3.1","name":"n","type":"ptp"}"#).unwrap();
        assert_eq!(single.plugins.len(), 1);
    }

    #[test]
    fn builds_each_plugin_stdin() {
        let l = ConfList::parse(
            br#"{"cniVersion":"0.4.0","name":"net",
                 "plugins":[{"type":"bridge","name":"ignored","capabilities":{"mac":true,"ips":false}},
                            {"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        let caps = json!({"mac": "02:00:00:00:00:01", "ips": ["10.0.0.5"]});
        let first: Value =
            serde_json::from_slice(&l.plugin_stdin(0, None, caps.as_object().unwrap()).unwrap())
                .unwrap();
        assert_eq!(first["name"], "net");
        assert_eq!(first["cniVersion"], "0.4.0");
        assert_eq!(first["runtimeConfig"], json!({"mac": "02:00:00:00:00:01"}));
        assert!(first.get("prevResult").is_none());
        let prev = CniResult {
            ips: vec![crate::cni::result::IpConfig {
                interface: None,
                address: "10.0.0.5/24".parse().unwrap(),
                gateway: None,
            }],
            ..Default::default()
        };
        let second: Value = serde_json::from_slice(
            &l.plugin_stdin(1, Some(&prev), caps.as_object().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(second["prevResult"]["ips"][0]["version"], "4");
        assert!(
            second.get("runtimeConfig").is_none(),
            "no capability supplied for it"
        );
    }
}
