//! The release tarball (`make dist`, scripts/dist.sh) and install.sh/uninstall.sh in a DESTDIR:
//! the tarball is reproducible and complete; install.sh puts every file and link in place,
//! changes nothing the second time, never overwrites a config, refuses foreign files unless
//! forced, follows --prefix, CNI_BIN_DIR and SYSCONFDIR; uninstall.sh leaves the tree exactly as
//! it was. tests/dist_root.rs installs into a fresh root.
//!
//! It packs the static binary (`make static`, which `make test` runs first) and checks it was
//! built from the same source as this test.

use crate::common::*;
use crate::dist_support::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::process::Command;

#[test]
fn install_lists_cover_every_applet() {
    let (cni, bin) = install_lists();
    let mut ours: Vec<String> = cni.iter().chain(&bin).cloned().collect();
    ours.sort();
    let o = Command::new(weft()).arg("--list").output().unwrap();
    let mut all: Vec<String> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    all.sort();
    assert_eq!(
        ours, all,
        "install.sh's CNI_APPLETS + BIN_APPLETS must be exactly `weft --list`"
    );
    for a in [
        "bridge",
        "ptp",
        "loopback",
        "host-local",
        "flannel",
        "portmap",
    ] {
        assert!(cni.iter().any(|c| c == a), "{a} must go to the CNI bin dir");
    }
}

#[test]
fn tarball_is_reproducible_and_complete() {
    let t = TempDir::new("dist-repro");
    let a = build_tarball(&t.path().join("a"), "022");
    // Another umask and another directory: still the same bytes.
    let b = build_tarball(&t.path().join("b"), "077");
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(ba == bb, "two builds of the same source differ");
    // gzip -n: no file name (FLG.FNAME) and no time in the header.
    assert_eq!(&ba[..3], &[0x1f, 0x8b, 8]);
    assert_eq!(ba[3] & 0x08, 0, "gzip header carries a file name");
    assert_eq!(&ba[4..8], &[0, 0, 0, 0], "gzip header carries a time");
    let sums = std::fs::read_to_string(
        t.path()
            .join("a")
            .join(format!("{}.tar.gz.sha256", tarball_name())),
    )
    .unwrap();
    assert!(
        sums.starts_with(&format!("{:x}  ", Sha256::digest(&ba))),
        "{sums}"
    );

    let epoch = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(repo())
        .output()
        .unwrap();
    let epoch: i64 = String::from_utf8(epoch.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let list = Command::new("tar")
        .args([
            "--list",
            "--verbose",
            "--numeric-owner",
            "--full-time",
            "-zf",
        ])
        .arg(&a)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(list.status.success());
    let when = Command::new("date")
        .args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%d %H:%M:%S"])
        .output()
        .unwrap();
    let when = String::from_utf8(when.stdout).unwrap().trim().to_string();
    let n = tarball_name();
    let mut names = Vec::new();
    for line in String::from_utf8(list.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[1], "0/0", "{line}");
        assert_eq!(format!("{} {}", f[3], f[4]), when, "{line}");
        let mode = f[0];
        let name = f[5].trim_end_matches('/').to_string();
        let want =
            if mode.starts_with('d') || name.ends_with(".sh") || name == format!("{n}/bin/weft") {
                if mode.starts_with('d') {
                    "drwxr-xr-x"
                } else {
                    "-rwxr-xr-x"
                }
            } else {
                "-rw-r--r--"
            };
        assert_eq!(mode, want, "{line}");
        names.push(name);
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries must be in byte order");
    let image_entry = format!("image/{}", crate::image::image_name());
    for want in [
        "bin/weft",
        "install.sh",
        "uninstall.sh",
        "README.md",
        "LICENSE",
        "SHA256SUMS",
        "systemd/flanneld.service",
        "systemd/docker.service.d/10-flannel.conf",
        "etc/flannel/options.env",
        "etc/cni/net.d/10-flannel.conflist",
        "deploy/kube-flannel.yml",
        image_entry.as_str(),
    ] {
        assert!(
            names.contains(&format!("{n}/{want}")),
            "{want} missing: {names:?}"
        );
    }

    // SHA256SUMS covers every other file and verifies; the binary is the static one.
    let u = TempDir::new("dist-unpack");
    let pkg = unpack(u.path());
    let o = Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&pkg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let listed: Vec<String> = std::fs::read_to_string(pkg.join("SHA256SUMS"))
        .unwrap()
        .lines()
        .map(|l| l.split_once("  ").unwrap().1.to_string())
        .collect();
    let files: Vec<String> = tree(&pkg)
        .into_iter()
        .filter(|(k, v)| v.starts_with("file") && k != "SHA256SUMS")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(listed, files);
    assert_eq!(
        std::fs::read(pkg.join("bin/weft")).unwrap(),
        std::fs::read(static_bin()).unwrap()
    );
    // The image archive is the one `make image` builds from the same binary.
    let img = crate::image::build_image(&u.path().join("image"), "022");
    assert!(
        std::fs::read(pkg.join("image").join(crate::image::image_name())).unwrap()
            == std::fs::read(img).unwrap(),
        "the tarball's image differs from scripts/image.py's"
    );
}

/// The example configs and units say what the docs promise.
#[test]
fn shipped_units_and_configs() {
    let d = repo().join("scripts/dist");
    let conflist: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("etc/cni/net.d/10-flannel.conflist")).unwrap(),
    )
    .unwrap();
    // kube-flannel's cni-conf.json, key for key.
    assert_eq!(
        conflist,
        serde_json::json!({"name":"cbr0","cniVersion":"0.3.1","plugins":[
            {"type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}},
            {"type":"portmap","capabilities":{"portMappings":true}}]})
    );
    let unit = std::fs::read_to_string(d.join("systemd/flanneld.service")).unwrap();
    let lines: Vec<&str> = unit.lines().collect();
    for want in [
        "Type=notify",
        "Restart=always",
        "EnvironmentFile=-/etc/flannel/options.env",
        "ExecStart=/usr/local/bin/flanneld $FLANNEL_OPTIONS",
        "ExecStartPost=/usr/local/bin/mk-docker-opts -k DOCKER_NETWORK_OPTIONS -d /run/flannel/docker",
        "Before=docker.service",
        "WantedBy=multi-user.target",
    ] {
        assert!(lines.contains(&want), "flanneld.service lacks {want:?}");
    }
    let dropin =
        std::fs::read_to_string(d.join("systemd/docker.service.d/10-flannel.conf")).unwrap();
    let lines: Vec<&str> = dropin.lines().collect();
    for want in [
        "Requires=flanneld.service",
        "After=flanneld.service",
        "EnvironmentFile=/run/flannel/docker",
        "ExecStart=",
    ] {
        assert!(lines.contains(&want), "drop-in lacks {want:?}");
    }
    let exec = lines.iter().rfind(|l| l.starts_with("ExecStart=")).unwrap();
    assert!(exec.ends_with(" $DOCKER_NETWORK_OPTIONS"), "{exec}");
    // Every assignment in options.env is a flanneld variable or one the units use, and parses
    // the way systemd and mk-docker-opts read env files.
    let env = std::fs::read_to_string(d.join("etc/flannel/options.env")).unwrap();
    for (k, _) in weft::flanneld::docker_opts::parse_env_file(&env).unwrap() {
        assert!(k.starts_with("FLANNELD_") || k == "FLANNEL_OPTIONS", "{k}");
    }
}

