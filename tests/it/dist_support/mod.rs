//! Helpers of the release tarball tests (tests/dist.rs, tests/dist_root.rs): the static binary,
//! the tarball built from it, unpacking, file-tree listings, and running the scripts. Needs the
//! including test to declare `mod common;` too.

use crate::common::weft;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn version_of(bin: &Path) -> String {
    let o = Command::new(bin).arg("--version").output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The static binary, checked to come from the same commit (and dirtiness) as this test's build.
pub fn static_bin() -> PathBuf {
    let p = repo().join("target/static/weft");
    assert!(
        p.exists(),
        "{p:?} missing: run `make static` first (make test does)"
    );
    assert_eq!(
        version_of(&p),
        version_of(weft()),
        "{p:?} was built from other source than this test: run `make static`"
    );
    p
}

pub fn tarball_name() -> String {
    format!("weft-{}-linux-x86_64", env!("CARGO_PKG_VERSION"))
}

/// Runs a release script (`cmd`, e.g. `python3 .../image.py`) on the static binary with
/// `umask`, writing into `out`; checks that it succeeded and printed `made`, the path it was to
/// write, and returns that.
pub fn run_release_script(
    cmd: &[std::ffi::OsString],
    out: &Path,
    umask: &str,
    made: PathBuf,
) -> PathBuf {
    let o = Command::new("sh")
        .args(["-c", "umask \"$1\"; shift; exec \"$@\"", "sh", umask])
        .args(cmd)
        .arg("--binary")
        .arg(static_bin())
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{cmd:?}: {o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        made.to_str().unwrap()
    );
    made
}

/// Runs scripts/dist.sh with `umask` into `out`; returns the tarball.
pub fn build_tarball(out: &Path, umask: &str) -> PathBuf {
    let t = out.join(format!("{}.tar.gz", tarball_name()));
    run_release_script(&[repo().join("scripts/dist.sh").into()], out, umask, t)
}

/// One tarball for the tests of this process (cargo runs test binaries one after another).
pub fn tarball() -> &'static Path {
    static T: OnceLock<PathBuf> = OnceLock::new();
    T.get_or_init(|| {
        build_tarball(
            &Path::new(env!("CARGO_TARGET_TMPDIR")).join("dist-test"),
            "022",
        )
    })
}

/// Unpacks the tarball into `dir` (made empty first); returns the package directory in it.
pub fn unpack(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    assert!(
        std::fs::read_dir(dir).unwrap().next().is_none(),
        "{dir:?} not empty"
    );
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(tarball())
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
    dir.join(tarball_name())
}

/// Everything under `root`: relative path → type, mode and content (sha256) or link target.
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = p.symlink_metadata().unwrap();
            let mode = m.permissions().mode() & 0o7777;
            let desc = if m.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                walk(root, &p, out);
                format!("dir {mode:o}")
            } else {
                let sum = Sha256::digest(std::fs::read(&p).unwrap());
                format!("file {mode:o} {sum:x}")
            };
            out.insert(rel, desc);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

pub fn sh(script: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("sh");
    c.arg(script).args(args).env_clear().env("PATH", PATH);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

pub fn ok(o: Output) -> String {
    assert!(o.status.success(), "{o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// [`ok`], and nothing on stderr either: a tool missing in the fresh root ("awk: not found") can
/// break a script without failing it.
pub fn quiet_ok(o: Output) -> String {
    assert!(o.stderr.is_empty(), "{o:?}");
    ok(o)
}

/// The applets install.sh links, by its own two lists.
pub fn install_lists() -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(repo().join("scripts/install.sh")).unwrap();
    let list = |var: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{var}=\"")))
            .unwrap_or_else(|| panic!("{var} not in install.sh"));
        line.split('"')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    (list("CNI_APPLETS"), list("BIN_APPLETS"))
}
