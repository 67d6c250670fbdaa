//! libcni's result cache: one file per attachment, `<dir>/results/<network>-<containerID>-<ifname>`,
//! holding what ADD was run with and the result it gave, so that CHECK and DEL can pass that
//! result as `prevResult` and a DEL can run with the config of its ADD. The JSON is libcni's
//! (`kind` `cniCacheV1`, the config as base64 bytes, map keys sorted as Go writes them), so a
//! host can move between weft's cnitool and a Go runtime with its attachments known.

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// libcni's default cache directory.
pub const DEFAULT_DIR: &str = "/var/lib/cni";

const KIND: &str = "cniCacheV1";

/// One attachment's cache record.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub container_id: String,
    pub network: String,
    pub ifname: String,
    /// The conflist's bytes as loaded for the ADD.
    pub config: Vec<u8>,
    pub netns: String,
    pub cni_args: Vec<(String, String)>,
    pub capability_args: Map<String, Value>,
    /// The chain's final result, in the version it was printed in.
    pub result: Option<Value>,
}

/// The cache file of one attachment.
pub fn path(dir: &Path, network: &str, container_id: &str, ifname: &str) -> Result<PathBuf> {
    if network.is_empty() || container_id.is_empty() || ifname.is_empty() {
        bail!(
            "cache file path requires network name ({network:?}), container ID \
             ({container_id:?}), and interface name ({ifname:?})"
        );
    }
    Ok(dir
        .join("results")
        .join(format!("{network}-{container_id}-{ifname}")))
}

/// Go writes maps with their keys sorted, at every depth.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

impl Entry {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), KIND.into());
        m.insert("containerId".into(), self.container_id.clone().into());
        m.insert("config".into(), base64::encode(&self.config).into());
        m.insert("ifName".into(), self.ifname.clone().into());
        m.insert("networkName".into(), self.network.clone().into());
        if !self.netns.is_empty() {
            m.insert("netns".into(), self.netns.clone().into());
        }
        if !self.cni_args.is_empty() {
            let pairs = self
                .cni_args
                .iter()
                .map(|(k, v)| Value::Array(vec![k.clone().into(), v.clone().into()]))
                .collect();
            m.insert("cniArgs".into(), Value::Array(pairs));
        }
        if !self.capability_args.is_empty() {
            let caps = Value::Object(self.capability_args.clone());
            m.insert("capabilityArgs".into(), sorted(&caps));
        }
        if let Some(r) = &self.result {
            m.insert("result".into(), sorted(r));
        }
        Value::Object(m)
    }

    /// Reads a record; `Ok(None)` for a file that is not a cniCacheV1 record (libcni skips
    /// those too).
    fn from_json(bytes: &[u8]) -> Result<Option<Entry>> {
        let v: Value = serde_json::from_slice(bytes).context("not JSON")?;
        let Some(o) = v.as_object() else {
            return Ok(None);
        };
        if o.get("kind").and_then(Value::as_str) != Some(KIND) {
            return Ok(None);
        }
        let text = |k: &str| {
            o.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let config = base64::decode(&text("config"))
            .map_err(|e| anyhow::anyhow!("config is not base64: {e}"))?;
        let mut cni_args = Vec::new();
        if let Some(Value::Array(pairs)) = o.get("cniArgs") {
            for p in pairs {
                match p.as_array().map(Vec::as_slice) {
                    Some([Value::String(k), Value::String(v)]) => {
                        cni_args.push((k.clone(), v.clone()))
                    }
                    _ => bail!("cniArgs entry {p} is not a [key, value] pair"),
                }
            }
        }
        Ok(Some(Entry {
            container_id: text("containerId"),
            network: text("networkName"),
            ifname: text("ifName"),
            config,
            netns: text("netns"),
            cni_args,
            capability_args: o
                .get("capabilityArgs")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            result: o.get("result").filter(|r| r.is_object()).cloned(),
        }))
    }
}

/// Writes `e` under `dir`: a new file renamed into place, so a reader never sees half a record
/// and a crash leaves the old one.
pub fn write(dir: &Path, e: &Entry) -> Result<()> {
    let file = path(dir, &e.network, &e.container_id, &e.ifname)?;
    let parent = file.parent().context("cache path has no directory")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("failed to create {}", parent.display()))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700));
    let tmp = parent.join(format!(
        ".{}.tmp",
        file.file_name().unwrap_or_default().to_string_lossy()
    ));
    let bytes = serde_json::to_vec(&e.to_json()).context("failed to encode the cache record")?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("failed to create {}", tmp.display()))?;
    f.write_all(&bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("failed to write {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("failed to write {}", file.display()))
}

/// The record of one attachment, if there is one.
pub fn read(dir: &Path, network: &str, container_id: &str, ifname: &str) -> Result<Option<Entry>> {
    let file = path(dir, network, container_id, ifname)?;
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", file.display())),
    };
    Entry::from_json(&bytes).with_context(|| format!("failed to read {}", file.display()))
}

