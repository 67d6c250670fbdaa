//! `weft cnitool`: conflists run as a runtime runs them, inside a namespace playing the host,
//! with real plugins: the chain's result and cache, CHECK and DEL fed from the cache, a failed
//! ADD deleted again, versions asked of each plugin, GC of attachments whose namespace is gone.

use crate::common::*;
use crate::portmap::{ask, serve};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A host namespace, a conf dir, a cache dir and a bridge name of their own.
struct Rig {
    site: Site,
    confs: TempDir,
    cache: TempDir,
    bridge: String,
}

impl Rig {
    fn new() -> Rig {
        let site = Site::new("ct");
        let bridge = format!("wtct{}", &site.host.name[site.host.name.len() - 6..]);
        Rig {
            site,
            confs: TempDir::new("ctconf"),
            cache: TempDir::new("ctcache"),
            bridge,
        }
    }

    /// A bridge (host-local on 10.1.2.0/24) + portmap list named `ctnet`, with `top` merged in.
    fn write_list(&self, v: &str, top: Value, portmap: Value) -> PathBuf {
        let list = merged(
            json!({
                "cniVersion": v, "name": "ctnet",
                "plugins": [
                    {"type": "bridge", "bridge": self.bridge, "isGateway": true,
                     "ipam": {"type": "host-local", "subnet": "10.1.2.0/24",
                              "dataDir": self.site.data_dir()}},
                    merged(json!({"type": "portmap", "capabilities": {"portMappings": true}}), portmap),
                ]
            }),
            top,
        );
        let path = self.confs.path().join("10-ctnet.conflist");
        std::fs::write(&path, list.to_string()).unwrap();
        path
    }

