//! `weft --install DIR`: one symlink per applet, pointing at this binary. Idempotent; a file
//! that is not a weft symlink is only replaced with `--force`.

use crate::APPLETS;
use anyhow::{bail, Context, Result};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

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
    same_inode || target.file_name().is_some_and(|n| n == "weft")
}

pub fn install(dir: &Path, force: bool) -> Result<()> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot find this binary's path")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir:?}"))?;
    // Check everything before touching anything, so a refusal leaves DIR as it was.
    for a in APPLETS {
        let link = dir.join(a.name);
        if link.symlink_metadata().is_ok() && !is_weft_symlink(&link, &exe) && !force {
            bail!("{link:?} exists and is not a weft symlink (use --force to replace it)");
        }
    }
    for a in APPLETS {
        let link = dir.join(a.name);
        if std::fs::read_link(&link).is_ok_and(|t| t == exe) {
            continue;
        }
        // Build the new link beside the old name and rename over it: never a moment without one.
        let tmp = dir.join(format!(".{}.weft-new", a.name));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&exe, &tmp)
            .with_context(|| format!("cannot create symlink {tmp:?}"))?;
        if let Err(e) = std::fs::rename(&tmp, &link) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("cannot install {link:?}"));
        }
        eprintln!("{} -> {}", link.display(), exe.display());
    }
    Ok(())
}
