//! A network configuration list as libcni (`conf.go`) reads it: the version chosen for it, its
//! flags, its plugins, and the exact stdin each plugin in the chain receives (`name` and
//! `cniVersion` injected, `prevResult` converted to that version, `runtimeConfig` holding only
//! the capabilities the plugin asked for).
//!
//! The list's own keys are matched exactly, as libcni reads them into a map; a plugin's `type`
//! is matched ignoring case, as Go's struct decoding does.

use crate::cni::error::{Code, Error};
use crate::cni::json::get_ci;
use crate::cni::result::CniResult;
use crate::cni::version::{self, Semver};
use serde_json::{Map, Value};
use std::path::Path;

/// A parsed `.conflist` (or a single `.conf`, up-converted to a list of one).
#[derive(Debug, Clone)]
pub struct ConfList {
    pub name: String,
    /// The version every plugin in the list is called with.
    pub cni_version: String,
    pub disable_check: bool,
    pub disable_gc: bool,
    pub load_only_inlined_plugins: bool,
    pub plugins: Vec<Map<String, Value>>,
    /// The file as read: what the result cache keeps as the attachment's config.
    pub bytes: Vec<u8>,
}

fn decoding(msg: impl Into<String>) -> Error {
    Error::new(Code::DecodingFailure, msg)
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(Code::InvalidConfig, msg)
}

/// libcni's prefix for everything wrong in a list's own keys.
fn list_error(msg: impl std::fmt::Display) -> Error {
    invalid(format!("error parsing configuration list: {msg}"))
}

/// A bool written as JSON bool or as the strings "true"/"false" (any case), as libcni accepts.
fn loose_bool(obj: &Map<String, Value>, key: &str) -> Result<bool, Error> {
    match obj.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(list_error(format!("invalid value {other:?} for {key}"))),
        },
        Some(other) => Err(list_error(format!(
            "invalid type {} for {key}",
            kind(other)
        ))),
    }
}

/// A JSON value's kind, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// One plugin object, as libcni's `NetworkPluginConfFromBytes` accepts it: an object with a
/// non-empty string `type`.
fn plugin_object(v: &Value) -> Result<Map<String, Value>, Error> {
    let obj = v.as_object().ok_or_else(|| {
        decoding(format!(
            "error parsing configuration: {} is not an object",
            kind(v)
        ))
    })?;
    match get_ci(obj, "type") {
        Some(Value::String(t)) if !t.is_empty() => Ok(obj.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(invalid("error parsing configuration: missing 'type'"))
        }
        Some(other) => Err(decoding(format!(
            "error parsing configuration: type must be a string, got {}",
            kind(other)
        ))),
    }
}

/// The version libcni picks: the highest of `cniVersions` and `cniVersion` that this library
/// supports; with no `cniVersions`, `cniVersion` as written.
fn choose_version(obj: &Map<String, Value>) -> Result<String, Error> {
    let mut version = match obj.get("cniVersion") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(list_error(format!(
                "invalid cniVersion type {}",
                kind(other)
            )))
        }
    };
    let Some(listed) = obj.get("cniVersions") else {
        return Ok(version);
    };
    let listed = listed
        .as_array()
        .ok_or_else(|| list_error(format!("invalid type for cniVersions: {}", kind(listed))))?;
    let current = Semver::parse(version::CURRENT)?;
    let mut usable: Vec<(Semver, String)> = Vec::new();
    for (i, v) in listed.iter().enumerate() {
        let s = v.as_str().ok_or_else(|| {
            list_error(format!(
                "invalid type for cniVersions index {i}: {}",
                kind(v)
            ))
        })?;
        let sv = Semver::parse(s).map_err(|e| {
            list_error(format!(
                "invalid cniVersions entry {s} at index {i}: {}",
                e.msg
            ))
        })?;
        if sv <= current {
            usable.push((sv, s.to_string()));
        }
    }
    if !version.is_empty() {
        let sv = Semver::parse(&version)
            .map_err(|e| list_error(format!("invalid cniVersion {version}: {}", e.msg)))?;
        if sv <= current {
            usable.push((sv, version.clone()));
        }
    }
    if let Some((_, best)) = usable.into_iter().max_by(|a, b| a.0.cmp(&b.0)) {
        version = best;
    }
    Ok(version)
}

