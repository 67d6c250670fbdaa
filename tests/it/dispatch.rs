//! The multi-call binary: dispatch by name and by first argument, top-level options, --install.

use crate::common::*;
use std::os::unix::fs::symlink;
use std::process::Command;

/// Every applet name, in `--list` order.
const APPLETS: [&str; 9] = [
    "bridge",
    "ptp",
    "loopback",
    "host-local",
    "flannel",
    "portmap",
    "cnitool",
    "flanneld",
    "mk-docker-opts",
];

fn weft_cmd(args: &[&str]) -> std::process::Output {
    Command::new(weft()).args(args).output().unwrap()
}

#[test]
fn version_names_the_commit() {
    let out = weft_cmd(&["--version"]);
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(
        s.starts_with(&format!("weft {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{s}"
    );
}

#[test]
fn list_has_every_applet_name() {
    let out = weft_cmd(&["--list"]);
    let names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(names, APPLETS);
    let help = weft_cmd(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8(help.stdout)
        .unwrap()
        .contains("--install"));
}

#[test]
fn unknown_applet_lists_applets_and_exits_2() {
    let out = weft_cmd(&["no-such-thing"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("unknown applet \"no-such-thing\""), "{err}");
    assert!(err.contains("host-local"), "{err}");
    // And through a symlink with an unknown name.
    let d = TempDir::new("unk");
    symlink(weft(), d.path().join("frobnicate")).unwrap();
    let out = Command::new(d.path().join("frobnicate")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn first_argument_and_argv0_dispatch_to_the_same_applet() {
    let out = Command::new(weft())
        .args(["loopback"])
        .env("CNI_COMMAND", "VERSION")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let by_arg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = Command::new(bin_dir().join("loopback"))
        .env("CNI_COMMAND", "VERSION")
        .output()
        .unwrap();
    let by_name: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(by_arg, by_name);
    assert_eq!(by_name["supportedVersions"].as_array().unwrap().len(), 7);
}

#[test]
fn install_is_idempotent_and_refuses_foreign_files() {
    let d = TempDir::new("inst");
    let dir = d.path().join("bin");
    let ok = |args: &[&str]| {
        let mut a = vec!["--install", dir.to_str().unwrap()];
        a.extend_from_slice(args);
        weft_cmd(&a)
    };
    assert!(ok(&[]).status.success());
    assert!(ok(&[]).status.success(), "second install must be a no-op");
    let exe = weft().canonicalize().unwrap();
    for name in APPLETS {
        assert_eq!(std::fs::read_link(dir.join(name)).unwrap(), exe, "{name}");
    }
    // A foreign plugin in the way: refused, and nothing else changed either.
    std::fs::remove_file(dir.join("ptp")).unwrap();
    std::fs::write(dir.join("ptp"), "#!/bin/sh\n").unwrap();
    std::fs::remove_file(dir.join("loopback")).unwrap();
    let out = ok(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a weft symlink"));
    assert_eq!(
        std::fs::read_to_string(dir.join("ptp")).unwrap(),
        "#!/bin/sh\n"
    );
    assert!(
        dir.join("loopback").symlink_metadata().is_err(),
        "refusal must change nothing"
    );
    // A symlink elsewhere is foreign too.
    std::fs::remove_file(dir.join("bridge")).unwrap();
    symlink("/usr/lib/cni/bridge", dir.join("bridge")).unwrap();
    assert!(!ok(&[]).status.success());
    assert!(ok(&["--force"]).status.success());
    assert_eq!(std::fs::read_link(dir.join("ptp")).unwrap(), exe);
    assert_eq!(std::fs::read_link(dir.join("bridge")).unwrap(), exe);
    assert_eq!(std::fs::read_link(dir.join("loopback")).unwrap(), exe);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
