//! Replays the fuzz corpus and every crash input kept in testdata/fuzz/<target>/ through the
//! fuzz targets' bodies (tests/fuzz/targets.rs), so what fuzzing found stays fixed without the
//! nightly toolchain or cargo-fuzz. `make fuzz` adds to these directories.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::Path;

/// Runs every file of testdata/fuzz/`target` through `f`; a missing or empty directory fails,
/// so a renamed target cannot silently test nothing.
fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/fuzz")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(panic) = std::panic::catch_unwind(|| f(&data)) {
            eprintln!("fuzz input {} fails", path.display());
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn cni_stdin() {
    replay("cni_stdin", targets::cni_stdin);
}

#[test]
fn cni_result() {
    replay("cni_result", targets::cni_result);
}

#[test]
fn host_local_files() {
    replay("host_local_files", targets::host_local_files);
}

#[test]
fn subnet_env() {
    replay("subnet_env", targets::subnet_env);
}

#[test]
fn lease() {
    replay("lease", targets::lease);
}

#[test]
fn net_conf() {
    replay("net_conf", targets::net_conf);
}

#[test]
fn udp_encap() {
    replay("udp_encap", targets::udp_encap);
}