impl ConfList {
    /// Parses a `.conflist`. Without `plugins` (and `loadOnlyInlinedPlugins` false) the list is
    /// empty here; [`ConfList::from_file`] then adds the plugin files beside it.
    pub fn parse(bytes: &[u8]) -> Result<ConfList, Error> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| decoding(format!("error parsing configuration list: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| decoding("error parsing configuration list: not an object"))?;
        let name = match obj.get("name") {
            None => return Err(list_error("no name")),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(list_error(format!("invalid name type {}", kind(other)))),
        };
        let mut list = ConfList {
            name,
            cni_version: choose_version(obj)?,
            disable_check: loose_bool(obj, "disableCheck")?,
            disable_gc: loose_bool(obj, "disableGC")?,
            load_only_inlined_plugins: loose_bool(obj, "loadOnlyInlinedPlugins")?,
            plugins: Vec::new(),
            bytes: bytes.to_vec(),
        };
        match obj.get("plugins") {
            None if list.load_only_inlined_plugins => Err(list_error(
                "`loadOnlyInlinedPlugins` is true, and no 'plugins' key",
            )),
            None => Ok(list),
            Some(Value::Array(entries)) if entries.is_empty() => {
                Err(list_error("no plugins in list"))
            }
            Some(Value::Array(entries)) => {
                for (i, p) in entries.iter().enumerate() {
                    let p = plugin_object(p).map_err(|e| {
                        Error::new(
                            e.code,
                            format!("failed to parse plugin config {i}: {}", e.msg),
                        )
                    })?;
                    list.plugins.push(p);
                }
                Ok(list)
            }
            Some(other) => Err(list_error(format!(
                "invalid 'plugins' type {}",
                kind(other)
            ))),
        }
    }

    /// Reads a `.conflist` file, adding the plugin objects of `<dir>/<name>/*.conf` (sorted by
    /// file name) unless `loadOnlyInlinedPlugins` says not to.
    pub fn from_file(path: &Path) -> Result<ConfList, Error> {
        let bytes = read(path)?;
        let mut list = ConfList::parse(&bytes)?;
        if !list.load_only_inlined_plugins {
            let dir = path.parent().unwrap_or(Path::new(".")).join(&list.name);
            for file in conf_files(&dir, &["conf"]).map_err(|e| {
                Error::new(
                    Code::IoFailure,
                    format!(
                        "failed to read plugin config files in {}: {e}",
                        dir.display()
                    ),
                )
            })? {
                let bytes = read(&file)?;
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| decoding(format!("error parsing configuration: {e}")))?;
                list.plugins.push(plugin_object(&v)?);
            }
        }
        if list.plugins.is_empty() {
            return Err(invalid("no plugin configs found"));
        }
        Ok(list)
    }