/// DESTDIR has a config of the admin's own and a CNI plugin of someone else's; install.sh keeps
/// both, a dry run changes nothing, a second run changes nothing, uninstall.sh (the installed
/// copy) restores the tree exactly.
#[test]
fn destdir_install_is_complete_idempotent_and_undone() {
    let t = TempDir::new("dist-dd");
    let pkg = unpack(&t.path().join("pkg"));
    let dest = t.path().join("root");
    let dests = dest.to_str().unwrap();
    std::fs::create_dir_all(dest.join("etc/flannel")).unwrap();
    std::fs::write(
        dest.join("etc/flannel/options.env"),
        "FLANNELD_ETCD_ENDPOINTS=http://192.0.2.1:2379\n",
    )
    .unwrap();
    std::fs::create_dir_all(dest.join("opt/cni/bin")).unwrap();
    std::fs::write(dest.join("opt/cni/bin/tuning"), "#!/bin/sh\n").unwrap();
    let before = tree(&dest);
    let install = pkg.join("install.sh");
    let env = [("DESTDIR", dests)];

    let out = ok(sh(&install, &["--dry-run"], &env));
    assert!(out.contains("would: install -m 0755"), "{out}");
    assert_eq!(tree(&dest), before, "--dry-run changed something");

    let out = ok(sh(&install, &[], &env));
    assert!(out.contains("keeping"), "{out}");
    let after = tree(&dest);
    let bin = std::fs::read(static_bin()).unwrap();
    assert_eq!(std::fs::read(dest.join("usr/local/bin/weft")).unwrap(), bin);
    assert!(after["usr/local/bin/weft"].starts_with("file 755 "));
    let (cni, bins) = install_lists();
    for a in &bins {
        assert_eq!(
            after[&format!("usr/local/bin/{a}")],
            "link -> /usr/local/bin/weft",
            "{a}"
        );
    }
    for a in &cni {
        assert_eq!(
            after[&format!("opt/cni/bin/{a}")],
            "link -> /usr/local/bin/weft",
            "{a}"
        );
    }
    for (installed, shipped, mode) in [
        (
            "etc/systemd/system/flanneld.service",
            "systemd/flanneld.service",
            "644",
        ),
        (
            "etc/systemd/system/docker.service.d/10-flannel.conf",
            "systemd/docker.service.d/10-flannel.conf",
            "644",
        ),
        (
            "etc/cni/net.d/10-flannel.conflist",
            "etc/cni/net.d/10-flannel.conflist",
            "644",
        ),
        ("usr/local/lib/weft/uninstall.sh", "uninstall.sh", "755"),
    ] {
        assert_eq!(
            std::fs::read(dest.join(installed)).unwrap(),
            std::fs::read(pkg.join(shipped)).unwrap(),
            "{installed}"
        );
        assert!(
            after[installed].starts_with(&format!("file {mode} ")),
            "{installed}: {}",
            after[installed]
        );
    }
    // Never overwritten; the foreign plugin untouched.
    assert_eq!(
        after["etc/flannel/options.env"],
        before["etc/flannel/options.env"]
    );
    assert_eq!(after["opt/cni/bin/tuning"], before["opt/cni/bin/tuning"]);
    assert!(after.contains_key("usr/local/lib/weft/install-manifest"));

    let out = ok(sh(&install, &[], &env));
    assert!(out.contains("nothing to do"), "{out}");
    assert_eq!(tree(&dest), after, "a second install changed something");

    let uninstall = dest.join("usr/local/lib/weft/uninstall.sh");
    ok(sh(&uninstall, &["--dry-run"], &env));
    assert_eq!(tree(&dest), after, "uninstall --dry-run changed something");
    ok(sh(&uninstall, &[], &env));
    assert_eq!(tree(&dest), before, "uninstall did not restore the tree");
}

