//! A directory removed on drop.

use crate::netns::unique;
use std::path::{Path, PathBuf};

pub struct TempDir(PathBuf);

impl TempDir {
    /// A new directory under the system's temp dir, its name made unique with `tag` in it.
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(&format!("-{tag}-")));
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
