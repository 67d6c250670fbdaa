//! `make image` (scripts/image.py): the image archive of the static binary is reproducible (two
//! builds, other umask and directory, the same bytes), and it is what docker and containerd
//! read: an OCI layout whose digests and sizes hold, docker's manifest.json naming the same
//! config and layer, and a layer of /opt/bin/weft and its applet links with nothing of this host
//! in it. tests/it/dockerd.rs loads it into a real dockerd and runs it.

use crate::dist_support::{repo, run_release_script, static_bin};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn image_name() -> String {
    format!("weft-{}-image.tar", env!("CARGO_PKG_VERSION"))
}

/// Runs scripts/image.py with `umask` into `out`; returns the archive.
pub fn build_image(out: &Path, umask: &str) -> PathBuf {
    let cmd = ["python3".into(), repo().join("scripts/image.py").into()];
    run_release_script(&cmd, out, umask, out.join(image_name()))
}

/// Extracts `archive` into `dir`.
fn untar(archive: &Path, dir: &Path) {
    let st = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "tar -xf {archive:?}");
}

/// `tar -tv` of an archive: name → "mode owner size mtime [-> target]", in archive order.
fn listing(tar: &Path) -> Vec<(String, String)> {
    let o = Command::new("tar")
        .args([
            "--list",
            "--verbose",
            "--numeric-owner",
            "--full-time",
            "-f",
        ])
        .arg(tar)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = f[5].trim_end_matches('/').to_string();
            (
                name,
                [&[f[0], f[1], f[3], f[4]], &f[6..]].concat().join(" "),
            )
        })
        .collect()
}

fn commit_time() -> String {
    let o = Command::new("git")
        .args([
            "log",
            "-1",
            "--format=%cd",
            "--date=format-local:%Y-%m-%d %H:%M:%S",
        ])
        .env("TZ", "UTC")
        .current_dir(repo())
        .output()
        .unwrap();
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn blob(dir: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let b = std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap();
    assert_eq!(format!("{:x}", Sha256::digest(&b)), hex, "blob {digest}");
    b
}

#[test]
fn image_is_reproducible_and_well_formed() {
    let t = crate::common::TempDir::new("image");
    let a = build_image(&t.path().join("a"), "022");
    let b = build_image(&t.path().join("b"), "077");
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(ba == bb, "two builds of the same binary differ");
    let sum = std::fs::read_to_string(t.path().join("a").join(image_name() + ".sha256")).unwrap();
    assert_eq!(
        sum,
        format!("{:x}  {}\n", Sha256::digest(&ba), image_name())
    );

    let when = commit_time();
    let outer = listing(&a);
    let names: Vec<&str> = outer.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries must be in byte order");
    for (n, attrs) in &outer {
        assert!(attrs.contains(" 0/0 "), "{n}: {attrs}");
        assert!(attrs.contains(&when), "{n}: {attrs} (want mtime {when})");
    }
    for want in ["oci-layout", "index.json", "manifest.json", "repositories"] {
        assert!(names.contains(&want), "{want} missing: {names:?}");
    }

    let dir = t.path().join("x");
    std::fs::create_dir_all(&dir).unwrap();
    untar(&a, &dir);
    let json = |p: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(p)).unwrap()).unwrap()
    };
    assert_eq!(
        json("oci-layout"),
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    );
    let index = json("index.json");
    let m = &index["manifests"][0];
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    let tag = format!("weft:{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        m["annotations"]["io.containerd.image.name"],
        format!("docker.io/library/{tag}")
    );
    let manifest_bytes = blob(&dir, m["digest"].as_str().unwrap());
    assert_eq!(m["size"], manifest_bytes.len());
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    let cfg_d = manifest["config"]["digest"].as_str().unwrap();
    let config_bytes = blob(&dir, cfg_d);
    assert_eq!(manifest["config"]["size"], config_bytes.len());
    let config: Value = serde_json::from_slice(&config_bytes).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let layer_d = layers[0]["digest"].as_str().unwrap();
    let layer = blob(&dir, layer_d);
    assert_eq!(layers[0]["size"], layer.len());
    // An uncompressed layer: its digest is its diff ID.
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!([layer_d]));
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/opt/bin/weft"])
    );
    let version = crate::dist_support::version_of(&static_bin());
    assert!(
        version.contains(
            config["config"]["Labels"]["org.opencontainers.image.revision"]
                .as_str()
                .unwrap()
        ),
        "{version}"
    );
    // docker's view of the same image.
    assert_eq!(
        json("manifest.json"),
        serde_json::json!([{
            "Config": format!("blobs/sha256/{}", &cfg_d[7..]),
            "RepoTags": [tag],
            "Layers": [format!("blobs/sha256/{}", &layer_d[7..])],
        }])
    );

    // The root filesystem: the binary, a relative link per applet, /tmp; owned by root.
    let layer_tar = dir.join("blobs/sha256").join(&layer_d[7..]);
    let files: BTreeMap<String, String> = listing(&layer_tar)
        .into_iter()
        .map(|(n, attrs)| {
            assert!(attrs.contains(&when), "{n}: {attrs}");
            let mut f = attrs.split_whitespace();
            let (mode, owner) = (f.next().unwrap(), f.next().unwrap());
            assert_eq!(owner, "0/0", "{n}");
            let target = attrs.split_once(" -> ").map(|(_, t)| t.to_string());
            (
                n,
                format!(
                    "{mode}{}",
                    target.map(|t| format!(" -> {t}")).unwrap_or_default()
                ),
            )
        })
        .collect();
    let o = Command::new(static_bin()).arg("--list").output().unwrap();
    let mut want: BTreeMap<String, String> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|a| (format!("opt/bin/{a}"), "lrwxrwxrwx -> weft".to_string()))
        .collect();
    for (n, m) in [
        ("opt", "drwxr-xr-x"),
        ("opt/bin", "drwxr-xr-x"),
        ("opt/bin/weft", "-rwxr-xr-x"),
        ("tmp", "drwxrwxrwt"),
    ] {
        want.insert(n.into(), m.into());
    }
    assert_eq!(files, want);
    let rootfs = t.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    untar(&layer_tar, &rootfs);
    assert_eq!(
        std::fs::read(rootfs.join("opt/bin/weft")).unwrap(),
        std::fs::read(static_bin()).unwrap()
    );
}
