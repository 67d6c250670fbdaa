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
    let leftovers = hidden_files(&dir);
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Copy mode, as the DaemonSet's init container runs it from the image: DIR/weft is a copy (mode
/// 0755, the same bytes), every applet a relative link to it; a foreign plugin is kept and
/// reported without failing; `--replace NAME` and `--force` take names over; a second run and a
/// run from the copy itself change nothing; symlink-mode links of an older install are taken over.
#[test]
fn install_copy_mode_keeps_foreign_plugins_unless_asked() {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new("inst-copy");
    let dir = d.path().join("cni-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let go_bridge = "#!/bin/sh\n# another vendor's bridge\n";
    std::fs::write(dir.join("bridge"), go_bridge).unwrap();
    std::fs::write(dir.join("flannel"), "upstream's flannel\n").unwrap();
    symlink("/usr/lib/cni/ptp", dir.join("ptp")).unwrap();
    // An older symlink-mode install: weft's, so replaced without asking.
    symlink("/usr/local/bin/weft", dir.join("loopback")).unwrap();
    let run = |exe: &std::path::Path, extra: &[&str]| {
        let mut c = Command::new(exe);
        c.args(["--install", dir.to_str().unwrap(), "--copy"])
            .args(extra);
        c.output().unwrap()
    };

    let out = run(weft(), &[]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    for kept in ["bridge", "flannel", "ptp"] {
        assert!(
            err.contains(&format!("keeping {}", dir.join(kept).display())),
            "{kept}: {err}"
        );
    }
    let copy = dir.join("weft");
    let m = copy.symlink_metadata().unwrap();
    assert!(m.is_file(), "DIR/weft must be a copy, not a link");
    assert_eq!(m.permissions().mode() & 0o7777, 0o755);
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(weft()).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("bridge")).unwrap(),
        go_bridge
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("flannel")).unwrap(),
        "upstream's flannel\n"
    );
    assert_eq!(
        std::fs::read_link(dir.join("ptp")).unwrap(),
        std::path::Path::new("/usr/lib/cni/ptp")
    );
    for name in APPLETS
        .iter()
        .filter(|n| !["bridge", "flannel", "ptp"].contains(n))
    {
        assert_eq!(
            std::fs::read_link(dir.join(name)).unwrap(),
            std::path::Path::new("weft"),
            "{name}"
        );
    }
    // The links work through the copy alone.
    let v = Command::new(dir.join("loopback"))
        .env("CNI_COMMAND", "VERSION")
        .output()
        .unwrap();
    assert!(v.status.success(), "{v:?}");

    let snapshot = dist_like_tree(&dir);
    let out = run(&copy, &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        dist_like_tree(&dir),
        snapshot,
        "a run from the copy changed DIR"
    );

    // A typo in --replace is an error, and changes nothing.
    let out = run(weft(), &["--replace", "flanel"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an applet name"));
    assert_eq!(dist_like_tree(&dir), snapshot);

    let out = run(weft(), &["--replace", "flannel"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_link(dir.join("flannel")).unwrap(),
        std::path::Path::new("weft")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("bridge")).unwrap(),
        go_bridge
    );

    let out = run(weft(), &["--force"]);
    assert!(out.status.success(), "{out:?}");
    for name in APPLETS {
        assert_eq!(
            std::fs::read_link(dir.join(name)).unwrap(),
            std::path::Path::new("weft"),
            "{name}"
        );
    }
    let leftovers = hidden_files(&dir);
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A different binary at DIR/weft (an older weft) is replaced by this one.
    std::fs::write(&copy, "an older weft\n").unwrap();
    assert!(run(weft(), &[]).status.success());
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(weft()).unwrap()
    );
}

/// `--install-conf SRC DEST`: a conflist is written whole with mode 0644 (over a symlink too, not
/// through it); what is not a CNI config is refused and DEST left as it was; options that belong
/// to --install alone are refused.
#[test]
fn install_conf_writes_only_network_configs() {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new("inst-conf");
    let src = d.path().join("cni-conf.json");
    let conflist = r#"{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel"}]}"#;
    std::fs::write(&src, conflist).unwrap();
    let dest = d.path().join("net.d/10-flannel.conflist");
    let conf = |src: &std::path::Path| {
        weft_cmd(&[
            "--install-conf",
            src.to_str().unwrap(),
            dest.to_str().unwrap(),
        ])
    };
    let out = conf(&src);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), conflist);
    let mode = dest.metadata().unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o644);
    assert!(conf(&src).status.success());

    for (bad, why) in [
        ("{\"name\":\"cbr0\",", "not JSON"),
        (r#"{"name":"cbr0","plugins":[]}"#, "\"plugins\" is empty"),
        (
            r#"{"name":"cbr0","plugins":[{"x":1}]}"#,
            "plugins[0] has no",
        ),
        (r#"{"cniVersion":"1.0.0","type":"bridge"}"#, "no \"name\""),
        (r#"["cbr0"]"#, "not a JSON object"),
    ] {
        let b = d.path().join("bad.json");
        std::fs::write(&b, bad).unwrap();
        let out = conf(&b);
        assert_eq!(out.status.code(), Some(1), "{bad}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{bad}: {err}");
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), conflist, "{bad}");
    }

    // A symlink at DEST is replaced by the file; what it pointed to is untouched.
    let elsewhere = d.path().join("elsewhere.conflist");
    std::fs::write(&elsewhere, "theirs\n").unwrap();
    std::fs::remove_file(&dest).unwrap();
    symlink(&elsewhere, &dest).unwrap();
    let single = d.path().join("single.conf");
    std::fs::write(&single, r#"{"name":"lo","type":"loopback"}"#).unwrap();
    assert!(conf(&single).status.success());
    assert!(dest.symlink_metadata().unwrap().is_file());
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "theirs\n");

    for args in [
        &["--copy"][..],
        &["--replace", "bridge"],
        &["--install-conf", src.to_str().unwrap()],
        &["--version", "extra"],
    ] {
        let out = weft_cmd(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
    let names: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["10-flannel.conflist"], "temporaries left");
}

/// Every entry of `dir`: name → link target, or the file's length and mode.
fn dist_like_tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let m = p.symlink_metadata().unwrap();
            let what = match std::fs::read_link(&p) {
                Ok(t) => format!("-> {}", t.display()),
                Err(_) => format!(
                    "{} bytes {:o} ino {}",
                    m.len(),
                    m.permissions().mode(),
                    std::os::unix::fs::MetadataExt::ino(&m)
                ),
            };
            (p.file_name().unwrap().to_string_lossy().into_owned(), what)
        })
        .collect()
}

/// The dot files in `dir`: what an interrupted atomic write would leave.
fn hidden_files(dir: &std::path::Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect()
}