/// --prefix, CNI_BIN_DIR and SYSCONFDIR move the binary, the links, the configs and the unit's
/// paths; a config edited after install survives uninstall (with its directories), everything
/// else goes.
#[test]
fn prefix_and_cni_bin_dir_are_honoured() {
    let t = TempDir::new("dist-prefix");
    let pkg = unpack(&t.path().join("pkg"));
    // A DESTDIR that does not exist yet is made.
    let dest = t.path().join("stage/root");
    let before = tree(&dest);
    let env = [
        ("DESTDIR", dest.to_str().unwrap()),
        ("CNI_BIN_DIR", "/usr/libexec/cni"),
        ("SYSCONFDIR", "/etc/weft"),
    ];
    ok(sh(
        &pkg.join("install.sh"),
        &["--prefix", "/opt/weft"],
        &env,
    ));
    let after = tree(&dest);
    assert!(after["opt/weft/bin/weft"].starts_with("file 755"));
    assert_eq!(
        after["opt/weft/bin/mk-docker-opts"],
        "link -> /opt/weft/bin/weft"
    );
    assert_eq!(
        after["usr/libexec/cni/bridge"],
        "link -> /opt/weft/bin/weft"
    );
    assert!(!after.contains_key("opt/cni"), "{after:?}");
    assert!(!after.contains_key("usr/local"), "{after:?}");
    let unit = std::fs::read_to_string(dest.join("etc/systemd/system/flanneld.service")).unwrap();
    assert!(
        unit.contains("\nExecStart=/opt/weft/bin/flanneld $FLANNEL_OPTIONS\n"),
        "{unit}"
    );
    assert!(
        unit.contains("\nExecStartPost=/opt/weft/bin/mk-docker-opts "),
        "{unit}"
    );
    assert!(
        unit.contains("\nEnvironmentFile=-/etc/weft/flannel/options.env\n"),
        "{unit}"
    );
    assert!(!unit.contains("/usr/local"), "{unit}");
    assert!(after["etc/weft/flannel/options.env"].starts_with("file 600 "));

    let conflist = dest.join("etc/weft/cni/net.d/10-flannel.conflist");
    std::fs::write(&conflist, "{\"edited\":true}\n").unwrap();
    // Without the prefix there is no manifest to go by.
    let o = sh(&pkg.join("uninstall.sh"), &[], &env);
    assert!(!o.status.success());
    let out = ok(sh(&pkg.join("uninstall.sh"), &["--prefix=/opt/weft"], &env));
    assert!(
        out.contains("keeping") && out.contains("10-flannel.conflist"),
        "{out}"
    );
    let mut want = before.clone();
    for (k, v) in [
        ("etc", "dir 755"),
        ("etc/weft", "dir 755"),
        ("etc/weft/cni", "dir 755"),
        ("etc/weft/cni/net.d", "dir 755"),
    ] {
        want.insert(k.into(), v.into());
    }
    want.insert(
        "etc/weft/cni/net.d/10-flannel.conflist".into(),
        tree(&dest)["etc/weft/cni/net.d/10-flannel.conflist"].clone(),
    );
    assert_eq!(tree(&dest), want);
}

