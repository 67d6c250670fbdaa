//! Replacing a file so readers see the old content or the new, never a half-written one: a
//! temporary file beside the target, synced, then renamed over it. subnet.env (read by the CNI
//! plugin and docker units) and mk-docker-opts' output (read by docker.service) are written so.

use anyhow::{Context, Result};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The permission bits the file ends up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An existing file keeps its bits; a new one gets 0666 less the umask.
    Keep,
    /// Exactly these bits, whatever the umask.
    Fixed(u32),
}

/// What happens when `path` is a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symlink {
    /// Write the file it points to (as a shell redirection does).
    Follow,
    /// Replace the link itself with the new file (as a rename over it does).
    Replace,
}

/// Writes `content` to `path` atomically; missing parent directories are created.
pub fn write(path: &Path, content: &[u8], mode: Mode, symlink: Symlink) -> Result<()> {
    let target: PathBuf = match symlink {
        Symlink::Follow => std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        Symlink::Replace => path.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = target
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    // The pid keeps two writers of one file from sharing a temporary.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let bits = match mode {
        Mode::Fixed(m) => Some(m),
        Mode::Keep => std::fs::metadata(&target)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777),
    };
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&tmp)?;
        // The creation mode above is filtered by the umask; set the wanted bits explicitly.
        if let Some(bits) = bits {
            f.set_permissions(std::fs::Permissions::from_mode(bits))?;
        }
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}