    /// `weft cnitool ARGS` inside the host namespace with `env` beside the rig's own.
    fn cnitool(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.site.host.name])
            .arg(weft())
            .arg("cnitool")
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("NETCONFPATH", self.confs.path())
            .env("CNI_PATH", bin_dir())
            .env("CNI_CACHE_DIR", self.cache.path());
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Addresses host-local holds for `ctnet`.
    fn reserved(&self) -> Vec<String> {
        reserved_ips(&self.site.data.path().join("ctnet"))
    }

    fn cache_files(&self) -> Vec<String> {
        match std::fs::read_dir(self.cache.path().join("results")) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// upstream cnitool's container ID for `netns`.
fn container_id(netns: &str) -> String {
    use sha2::{Digest, Sha512};
    let d = Sha512::digest(netns.as_bytes());
    let hex: String = d[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("cnitool-{hex}")
}

const MAPPING: &str = r#"{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}"#;

#[test]
fn a_chain_runs_with_its_result_cached_for_check_and_del() {
    let rig = Rig::new();
    let pod = Netns::new("ctp");
    rig.write_list("1.0.0", json!({}), json!({}));
    let add = rig.cnitool(&["add", "ctnet", &pod.path()], &[("CAP_ARGS", MAPPING)]);
    let res = add.ok();
    assert_eq!(res["cniVersion"], "1.0.0");
    let ip = res["ips"][0]["address"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.1.2."), "{res}");
    let eth0 = &res["interfaces"][res["ips"][0]["interface"].as_u64().unwrap() as usize];
    assert_eq!(
        (eth0["name"].as_str(), eth0["sandbox"].as_str()),
        (Some("eth0"), Some(pod.path().as_str()))
    );
    assert_eq!(addrs(&pod, "eth0", "-4"), vec![ip.clone()]);

    // The cache record, as libcni names and writes it.
    let cid = container_id(&pod.path());
    assert_eq!(rig.cache_files(), vec![format!("ctnet-{cid}-eth0")]);
    let rec: Value = serde_json::from_slice(
        &std::fs::read(rig.cache.path().join(format!("results/ctnet-{cid}-eth0"))).unwrap(),
    )
    .unwrap();
    assert_eq!(rec["kind"], "cniCacheV1");
    assert_eq!(rec["containerId"], cid);
    assert_eq!(rec["netns"], pod.path());
    assert_eq!(rec["result"]["ips"], res["ips"]);
    assert_eq!(rec["capabilityArgs"]["portMappings"][0]["hostPort"], 8080);

    // portmap got the mapping from CAP_ARGS: the host's own address answers for the pod.
    let _srv = serve(&pod, 80, 80, "pod");
    let gw = res["ips"][0]["gateway"].as_str().unwrap();
    let reply = ask(&rig.site.host, gw, 8080, false);
    assert!(reply.starts_with("pod "), "{reply}");

    assert_eq!(
        rig.cnitool(&["check", "ctnet", &pod.path()], &[]).ok(),
        Value::Null
    );
    // CHECK really compares with the cached result: take the address away and it fails.
    pod.ip(&["addr", "flush", "dev", "eth0"]);
    let msg = rig.cnitool(&["check", "ctnet", &pod.path()], &[]).err(999);
    assert!(
        msg.starts_with("plugin type=\"bridge\" failed (check):"),
        "{msg}"
    );

    rig.cnitool(&["del", "ctnet", &pod.path()], &[]).ok();
    assert!(rig.cache_files().is_empty());
    assert!(rig.reserved().is_empty());
    assert!(!pod.link_names().contains(&"eth0".to_string()));
    let nat = rig.site.host.nat_rules(false).join("\n");
    assert!(!nat.contains("CNI-DN-"), "{nat}");
    rig.cnitool(&["del", "ctnet", &pod.path()], &[]).ok();
}

#[test]
fn a_failed_add_is_deleted_again() {
    let rig = Rig::new();
    let pod = Netns::new("ctp");
    rig.write_list("1.0.0", json!({}), json!({"markMasqBit": 99}));
    let out = rig.cnitool(&["add", "ctnet", &pod.path()], &[("CAP_ARGS", MAPPING)]);
    assert_eq!(
        out.err(999),
        "plugin type=\"portmap\" failed (add): failed to parse config: MasqMarkBit must be \
         between 0 and 31"
    );
    assert_eq!(out.json()["cniVersion"], "1.0.0");
    assert_eq!(
        pod.link_names(),
        vec!["lo".to_string()],
        "bridge's veth left behind"
    );
    assert!(rig.reserved().is_empty(), "address left reserved");
    assert!(rig.cache_files().is_empty());
}

#[test]
fn each_plugins_version_is_asked_before_add() {
    let rig = Rig::new();
    let pod = Netns::new("ctp");
    rig.write_list("1.1.0", json!({}), json!({}));
    // Debian's Go plugins (1.1.1) stop at 1.0.0: both are refused before anything runs.
    let out = rig.cnitool(&["add", "ctnet", &pod.path()], &[("CNI_PATH", GO_DIR)]);
    assert_eq!(
        out.err(1),
        "plugin bridge does not support config version \"1.1.0\"; plugin portmap does not \
         support config version \"1.1.0\""
    );
    assert_eq!(pod.link_names(), vec!["lo".to_string()]);
    // cniVersions lets the list offer 1.0.0 beside it; libcni still picks the highest.
    rig.write_list(
        "1.0.0",
        json!({"cniVersions": ["1.0.0", "1.1.0"]}),
        json!({}),
    );
    rig.cnitool(&["add", "ctnet", &pod.path()], &[("CNI_PATH", GO_DIR)])
        .err(1);
    // A plugin that is not there at all, worded as libcni words it.
    let out = rig.cnitool(
        &["add", "ctnet", &pod.path()],
        &[("CNI_PATH", "/nonexistent")],
    );
    assert_eq!(
        out.err(999),
        "plugin type=\"bridge\" failed (add): failed to find plugin \"bridge\" in path \
         [/nonexistent]"
    );
    // weft's plugins take 1.1.0, and the Go ones the 1.0.0 list.
    rig.write_list("1.0.0", json!({}), json!({}));
    let res = rig
        .cnitool(&["add", "ctnet", &pod.path()], &[("CNI_PATH", GO_DIR)])
        .ok();
    assert_eq!(res["cniVersion"], "1.0.0");
    rig.cnitool(&["del", "ctnet", &pod.path()], &[("CNI_PATH", GO_DIR)])
        .ok();
    assert!(rig.reserved().is_empty());
}

#[test]
fn check_del_and_gc_follow_the_cache() {
    let rig = Rig::new();
    let pods = [Netns::new("ctp"), Netns::new("ctp")];
    // Below 0.4.0 there is no CHECK; disableCheck passes without asking anyone.
    rig.write_list("0.3.1", json!({}), json!({}));
    assert_eq!(
        rig.cnitool(&["check", "ctnet", &pods[0].path()], &[])
            .err(1),
        "configuration version \"0.3.1\" does not support the CHECK command"
    );
    rig.write_list("1.0.0", json!({"disableCheck": true}), json!({}));
    rig.cnitool(&["check", "ctnet", &pods[0].path()], &[]).ok();

    // A DEL after the list is gone runs with the config its ADD cached.
    let list = rig.write_list("1.1.0", json!({}), json!({}));
    rig.cnitool(&["add", "ctnet", &pods[0].path()], &[]).ok();
    std::fs::remove_file(&list).unwrap();
    rig.cnitool(&["del", "ctnet", &pods[0].path()], &[]).ok();
    assert!(rig.reserved().is_empty());
    assert!(rig.cache_files().is_empty());

    // GC: the attachment whose namespace is gone is deleted, the live one kept.
    rig.write_list("1.1.0", json!({}), json!({}));
    let a = rig.cnitool(&["add", "ctnet", &pods[0].path()], &[]).ok();
    let b = rig.cnitool(&["add", "ctnet", &pods[1].path()], &[]).ok();
    let ip = |r: &Value| {
        r["ips"][0]["address"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    let mut both = vec![ip(&a), ip(&b)];
    both.sort();
    assert_eq!(rig.reserved(), both);
    let gone = pods[1].path();
    assert!(Command::new("ip")
        .args(["netns", "del", &pods[1].name])
        .status()
        .unwrap()
        .success());
    rig.cnitool(&["gc", "ctnet"], &[]).ok();
    assert_eq!(rig.reserved(), vec![ip(&a)]);
    assert_eq!(
        rig.cache_files(),
        vec![format!("ctnet-{}-eth0", container_id(&pods[0].path()))]
    );
    assert!(!Path::new(&gone).exists());
    // STATUS at 1.1.0 asks every plugin; all are ready.
    rig.cnitool(&["status", "ctnet"], &[]).ok();
    rig.cnitool(&["del", "ctnet", &pods[0].path()], &[]).ok();
    assert!(rig.reserved().is_empty());
}

#[test]
fn bad_input_gets_the_specs_error_json() {
    let rig = Rig::new();
    let pod = Netns::new("ctp");
    rig.write_list("1.0.0", json!({}), json!({}));
    let msg = rig.cnitool(&["add", "nonet", &pod.path()], &[]).err(7);
    assert!(
        msg.starts_with("no net configuration with name \"nonet\" in"),
        "{msg}"
    );
    let out = rig.cnitool(&["add", "ctnet", &pod.path()], &[("CNI_ARGS", "a=b;c")]);
    assert_eq!(out.err(4), "invalid CNI_ARGS pair \"c\"");
    let out = rig.cnitool(&["add", "ctnet", &pod.path()], &[("CAP_ARGS", "{")]);
    assert_eq!(out.err(4), "CAP_ARGS is not valid JSON");
    let out = rig.cnitool(&["add", "ctnet", &pod.path()], &[("CNI_IFNAME", "a/b")]);
    assert!(
        out.err(4)
            .starts_with("plugin type=\"bridge\" failed (add):"),
        "{out:?}"
    );
    std::fs::write(rig.confs.path().join("05-broken.conflist"), "{").unwrap();
    let msg = rig.cnitool(&["add", "ctnet", &pod.path()], &[]).err(6);
    assert!(
        msg.starts_with("error parsing configuration list:"),
        "{msg}"
    );
    let usage = rig.cnitool(&["add", "ctnet"], &[]);
    assert_eq!(usage.code, 2);
    assert!(
        usage
            .stderr
            .contains("network name and namespace are required"),
        "{usage:?}"
    );
    assert_eq!(pod.link_names(), vec!["lo".to_string()]);
    assert!(rig.cache_files().is_empty());
    let help = rig.cnitool(&["--help"], &[]);
    assert!(
        help.code == 0 && help.stdout.contains("Examples:"),
        "{help:?}"
    );
}