/// Files in the way that install.sh did not put there stop it before any change; --force moves
/// them aside and uninstall puts them back. A newer package replaces what install.sh installed
/// without --force; a package whose files do not match SHA256SUMS installs nothing.
#[test]
fn foreign_files_upgrades_and_corrupt_packages() {
    let t = TempDir::new("dist-force");
    let pkg = unpack(&t.path().join("pkg"));
    let dest = t.path().join("root");
    std::fs::create_dir_all(dest.join("usr/local/bin")).unwrap();
    std::fs::write(dest.join("usr/local/bin/weft"), "an older weft\n").unwrap();
    std::fs::create_dir_all(dest.join("opt/cni/bin")).unwrap();
    std::os::unix::fs::symlink("/usr/lib/cni/bridge", dest.join("opt/cni/bin/bridge")).unwrap();
    let before = tree(&dest);
    let env = [("DESTDIR", dest.to_str().unwrap())];
    let install = pkg.join("install.sh");

    let o = sh(&install, &[], &env);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("usr/local/bin/weft exists and was not installed"),
        "{err}"
    );
    assert!(err.contains("opt/cni/bin/bridge exists"), "{err}");
    assert_eq!(tree(&dest), before, "a refused install changed something");

    ok(sh(&install, &["--force"], &env));
    let after = tree(&dest);
    assert_eq!(
        after["usr/local/bin/weft.weft-orig"],
        before["usr/local/bin/weft"]
    );
    assert_eq!(
        after["opt/cni/bin/bridge.weft-orig"],
        "link -> /usr/lib/cni/bridge"
    );
    assert_eq!(after["opt/cni/bin/bridge"], "link -> /usr/local/bin/weft");

    // A newer package: its own binary replaces the installed one, no --force needed.
    let mut newer = std::fs::read(pkg.join("bin/weft")).unwrap();
    newer.extend_from_slice(b"\0newer");
    std::fs::write(pkg.join("bin/weft"), &newer).unwrap();
    let o = Command::new("sh")
        .args(["-c", "sha256sum $(sed 's/^[^ ]*  //' SHA256SUMS) > SHA256SUMS.new && mv SHA256SUMS.new SHA256SUMS"])
        .current_dir(&pkg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    ok(sh(&install, &[], &env));
    assert_eq!(
        std::fs::read(dest.join("usr/local/bin/weft")).unwrap(),
        newer
    );
    assert!(!dest.join("usr/local/bin/weft.weft-orig.weft-orig").exists());

    // A file that does not match SHA256SUMS: nothing is installed.
    std::fs::write(
        pkg.join("systemd/flanneld.service"),
        "[Service]\nExecStart=/bin/false\n",
    )
    .unwrap();
    let snapshot = tree(&dest);
    let o = sh(&install, &[], &env);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("SHA256SUMS does not match"),
        "{o:?}"
    );
    assert_eq!(tree(&dest), snapshot);

    ok(sh(&dest.join("usr/local/lib/weft/uninstall.sh"), &[], &env));
    assert_eq!(
        tree(&dest),
        before,
        "uninstall did not put the moved files back"
    );
}

#[test]
fn scripts_are_shellcheck_clean() {
    let v = Command::new("shellcheck")
        .arg("--version")
        .output()
        .expect("shellcheck is not installed: Debian's shellcheck (make deps installs it)");
    assert!(v.status.success());
    // Every shell script of the repo; -x follows what they source (benchlab.sh).
    let mut scripts: Vec<String> = std::fs::read_dir(repo().join("scripts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sh"))
        .map(|n| format!("scripts/{n}"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 10, "{scripts:?}");
    scripts.push("testdata/mk-docker-opts/reference.sh".into());
    let o = Command::new("shellcheck")
        .arg("-x")
        .args(&scripts)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}
