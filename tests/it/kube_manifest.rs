//! deploy/kube-flannel.yml, read with a YAML parser: exactly upstream flannel's objects, names,
//! labels, selector and RBAC rules (so `kubectl apply` moves a cluster either way), the image and
//! commands of weft, every mount backed by a volume, and the init containers' commands run here
//! with their volumes mapped into a temp dir: they must install the plugins and the conflist.

use crate::common::*;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every document of the manifest, as JSON values.
fn objects() -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join("deploy/kube-flannel.yml")).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("deploy/kube-flannel.yml is not valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The one object of `kind`.
fn the(objs: &[Value], kind: &str) -> Value {
    let found: Vec<&Value> = objs.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} expected");
    found[0].clone()
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("not a string: {s}")))
        .collect()
}

#[test]
fn kube_manifest_has_upstreams_objects_and_rbac() {
    let objs = objects();
    let mut names: Vec<(String, String, String, String)> = objs
        .iter()
        .map(|o| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (
                s(&o["apiVersion"]),
                s(&o["kind"]),
                s(&o["metadata"]["namespace"]),
                s(&o["metadata"]["name"]),
            )
        })
        .collect();
    names.sort();
    let want = [
        ("apps/v1", "DaemonSet", "kube-flannel", "kube-flannel-ds"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", "", "flannel"),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "",
            "flannel",
        ),
        ("v1", "ConfigMap", "kube-flannel", "kube-flannel-cfg"),
        ("v1", "Namespace", "", "kube-flannel"),
        ("v1", "ServiceAccount", "kube-flannel", "flannel"),
    ];
    let want: Vec<(String, String, String, String)> = want
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect();
    assert_eq!(names, want);
    for o in &objs {
        assert_eq!(
            o["metadata"]["labels"]["k8s-app"], "flannel",
            "{}",
            o["kind"]
        );
    }
    assert_eq!(
        the(&objs, "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );

    // Upstream's rules, exactly: no more, no less, in upstream's order.
    assert_eq!(
        the(&objs, "ClusterRole")["rules"],
        json!([
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]},
        ])
    );
    let binding = the(&objs, "ClusterRoleBinding");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flannel"})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "flannel", "namespace": "kube-flannel"}])
    );

    let cm = the(&objs, "ConfigMap");
    let keys: Vec<&String> = cm["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["cni-conf.json", "net-conf.json"]);
    // The same conflist the release ships for systemd hosts.
    let cni: Value = serde_json::from_str(cm["data"]["cni-conf.json"].as_str().unwrap()).unwrap();
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("scripts/dist/etc/cni/net.d/10-flannel.conflist"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(cni, shipped);
    let net = cm["data"]["net-conf.json"].as_str().unwrap();
    weft::flanneld::subnet::config::NetworkConfig::parse(net)
        .unwrap_or_else(|e| panic!("weft's flanneld refuses net-conf.json: {e:#}\n{net}"));
}

#[test]
fn kube_manifest_daemonset_runs_weft() {
    let objs = objects();
    let ds = the(&objs, "DaemonSet");
    // A DaemonSet's selector cannot change: it must be upstream's for an apply over it.
    assert_eq!(
        ds["spec"]["selector"],
        json!({"matchLabels": {"app": "flannel"}})
    );
    let pod = &ds["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["app"], "flannel");
    let spec = &pod["spec"];
    assert_eq!(spec["serviceAccountName"], "flannel");
    assert_eq!(spec["hostNetwork"], true);
    assert_eq!(spec["priorityClassName"], "system-node-critical");

    let image = format!("weft:{}", env!("CARGO_PKG_VERSION"));
    let inits = spec["initContainers"].as_array().unwrap();
    let containers = spec["containers"].as_array().unwrap();
    let names: Vec<&str> = inits
        .iter()
        .chain(containers)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["install-cni-plugin", "install-cni", "kube-flannel"]);
    let volumes: BTreeMap<&str, &Value> = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    for c in inits.iter().chain(containers) {
        assert_eq!(
            c["image"],
            image.as_str(),
            "{}: the image make image tags",
            c["name"]
        );
        // Air-gapped: loaded on the node, never pulled.
        assert_eq!(c["imagePullPolicy"], "Never", "{}", c["name"]);
        for m in c["volumeMounts"].as_array().unwrap() {
            let v = m["name"].as_str().unwrap();
            assert!(volumes.contains_key(v), "{}: no volume {v}", c["name"]);
        }
    }
    let host_path = |name: &str| {
        volumes[name]["hostPath"]["path"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(host_path("cni-plugin"), "/opt/cni/bin");
    assert_eq!(host_path("cni"), "/etc/cni/net.d");
    assert_eq!(host_path("run"), "/run/flannel");
    assert_eq!(
        volumes["flannel-cfg"]["configMap"]["name"],
        "kube-flannel-cfg"
    );

    let main = &containers[0];
    assert_eq!(strs(&main["command"]), ["/opt/bin/flanneld"]);
    let args = strs(&main["args"]);
    for a in ["--ip-masq", "--kube-subnet-mgr"] {
        assert!(args.contains(&a), "{args:?}");
    }
    // Every flag is one weft's flanneld knows, and the probes ask its healthz server.
    let help = Command::new(weft())
        .args(["flanneld", "--help"])
        .output()
        .unwrap();
    let help =
        String::from_utf8_lossy(&help.stdout).into_owned() + &String::from_utf8_lossy(&help.stderr);
    for a in &args {
        let flag = a.trim_start_matches('-').split('=').next().unwrap();
        assert!(
            help.contains(&format!("-{flag}")),
            "flanneld knows no {a}:\n{help}"
        );
    }
    assert!(args.contains(&"--healthz-port=8081"), "{args:?}");
    assert_eq!(main["ports"][0]["containerPort"], 8081);
    assert_eq!(main["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(main["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        strs(&main["securityContext"]["capabilities"]["add"]),
        ["NET_ADMIN", "NET_RAW"]
    );
    let mounts: Vec<&str> = main["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert!(mounts.contains(&"/run/flannel"), "{mounts:?}");
    assert!(mounts.contains(&"/etc/kube-flannel/"), "{mounts:?}");
}

/// The init containers' commands, run on this binary with each volume a directory of a temp
/// dir: the CNI bin dir gets weft's copy and links beside a Go plugin it leaves alone and an
/// upstream flannel it takes over; net.d gets the ConfigMap's conflist byte for byte.
#[test]
fn kube_manifest_init_containers_install_the_cni_side() {
    let objs = objects();
    let cm = the(&objs, "ConfigMap");
    let ds = the(&objs, "DaemonSet");
    let spec = &ds["spec"]["template"]["spec"];
    let t = TempDir::new("kube-init");
    let vol_dir = |name: &str| -> PathBuf { t.path().join("vol").join(name) };
    // The ConfigMap volume: a file per key.
    let cfg = vol_dir("flannel-cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    for (k, v) in cm["data"].as_object().unwrap() {
        std::fs::write(cfg.join(k), v.as_str().unwrap()).unwrap();
    }
    // The node, as kubeadm and upstream flannel left it.
    let bin = vol_dir("cni-plugin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("bridge"), "Go's bridge\n").unwrap();
    std::fs::write(bin.join("flannel"), "upstream's flannel\n").unwrap();
    std::fs::create_dir_all(vol_dir("cni")).unwrap();

    for c in spec["initContainers"].as_array().unwrap() {
        let mut mounts: Vec<(String, PathBuf)> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let p = m["mountPath"].as_str().unwrap().trim_end_matches('/');
                (p.to_string(), vol_dir(m["name"].as_str().unwrap()))
            })
            .collect();
        // The longest mount path first, as the container sees nested mounts.
        mounts.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let map = |arg: &str| -> String {
            for (p, dir) in &mounts {
                if arg == p {
                    return dir.display().to_string();
                }
                if let Some(rest) = arg.strip_prefix(&format!("{p}/")) {
                    return dir.join(rest).display().to_string();
                }
            }
            arg.to_string()
        };
        let command = strs(&c["command"]);
        assert_eq!(
            command,
            ["/opt/bin/weft"],
            "{}: no shell in the image",
            c["name"]
        );
        let args: Vec<String> = strs(&c["args"]).into_iter().map(map).collect();
        let out = Command::new(weft()).args(&args).output().unwrap();
        assert!(out.status.success(), "{}: {args:?}: {out:?}", c["name"]);
    }

    let m = bin.join("weft").symlink_metadata().unwrap();
    assert!(m.is_file(), "/opt/cni/bin/weft must be a copy");
    assert_eq!(
        std::fs::read(bin.join("weft")).unwrap(),
        std::fs::read(weft()).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(bin.join("bridge")).unwrap(),
        "Go's bridge\n"
    );
    for a in [
        "flannel",
        "portmap",
        "host-local",
        "loopback",
        "ptp",
        "flanneld",
    ] {
        assert_eq!(
            std::fs::read_link(bin.join(a)).unwrap(),
            Path::new("weft"),
            "{a}"
        );
    }
    let conflist = vol_dir("cni").join("10-flannel.conflist");
    assert_eq!(
        std::fs::read_to_string(&conflist).unwrap(),
        cm["data"]["cni-conf.json"].as_str().unwrap()
    );
}
