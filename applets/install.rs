//! `weft --install DIR`: one name per applet in DIR, all leading to weft. Idempotent.
//!
//! Symlink mode (the default) links each applet to this binary where it is; a file that is not a
//! weft symlink stops it, unless `--force` (or `--replace NAME`) says to replace it.
//!
//! Copy mode (`--copy`) is for a binary that will not stay where it runs, such as a container
//! image's: it copies the binary to DIR/weft and links each applet to `weft`, relative, so DIR
//! works on its own once the container is gone. A name already taken by another vendor's file
//! (the Go reference plugins in /opt/cni/bin, say) is left alone and reported, not an error, so
//! a DaemonSet's init container never fails on a host that has them; `--force` or `--replace
//! NAME` replaces it.
//!
//! `weft --install-conf SRC DEST` writes a CNI network config that a runtime watches
//! (/etc/cni/net.d): checked to be one first, and renamed into place so the runtime never reads
//! half of it.

use crate::{find_applet, APPLETS};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use weft::sys::atomic_file::{self, Mode, Symlink};

/// The name of the copied binary in copy mode; the applet links point at it.
const COPY_NAME: &str = "weft";

pub struct Options {
    /// Copy the binary into DIR and link to the copy (relative), instead of linking to this path.
    pub copy: bool,
    /// Replace every name in the way.
    pub force: bool,
    /// Replace these names even if they are not weft's.
    pub replace: Vec<String>,
}

impl Options {
    fn may_replace(&self, name: &str) -> bool {
        self.force || self.replace.iter().any(|r| r == name)
    }
}

/// True if `link` is a symlink that leads to weft: to this very binary, or to a file named weft
/// (an older or moved install, possibly dangling).
fn is_weft_symlink(link: &Path, exe: &Path) -> bool {
    let Ok(target) = std::fs::read_link(link) else {
        return false;
    };
    let same_inode = match (std::fs::metadata(link), std::fs::metadata(exe)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    same_inode || target.file_name().is_some_and(|n| n == COPY_NAME)
}

/// Makes `link` a symlink to `target`: built beside the old name and renamed over it, so there is
/// never a moment without one.
fn put_symlink(dir: &Path, name: &str, target: &Path) -> Result<()> {
    let link = dir.join(name);
    let tmp = dir.join(format!(".{name}.weft-new"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("cannot create symlink {tmp:?}"))?;
    if let Err(e) = std::fs::rename(&tmp, &link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot install {link:?}"));
    }
    eprintln!("{} -> {}", link.display(), target.display());
    Ok(())
}

pub fn install(dir: &Path, opts: &Options) -> Result<()> {
    for r in &opts.replace {
        if find_applet(r).is_none() {
            bail!("--replace {r:?}: not an applet name (see weft --list)");
        }
    }
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot find this binary's path")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir:?}"))?;
    if opts.copy {
        install_copy(dir, &exe, opts)
    } else {
        install_links(dir, &exe, opts)
    }
}

fn install_links(dir: &Path, exe: &Path, opts: &Options) -> Result<()> {
    // Check everything before touching anything, so a refusal leaves DIR as it was.
    for a in APPLETS {
        let link = dir.join(a.name);
        if link.symlink_metadata().is_ok()
            && !is_weft_symlink(&link, exe)
            && !opts.may_replace(a.name)
        {
            bail!("{link:?} exists and is not a weft symlink (use --force to replace it)");
        }
    }
    for a in APPLETS {
        if std::fs::read_link(dir.join(a.name)).is_ok_and(|t| t == exe) {
            continue;
        }
        put_symlink(dir, a.name, exe)?;
    }
    Ok(())
}

/// Whether `dest` is already a plain file with exactly `bytes` and `mode`, so that writing it
/// again would change nothing; a directory there is an error.
fn holds(dest: &Path, bytes: &[u8], mode: u32) -> Result<bool> {
    let current = dest.symlink_metadata().ok();
    if current.as_ref().is_some_and(|m| m.is_dir()) {
        bail!("{dest:?} is a directory");
    }
    Ok(current.is_some_and(|m| {
        m.is_file()
            && m.permissions().mode() & 0o7777 == mode
            && std::fs::read(dest).is_ok_and(|b| b == bytes)
    }))
}

fn install_copy(dir: &Path, exe: &Path, opts: &Options) -> Result<()> {
    let dest = dir.join(COPY_NAME);
    let bin = std::fs::read(exe).with_context(|| format!("cannot read {exe:?}"))?;
    if !holds(&dest, &bin, 0o755)? {
        // The binary before the links, so no link ever dangles.
        atomic_file::write(&dest, &bin, Mode::Fixed(0o755), Symlink::Replace)
            .with_context(|| format!("cannot copy {exe:?} to {dest:?}"))?;
        eprintln!("{} (copied from {})", dest.display(), exe.display());
    }
    let target = Path::new(COPY_NAME);
    for a in APPLETS {
        let link = dir.join(a.name);
        if std::fs::read_link(&link).is_ok_and(|t| t == target) {
            continue;
        }
        let taken = link.symlink_metadata().is_ok();
        if taken && !is_weft_symlink(&link, exe) && !opts.may_replace(a.name) {
            eprintln!(
                "keeping {} (not weft's; --replace {} or --force replaces it)",
                link.display(),
                a.name
            );
            continue;
        }
        put_symlink(dir, a.name, target)?;
    }
    Ok(())
}

/// Checks that `v` reads as a CNI network config: a conflist (a name and a list of plugins, each
/// with a type) or a single network (a name and a type).
fn check_network_config(v: &Value) -> Result<()> {
    let obj = v.as_object().context("not a JSON object")?;
    obj.get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .context("no \"name\"")?;
    match obj.get("plugins") {
        Some(p) => {
            let plugins = p.as_array().context("\"plugins\" is not a list")?;
            if plugins.is_empty() {
                bail!("\"plugins\" is empty");
            }
            for (i, p) in plugins.iter().enumerate() {
                p.get("type")
                    .and_then(Value::as_str)
                    .with_context(|| format!("plugins[{i}] has no \"type\""))?;
            }
        }
        None => {
            obj.get("type")
                .and_then(Value::as_str)
                .context("neither \"plugins\" nor \"type\"")?;
        }
    }
    Ok(())
}

pub fn install_conf(src: &Path, dest: &Path) -> Result<()> {
    let text = std::fs::read(src).with_context(|| format!("cannot read {src:?}"))?;
    let v: Value = serde_json::from_slice(&text).with_context(|| format!("{src:?} is not JSON"))?;
    check_network_config(&v)
        .with_context(|| format!("{src:?} is not a CNI network config or conflist"))?;
    if holds(dest, &text, 0o644)? {
        return Ok(());
    }
    atomic_file::write(dest, &text, Mode::Fixed(0o644), Symlink::Replace)?;
    eprintln!("{} (from {})", dest.display(), src.display());
    Ok(())
}