    /// A single plugin's `.conf`, up-converted to a list of one as libcni does: the list takes
    /// the plugin's `name` and `cniVersion`.
    pub fn from_single(bytes: &[u8]) -> Result<ConfList, Error> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| decoding(format!("error parsing configuration: {e}")))?;
        let plugin = plugin_object(&v)?;
        let text = |key: &str| {
            get_ci(&plugin, key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (name, cni_version) = (text("name"), text("cniVersion"));
        // The list libcni makes of it, keys in Go's order, is what the cache keeps.
        let mut as_list = Map::new();
        as_list.insert("cniVersion".into(), cni_version.clone().into());
        as_list.insert("name".into(), name.clone().into());
        as_list.insert(
            "plugins".into(),
            Value::Array(vec![Value::Object(plugin.clone())]),
        );
        let bytes = serde_json::to_vec(&Value::Object(as_list))
            .map_err(|e| invalid(format!("failed to encode the list: {e}")))?;
        Ok(ConfList {
            name,
            cni_version,
            disable_check: false,
            disable_gc: false,
            load_only_inlined_plugins: true,
            plugins: vec![plugin],
            bytes,
        })
    }

    /// Plugin `idx`'s `type`.
    pub fn plugin_type(&self, idx: usize) -> &str {
        self.plugins
            .get(idx)
            .and_then(|p| get_ci(p, "type"))
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// How libcni names plugin `idx` in its errors: `type="bridge"`, and ` name="…"` when the
    /// plugin object has a name of its own.
    pub fn describe(&self, idx: usize) -> String {
        let mut out = format!("type={:?}", self.plugin_type(idx));
        if let Some(name) = self
            .plugins
            .get(idx)
            .and_then(|p| get_ci(p, "name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            out.push_str(&format!(" name={name:?}"));
        }
        out
    }

    /// The version to convert results to: the list's, or 0.1.0 for a list that names none.
    pub fn result_version(&self) -> &str {
        if self.cni_version.is_empty() {
            "0.1.0"
        } else {
            &self.cni_version
        }
    }

    /// Plugin `idx`'s object with `name` and `cniVersion` set and each of `extra` inserted:
    /// what STATUS and GC send.
    pub fn plugin_with(&self, idx: usize, extra: &[(&str, Value)]) -> Result<Vec<u8>, Error> {
        let mut p = self
            .plugins
            .get(idx)
            .cloned()
            .ok_or_else(|| invalid(format!("no plugin {idx} in list {:?}", self.name)))?;
        p.insert("name".into(), Value::String(self.name.clone()));
        p.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
        for (k, v) in extra {
            p.insert((*k).into(), v.clone());
        }
        serde_json::to_vec(&Value::Object(p)).map_err(|e| invalid(e.to_string()))
    }

    /// The stdin for plugin `idx` on ADD, CHECK or DEL: its object with `name` and
    /// `cniVersion` set, `prevResult` converted to the list's version, and `runtimeConfig`
    /// from the capabilities it enables.
    pub fn plugin_stdin(
        &self,
        idx: usize,
        prev: Option<&CniResult>,
        capability_args: &Map<String, Value>,
    ) -> Result<Vec<u8>, Error> {
        let mut extra = Vec::new();
        if let Some(prev) = prev {
            extra.push(("prevResult", prev.to_value(self.result_version())?));
        }
        let mut rc = Map::new();
        if let Some(Value::Object(caps)) = self
            .plugins
            .get(idx)
            .and_then(|p| get_ci(p, "capabilities"))
        {
            for (cap, on) in caps {
                if on.as_bool() == Some(true) {
                    if let Some(v) = capability_args.get(cap) {
                        rc.insert(cap.clone(), v.clone());
                    }
                }
            }
        }
        if !rc.is_empty() {
            extra.push(("runtimeConfig", Value::Object(rc)));
        }
        self.plugin_with(idx, &extra)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        Error::new(
            Code::IoFailure,
            format!("error reading {}: {e}", path.display()),
        )
    })
}

/// The regular files in `dir` whose extension is one of `extensions`, sorted by name; none when
/// `dir` does not exist (libcni's `ConfFiles`).
pub fn conf_files(dir: &Path, extensions: &[&str]) -> std::io::Result<Vec<std::path::PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            continue;
        }
        let path = entry.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if extensions.contains(&ext) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
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
        assert!(
            e.msg.contains("invalid cniVersions entry x at index 0"),
            "{}",
            e.msg
        );
        // Only cniVersion: taken as written, for the plugins to judge.
        let l = ConfList::parse(br#"{"cniVersion":"9.9.9","name":"n","plugins":[{"type":"a"}]}"#)
            .unwrap();
        assert_eq!(l.cni_version, "9.9.9");
    }

    #[test]
    fn list_errors_are_libcnis() {
        let msg = |b: &[u8]| ConfList::parse(b).unwrap_err().msg;
        assert_eq!(
            msg(br#"{"name":"n","plugins":[]}"#),
            "error parsing configuration list: no plugins in list"
        );
        assert_eq!(
            msg(br#"{"plugins":[]}"#),
            "error parsing configuration list: no name"
        );
        assert_eq!(
            msg(br#"{"name":"n","plugins":[{"name":"x"}]}"#),
            "failed to parse plugin config 0: error parsing configuration: missing 'type'"
        );
        assert_eq!(
            msg(br#"{"name":"n","loadOnlyInlinedPlugins":true}"#),
            "error parsing configuration list: `loadOnlyInlinedPlugins` is true, and no 'plugins' key"
        );
        assert_eq!(
            msg(br#"{"name":"n","disableGC":"maybe","plugins":[{"type":"a"}]}"#),
            "error parsing configuration list: invalid value \"maybe\" for disableGC"
        );
        // No plugins key: the plugin files beside the list supply them.
        assert!(ConfList::parse(br#"{"name":"n"}"#)
            .unwrap()
            .plugins
            .is_empty());
        let single =
            ConfList::from_single(br#"{"cniVersion":"0.3.1","name":"n","type":"ptp"}"#).unwrap();
        assert_eq!(
            (single.name.as_str(), single.cni_version.as_str()),
            ("n", "0.3.1")
        );
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
        assert_eq!(l.describe(0), r#"type="bridge" name="ignored""#);
        assert_eq!(l.describe(1), r#"type="portmap""#);
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
