//! The per-container delegate configs under `dataDir` (default `/var/lib/cni/flannel`): one file
//! per container ID holding the exact bytes sent to the delegate on ADD, so DEL can replay them
//! after subnet.env or the network config changed. Same layout and modes as upstream (directory
//! 0700, file 0600), so a node can switch between the Go plugin and weft with pods running.

use super::delegate_conf::SavedConf;
use crate::cni::conf::is_valid_name;
use anyhow::{Context, Result};
use std::collections::HashSet;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The directory of saved delegate configs.
#[derive(Debug, Clone)]
pub struct SavedConfigs {
    dir: PathBuf,
}

impl SavedConfigs {
    pub fn new(dir: &Path) -> SavedConfigs {
        SavedConfigs {
            dir: dir.to_path_buf(),
        }
    }

    /// Where the config of `container_id` lives. The ID was validated by the protocol layer
    /// (letters, digits, `_.-`, no leading punctuation), so it cannot leave the directory.
    pub fn path(&self, container_id: &str) -> PathBuf {
        self.dir.join(container_id)
    }

    /// Writes `bytes` for `container_id`: truncate, write, fsync, as upstream does, so a DEL
    /// after a crash finds either the whole config or one it cannot parse (and then skips).
    pub fn save(&self, container_id: &str, bytes: &[u8]) -> Result<()> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("failed to create {}", self.dir.display()))?;
        let path = self.path(container_id);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .with_context(|| format!("failed to write {}", path.display()))
    }

    /// The saved bytes of `container_id`, `None` when there are none.
    pub fn load(&self, container_id: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(container_id);
        match crate::sys::small_file::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
        }
    }

    /// Removes the config of `container_id`; already gone is fine.
    pub fn remove(&self, container_id: &str) -> Result<()> {
        let path = self.path(container_id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("failed to remove {}", path.display())),
        }
    }

    /// GC: removes the configs saved for network `network` whose container is not in `keep`,
    /// and returns their container IDs. Files that do not look like ours (a name that is not a
    /// container ID, content that is not a config, another network's `name`: several flannel
    /// networks may share the default dataDir) are left alone.
    pub fn sweep(&self, network: &str, keep: &HashSet<&str>) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(e).with_context(|| format!("failed to list {}", self.dir.display()))
            }
        };
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("failed to list {}", self.dir.display()))?;
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !is_valid_name(&id) || keep.contains(id.as_str()) {
                continue;
            }
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let Ok(Some(bytes)) = self.load(&id) else {
                continue;
            };
            let ours = SavedConf::parse(&bytes)
                .is_ok_and(|s| s.conf.get("name").and_then(|n| n.as_str()) == Some(network));
            if !ours {
                continue;
            }
            match self.remove(&id) {
                Ok(()) => removed.push(id),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        if !errors.is_empty() {
            anyhow::bail!("{}", errors.join("; "));
        }
        removed.sort();
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tmp(tag: &str) -> Dir {
        Dir(std::env::temp_dir().join(format!("weft-fstore-{tag}-{}", std::process::id())))
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn save_load_remove_with_upstream_modes() {
        let d = tmp("slr");
        let s = SavedConfigs::new(&d.0.join("nested/flannel"));
        assert_eq!(s.load("c1").unwrap(), None);
        s.save("c1", b"{\"a\":1,\"b\":2}").unwrap();
        assert_eq!(mode(&d.0.join("nested/flannel")), 0o700);
        assert_eq!(mode(&s.path("c1")), 0o600);
        // A shorter config replaces a longer one completely.
        s.save("c1", b"{}").unwrap();
        assert_eq!(s.load("c1").unwrap().unwrap(), b"{}");
        s.remove("c1").unwrap();
        s.remove("c1").unwrap();
        assert_eq!(s.load("c1").unwrap(), None);
    }

    #[test]
    fn sweep_removes_only_this_networks_stale_configs() {
        let d = tmp("sweep");
        let s = SavedConfigs::new(&d.0);
        s.save("live", br#"{"name":"cbr0","type":"bridge"}"#)
            .unwrap();
        s.save("stale", br#"{"name":"cbr0","type":"bridge"}"#)
            .unwrap();
        s.save("other-net", br#"{"name":"other","type":"bridge"}"#)
            .unwrap();
        s.save("garbage", b"{not json").unwrap();
        std::fs::write(d.0.join(".hidden"), br#"{"name":"cbr0"}"#).unwrap();
        std::fs::create_dir(d.0.join("subdir")).unwrap();
        let keep: HashSet<&str> = ["live"].into();
        assert_eq!(s.sweep("cbr0", &keep).unwrap(), ["stale"]);
        let mut left: Vec<String> = std::fs::read_dir(&d.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".hidden", "garbage", "live", "other-net", "subdir"]);
        assert!(SavedConfigs::new(&d.0.join("absent"))
            .sweep("cbr0", &keep)
            .unwrap()
            .is_empty());
    }
}