/// Removes one attachment's record; a missing one is no error.
pub fn remove(dir: &Path, network: &str, container_id: &str, ifname: &str) -> Result<()> {
    let file = path(dir, network, container_id, ifname)?;
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("failed to remove {}", file.display()))
        }
        _ => Ok(()),
    }
}

/// Every readable record of `network`, in file-name order (unreadable files are skipped, as
/// libcni skips them).
pub fn list(dir: &Path, network: &str) -> Result<Vec<Entry>> {
    let results = dir.join("results");
    let mut names: Vec<PathBuf> = match std::fs::read_dir(&results) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", results.display())),
    };
    names.sort();
    Ok(names
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter_map(|b| Entry::from_json(&b).ok().flatten())
        .filter(|e| e.network == network && !e.ifname.is_empty() && !e.container_id.is_empty())
        .collect())
}

/// Standard base64 with padding: how Go's encoding/json writes a `[]byte`.
mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(data: &[u8]) -> String {
        let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(text: &str) -> Result<Vec<u8>, String> {
        let bytes = text.trim_end_matches('=').as_bytes();
        if text.len() % 4 != 0 || text.len() - bytes.len() > 2 {
            return Err(format!("bad length {}", text.len()));
        }
        let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
        let mut acc = 0u32;
        for (i, c) in bytes.iter().enumerate() {
            let v = ALPHABET
                .iter()
                .position(|a| a == c)
                .ok_or_else(|| format!("bad character {:?}", *c as char))?;
            acc = acc << 6 | v as u32;
            if i % 4 == 3 {
                out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
                acc = 0;
            }
        }
        match bytes.len() % 4 {
            2 => out.push((acc >> 4) as u8),
            3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
            1 => return Err("truncated".into()),
            _ => {}
        }
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trips_like_go() {
            for (plain, coded) in [
                ("", ""),
                ("f", "Zg=="),
                ("fo", "Zm8="),
                ("foo", "Zm9v"),
                ("foob", "Zm9vYg=="),
                ("{\"name\":\"n\"}", "eyJuYW1lIjoibiJ9"),
            ] {
                assert_eq!(super::encode(plain.as_bytes()), coded);
                assert_eq!(super::decode(coded).unwrap(), plain.as_bytes());
            }
            assert!(super::decode("Zg=").is_err());
            assert!(super::decode("Z!==").is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_libcni_writes_and_writes_it_back() {
        // A record as libcni writes it (keys of maps sorted, struct fields in order).
        let go = r#"{"kind":"cniCacheV1","containerId":"c1","config":"eyJuYW1lIjoibiJ9","ifName":"eth0","networkName":"n","netns":"/run/netns/x","cniArgs":[["IgnoreUnknown","1"]],"capabilityArgs":{"portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}]},"result":{"cniVersion":"1.0.0","dns":{},"ips":[{"address":"10.1.0.5/24"}]}}"#;
        let e = Entry::from_json(go.as_bytes()).unwrap().unwrap();
        assert_eq!(e.config, br#"{"name":"n"}"#);
        assert_eq!(e.cni_args, vec![("IgnoreUnknown".into(), "1".into())]);
        assert_eq!(serde_json::to_string(&e.to_json()).unwrap(), go);
        assert!(Entry::from_json(br#"{"kind":"other"}"#).unwrap().is_none());

        let dir = std::env::temp_dir().join(format!("weft-cache-{}", std::process::id()));
        write(&dir, &e).unwrap();
        assert_eq!(read(&dir, "n", "c1", "eth0").unwrap(), Some(e.clone()));
        let mut other = e.clone();
        other.network = "m".into();
        write(&dir, &other).unwrap();
        assert_eq!(list(&dir, "n").unwrap(), vec![e]);
        remove(&dir, "n", "c1", "eth0").unwrap();
        remove(&dir, "n", "c1", "eth0").unwrap();
        assert!(read(&dir, "n", "c1", "eth0").unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
        assert!(path(&dir, "", "c", "eth0").is_err());
    }
}
