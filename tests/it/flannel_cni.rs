//! The flannel CNI meta-plugin against the real kernel, run as a runtime runs it: weft's flannel
//! delegating to weft's bridge and host-local (in-process), with a subnet.env from
//! testdata/flannel-cni/. Each test has its own "host" namespace (where cni0 appears), container
//! namespaces, and a directory for subnet.env, flannel's dataDir and host-local's state, all
//! removed on drop.
//!
//! The first tests are the upstream plugin's own (flannel-io/cni-plugin `flannel_linux_test.go`,
//! "CNI lifecycle"), with host-local's state moved from /var/lib/cni/networks into the test's
//! directory; its config-parsing and getDelegateIPAM cases are unit tests in src/plugins/flannel_cni/.
//! No Go flannel plugin is installed on the machines this runs on (Debian does not package it),
//! so there is no differential run of flannel itself; the golden delegate configs in testdata
//! follow upstream's code and its test expectations. The Go bridge from /usr/lib/cni is used as
//! an exec'd delegate in `go_bridge_as_exec_delegate_gives_the_same_result`.

use crate::common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const NET: &str = "cni-flannel";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/flannel-cni")
        .join(name)
}

/// A test host with flannel's files under its data directory.
struct Fl {
    site: Site,
}

impl Fl {
    /// A site whose subnet.env is the testdata file `env` (none when `None`).
    fn new(tag: &str, env: Option<&str>) -> Fl {
        let fl = Fl {
            site: Site::new(tag),
        };
        if let Some(env) = env {
            fl.write_env(env);
        }
        fl
    }
    fn subnet_env(&self) -> PathBuf {
        self.site.data.path().join("subnet.env")
    }
    fn write_env(&self, fixture_name: &str) {
        std::fs::copy(fixture(fixture_name), self.subnet_env()).unwrap();
    }
    fn data_dir(&self) -> PathBuf {
        self.site.data.path().join("flannel")
    }
    fn hl_dir(&self) -> PathBuf {
        self.site.data.path().join("hl")
    }
    /// flannel's config: upstream's test input plus host-local's dataDir (through the `ipam`
    /// override, which passes other keys on), with `extra` merged in (`ipam` keys merged too).
    fn conf(&self, v: Option<&str>, extra: Value) -> String {
        let mut c = json!({"name": NET, "type": "flannel",
            "subnetFile": self.subnet_env(), "dataDir": self.data_dir(),
            "ipam": {"dataDir": self.hl_dir()}});
        if let Some(v) = v {
            c["cniVersion"] = json!(v);
        }
        let mut extra = extra;
        if let Some(Value::Object(ipam)) = extra.as_object_mut().and_then(|e| e.remove("ipam")) {
            for (k, val) in ipam {
                c["ipam"][k] = val;
            }
        }
        merged(c, extra).to_string()
    }
    fn saved(&self, cid: &str) -> Option<String> {
        std::fs::read_to_string(self.data_dir().join(cid)).ok()
    }
    /// Addresses host-local holds for the network.
    fn reserved(&self) -> Vec<String> {
        reserved_ips(&self.hl_dir().join(NET))
    }
    fn run(&self, env: &Env, conf: &str) -> Outcome {
        self.site.run("flannel", env, conf)
    }
    fn env(&self, cmd: &str, cid: &str, ctr: &Netns) -> Env {
        self.site.env(cmd, cid, ctr)
    }
    /// Host links other than lo and cni0: what an attachment leaves behind.
    fn host_veths(&self) -> Vec<String> {
        self.site
            .host
            .link_names()
            .into_iter()
            .filter(|n| n != "lo" && n != "cni0")
            .collect()
    }
    /// Asserts that nothing of an attachment exists: no saved config, no veth, no address.
    fn assert_nothing_left(&self, cid: &str, ctr: &Netns) {
        assert_eq!(self.saved(cid), None, "saved config of {cid} left behind");
        assert!(self.host_veths().is_empty(), "{:?}", self.host_veths());
        assert_eq!(ctr.link_names(), ["lo"]);
        assert!(self.reserved().is_empty(), "{:?}", self.reserved());
    }
}

/// `dst via gateway` for each route of `family` in `ns` (kernel routes left out).
fn routes(ns: &Netns, family: &str) -> Vec<String> {
    ns.ipj(&[family, "route", "show"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["protocol"] != "kernel" && !r["dst"].as_str().unwrap().starts_with("fe80"))
        .map(|r| format!("{} via {}", r["dst"].as_str().unwrap(), r["gateway"]))
        .collect()
}

/// How many addresses a result holds, in either result shape.
fn ip_count(res: &Value) -> usize {
    match res.get("ips") {
        Some(ips) => ips.as_array().unwrap().len(),
        None => ["ip4", "ip6"]
            .iter()
            .filter(|k| res.get(**k).is_some())
            .count(),
    }
}

/// The golden delegate config with the test's host-local dataDir in its (sorted) place.
fn golden_with_hl(name: &str, fl: &Fl) -> String {
    let g = std::fs::read_to_string(fixture(name)).unwrap();
    let hl = serde_json::to_string(&fl.hl_dir()).unwrap();
    g.trim_end()
        .replacen("\"ipam\":{", &format!("\"ipam\":{{\"dataDir\":{hl},"), 1)
}

// Upstream "CNI lifecycle": ipv4, ipv4 with two networks, ipv6, dual stack. ADD saves exactly
// the delegate config upstream writes, the result has one address per family, DEL removes the
// saved file, a second DEL succeeds.
#[test]
fn upstream_lifecycle_on_every_stack() {
    for (env, golden, cid, n_ips) in [
        (
            "subnet-v4.env",
            "delegate-v4.json",
            "some-container-id-ipv4",
            1,
        ),
        (
            "subnet-v4-multi.env",
            "delegate-v4-multi.json",
            "some-container-id-ipv4-multiple",
            1,
        ),
        (
            "subnet-v6.env",
            "delegate-v6.json",
            "some-container-id-ipv6",
            1,
        ),
        (
            "subnet-dual.env",
            "delegate-dual.json",
            "some-container-id-dual",
            2,
        ),
    ] {
        let fl = Fl::new("fu", Some(env));
        let ctr = Netns::new("fuc");
        // Upstream's input has no cniVersion (so 0.1.0, and none in the delegate config).
        let conf = fl.conf(None, json!({}));
        let res = fl.run(&fl.env("ADD", cid, &ctr), &conf).ok();
        assert_eq!(fl.saved(cid).unwrap(), golden_with_hl(golden, &fl), "{env}");
        assert_eq!(ip_count(&res), n_ips, "{env}: {res}");
        fl.run(&fl.env("DEL", cid, &ctr), &conf).ok();
        assert_eq!(fl.saved(cid), None, "{env}");
        fl.run(&fl.env("DEL", cid, &ctr), &conf).ok();
        fl.assert_nothing_left(cid, &ctr);
    }
}

#[test]
fn add_check_status_del_at_every_version() {
    for v in VERSIONS {
        let fl = Fl::new("fv", Some("subnet-v4.env"));
        let ctr = Netns::new("fvc");
        let conf = fl.conf(Some(v), json!({}));
        let out = fl.run(&fl.env("ADD", "c1", &ctr), &conf);
        let res = out.ok();
        assert_eq!(res["cniVersion"], v);
        // The pod: an address in FLANNEL_SUBNET, the flannel network through cni0, flannel's MTU,
        // no default route (upstream's delegate has no isDefaultGateway).
        assert_eq!(addrs(&ctr, "eth0", "-4"), ["10.1.17.2/24"]);
        assert_eq!(routes(&ctr, "-4"), ["10.1.0.0/16 via \"10.1.17.1\""]);
        assert_eq!(link(&ctr, "eth0")["mtu"], 1472);
        // The host: cni0 with the gateway, the veth on it with the same MTU.
        let cni0 = link(&fl.site.host, "cni0");
        assert_eq!(cni0["linkinfo"]["info_kind"], "bridge");
        assert_eq!(addrs(&fl.site.host, "cni0", "-4"), ["10.1.17.1/24"]);
        assert_eq!(cni0["mtu"], 1472);
        let veths = fl.host_veths();
        assert_eq!(veths.len(), 1, "{veths:?}");
        let hv = link(&fl.site.host, &veths[0]);
        assert_eq!((&hv["master"], &hv["mtu"]), (&json!("cni0"), &json!(1472)));
        // FLANNEL_IPMASQ=true: flanneld masquerades, so the bridge must not.
        assert!(fl.site.host.nat_rules(false).is_empty());
        if v >= "0.3.0" {
            assert_eq!(res["ips"][0]["address"], "10.1.17.2/24");
            assert_eq!(res["ips"][0]["gateway"], "10.1.17.1");
            assert_eq!(res["routes"], json!([{"dst": "10.1.0.0/16"}]));
            assert_eq!(res["interfaces"][0]["name"], "cni0");
            assert_eq!(res["interfaces"][2]["sandbox"], ctr.path());
        } else {
            assert_eq!(res["ip4"]["ip"], "10.1.17.2/24");
            assert_eq!(res["ip4"]["gateway"], "10.1.17.1");
        }
        let saved: Value = serde_json::from_str(&fl.saved("c1").unwrap()).unwrap();
        assert_eq!(saved["cniVersion"], v);
        if v >= "0.4.0" {
            fl.run(&fl.env("CHECK", "c1", &ctr), &with_prev(&conf, &res))
                .ok();
        }
        if v >= "1.1.0" {
            fl.run(&fl.env("STATUS", "", &ctr), &conf).ok();
        }
        fl.run(&fl.env("DEL", "c1", &ctr), &conf).ok();
        fl.assert_nothing_left("c1", &ctr);
        // The bridge and its address stay, as with the reference bridge.
        assert_eq!(addrs(&fl.site.host, "cni0", "-4"), ["10.1.17.1/24"]);
        fl.run(&fl.env("DEL", "c1", &ctr), &conf).ok();
        fl.run(&fl.env("DEL", "never-added", &ctr), &conf).ok();
    }
}

#[test]
fn dual_stack_with_masquerade_by_the_bridge() {
    // FLANNEL_IPMASQ=false: flanneld does not masquerade, so the bridge does; two IPv6 networks.
    let fl = Fl::new("fd", Some("subnet-dual-nomasq.env"));
    let ctr = Netns::new("fdc");
    let conf = fl.conf(Some("1.0.0"), json!({}));
    let res = fl.run(&fl.env("ADD", "dual", &ctr), &conf).ok();
    assert_eq!(ip_count(&res), 2);
    assert_eq!(addrs(&ctr, "eth0", "-4"), ["10.1.17.2/24"]);
    assert_eq!(addrs(&ctr, "eth0", "-6"), ["fc00::2/64"]);
    assert_eq!(routes(&ctr, "-4"), ["10.1.0.0/16 via \"10.1.17.1\""]);
    assert_eq!(
        routes(&ctr, "-6"),
        ["fc00::/48 via \"fc00::1\"", "fd00:1::/56 via \"fc00::1\""]
    );
    assert_eq!(link(&ctr, "eth0")["mtu"], 1450);
    assert_eq!(addrs(&fl.site.host, "cni0", "-4"), ["10.1.17.1/24"]);
    assert_eq!(addrs(&fl.site.host, "cni0", "-6"), ["fc00::1/64"]);
    let (nat4, nat6) = (fl.site.host.nat_rules(false), fl.site.host.nat_rules(true));
    assert!(nat4.iter().any(|r| r.contains("10.1.17.2")), "{nat4:?}");
    assert!(nat6.iter().any(|r| r.contains("fc00::2")), "{nat6:?}");
    fl.run(&fl.env("DEL", "dual", &ctr), &conf).ok();
    fl.assert_nothing_left("dual", &ctr);
    assert!(fl.site.host.nat_rules(false).is_empty());
    assert!(fl.site.host.nat_rules(true).is_empty());
}

// The flannel entry of kube-flannel's 10-flannel.conflist, plus runtimeConfig from the runtime.
#[test]
fn kube_flannel_delegate_overrides_and_runtime_config() {
    let fl = Fl::new("fk", Some("subnet-v4.env"));
    let ctr = Netns::new("fkc");
    let conf = fl.conf(
        Some("0.3.1"),
        json!({"name": NET, "delegate": {"hairpinMode": true, "isDefaultGateway": true},
               "runtimeConfig": {"mac": "02:00:00:00:00:42"}}),
    );
    let res = fl.run(&fl.env("ADD", "kube", &ctr), &conf).ok();
    assert_eq!(
        routes(&ctr, "-4"),
        ["default via \"10.1.17.1\"", "10.1.0.0/16 via \"10.1.17.1\""]
    );
    assert_eq!(link(&ctr, "eth0")["address"], "02:00:00:00:00:42");
    let hv = res["interfaces"][1]["name"].as_str().unwrap().to_string();
    assert_eq!(
        link(&fl.site.host, &hv)["linkinfo"]["info_slave_data"]["hairpin"],
        true
    );
    let saved: Value = serde_json::from_str(&fl.saved("kube").unwrap()).unwrap();
    assert_eq!(saved["runtimeConfig"], json!({"mac": "02:00:00:00:00:42"}));
    assert_eq!(saved["hairpinMode"], true);
    fl.run(&fl.env("DEL", "kube", &ctr), &conf).ok();
    fl.assert_nothing_left("kube", &ctr);
}

#[test]
fn del_replays_the_saved_config_after_subnet_env_vanished() {
    let fl = Fl::new("fg", Some("subnet-v4.env"));
    let ctr = Netns::new("fgc");
    let conf = fl.conf(Some("1.0.0"), json!({}));
    fl.run(&fl.env("ADD", "gone", &ctr), &conf).ok();
    assert_eq!(fl.reserved(), ["10.1.17.2"]);
    std::fs::remove_file(fl.subnet_env()).unwrap();
    // The config changed too: DEL still uses what ADD saved (a bridge), not the new delegate.
    let changed = fl.conf(Some("1.0.0"), json!({"delegate": {"type": "ptp"}}));
    fl.run(&fl.env("DEL", "gone", &ctr), &changed).ok();
    fl.assert_nothing_left("gone", &ctr);
}

#[test]
fn del_edge_cases_of_the_saved_file() {
    let fl = Fl::new("fe", Some("subnet-v4.env"));
    let ctr = Netns::new("fec");
    let conf = fl.conf(Some("1.0.0"), json!({}));
    // No dataDir at all yet: success.
    fl.run(&fl.env("DEL", "none", &ctr), &conf).ok();
    fl.run(&fl.env("ADD", "e1", &ctr), &conf).ok();
    let good = fl.saved("e1").unwrap();
    let path = fl.data_dir().join("e1");
    // A delegate DEL that fails: the error is reported and the file kept for a retry.
    std::fs::write(&path, good.replace("\"bridge\"", "\"no-such-plugin\"")).unwrap();
    let out = fl.run(&fl.env("DEL", "e1", &ctr), &conf);
    assert!(out.err(999).contains("failed to find plugin"), "{out:?}");
    assert!(fl.saved("e1").is_some());
    std::fs::write(&path, &good).unwrap();
    fl.run(&fl.env("DEL", "e1", &ctr), &conf).ok();
    fl.assert_nothing_left("e1", &ctr);
    // An unparseable saved config: upstream logs it and succeeds, keeping the file.
    std::fs::write(fl.data_dir().join("e2"), "{truncated").unwrap();
    let out = fl.run(&fl.env("DEL", "e2", &ctr), &conf);
    out.ok();
    assert!(
        out.stderr
            .contains("cannot parse the saved delegate config"),
        "{out:?}"
    );
    assert_eq!(fl.saved("e2").unwrap(), "{truncated");
}

#[test]
fn bad_input_fails_with_the_right_code_and_leaves_nothing() {
    let fl = Fl::new("fb", Some("subnet-v4.env"));
    let ctr = Netns::new("fbc");
    let cases: Vec<(&str, String, u64, &str)> = vec![
        (
            "delegate name",
            fl.conf(Some("1.0.0"), json!({"delegate": {"name": "x"}})),
            7,
            "'delegate' dictionary must not have 'name' field, it'll be set by flannel",
        ),
        (
            "delegate ipam",
            fl.conf(Some("1.0.0"), json!({"delegate": {"ipam": {}}})),
            7,
            "'delegate' dictionary must not have 'ipam' field, it'll be set by flannel",
        ),
        (
            "delegate type",
            fl.conf(Some("1.0.0"), json!({"delegate": {"type": 5}})),
            7,
            "'delegate' dictionary, if present, must have (string) 'type' field",
        ),
        (
            "subnetFile type",
            fl.conf(Some("1.0.0"), json!({"subnetFile": 5})),
            6,
            "failed to load netconf: subnetFile must be a string",
        ),
        (
            "ipam routes",
            fl.conf(
                Some("1.0.0"),
                json!({"ipam": {"routes": [{"dst": "nope"}]}}),
            ),
            7,
            "failed to parse ipam.routes",
        ),
        (
            "version",
            fl.conf(Some("9.9.9"), json!({})),
            1,
            "incompatible CNI versions",
        ),
        (
            "no name",
            json!({"type": "flannel", "subnetFile": fl.subnet_env()}).to_string(),
            7,
            "missing network name",
        ),
        // The delegate exists but refuses the config: the saved file is taken back.
        (
            "bridge refuses",
            fl.conf(Some("1.0.0"), json!({"delegate": {"vlan": 5000}})),
            7,
            "invalid VLAN ID 5000",
        ),
        (
            "no such delegate",
            fl.conf(
                Some("1.0.0"),
                json!({"delegate": {"type": "no-such-plugin"}}),
            ),
            999,
            "failed to find plugin",
        ),
    ];
    for (what, conf, code, msg) in cases {
        let out = fl.run(&fl.env("ADD", "bad", &ctr), &conf);
        let got = out.err(code);
        assert!(got.contains(msg), "{what}: {out:?}");
        fl.assert_nothing_left("bad", &ctr);
    }
    // A container netns that does not exist: the bridge fails after the file was saved.
    let mut env = fl.env("ADD", "bad", &ctr);
    env.netns = "/run/netns/weft-no-such-netns".into();
    let out = fl.run(&env, &fl.conf(Some("1.0.0"), json!({})));
    assert_ne!(out.code, 0, "{out:?}");
    fl.assert_nothing_left("bad", &ctr);
}

// A runtime retrying ADD for a container that is already attached: the retry fails (eth0
// exists) and must not lose the saved config, or the DEL that follows could not clean up.
#[test]
fn failed_repeat_add_keeps_the_existing_attachments_config() {
    let fl = Fl::new("fr", Some("subnet-v4.env"));
    let ctr = Netns::new("frc");
    let conf = fl.conf(Some("1.0.0"), json!({}));
    fl.run(&fl.env("ADD", "r", &ctr), &conf).ok();
    let first = fl.saved("r").unwrap();
    // The retry's config differs (another MTU), so a kept file would show the new bytes.
    let retry = fl.conf(Some("1.0.0"), json!({"delegate": {"mtu": 1400}}));
    let out = fl.run(&fl.env("ADD", "r", &ctr), &retry);
    assert!(out.err(999).contains("already exists"), "{out:?}");
    assert_eq!(fl.saved("r").unwrap(), first);
    assert_eq!(fl.reserved(), ["10.1.17.2"]);
    fl.run(&fl.env("DEL", "r", &ctr), &conf).ok();
    fl.assert_nothing_left("r", &ctr);
}

#[test]
fn subnet_env_missing_or_malformed() {
    let fl = Fl::new("fm", None);
    let ctr = Netns::new("fmc");
    let conf = fl.conf(Some("1.1.0"), json!({}));
    let out = fl.run(&fl.env("ADD", "m", &ctr), &conf);
    let msg = out.err(11);
    assert!(
        msg.starts_with("failed to load flannel 'subnet.env' file: open ")
            && msg.contains("flanneld is not running on this node, or has not written it yet")
            && msg.ends_with("Check the flannel pod log for this node."),
        "{msg}"
    );
    fl.assert_nothing_left("m", &ctr);
    assert!(!fl.data_dir().exists(), "dataDir created by a failed ADD");
    // STATUS says the plugin cannot serve ADDs yet.
    let out = fl.run(&fl.env("STATUS", "", &ctr), &conf);
    assert!(out.err(50).contains("flanneld is not running"), "{out:?}");
    for (text, want) in [
        (
            "foo=bar\n",
            "is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, \
             FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ",
        ),
        (
            "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1\nFLANNEL_MTU=1472\n\
             FLANNEL_IPMASQ=true\n",
            "FLANNEL_SUBNET: invalid CIDR address: \"10.1.17.1\"",
        ),
    ] {
        std::fs::write(fl.subnet_env(), text).unwrap();
        let out = fl.run(&fl.env("ADD", "m", &ctr), &conf);
        assert!(out.err(6).contains(want), "{out:?}");
        fl.assert_nothing_left("m", &ctr);
        fl.run(&fl.env("STATUS", "", &ctr), &conf).err(50);
    }
    fl.write_env("subnet-v4.env");
    fl.run(&fl.env("STATUS", "", &ctr), &conf).ok();
}

#[test]
fn check_uses_the_saved_config_and_the_runtimes_prev_result() {
    let fl = Fl::new("fc", Some("subnet-v4.env"));
    let ctr = Netns::new("fcc");
    let conf = fl.conf(Some("1.0.0"), json!({}));
    let res = fl.run(&fl.env("ADD", "chk", &ctr), &conf).ok();
    let check = with_prev(&conf, &res);
    // subnet.env is not needed: CHECK works from the saved config.
    std::fs::remove_file(fl.subnet_env()).unwrap();
    fl.run(&fl.env("CHECK", "chk", &ctr), &check).ok();
    ctr.ip(&["addr", "flush", "dev", "eth0"]);
    let out = fl.run(&fl.env("CHECK", "chk", &ctr), &check);
    assert_ne!(out.code, 0, "CHECK passed with the address gone: {out:?}");
    let out = fl.run(&fl.env("CHECK", "other", &ctr), &check);
    assert!(out.err(3).contains("no saved delegate config"), "{out:?}");
    fl.run(&fl.env("DEL", "chk", &ctr), &conf).ok();
    fl.assert_nothing_left("chk", &ctr);
}

#[test]
fn gc_drops_stale_configs_and_addresses() {
    let fl = Fl::new("fgc", Some("subnet-v4.env"));
    let (c1, c2) = (Netns::new("fgc1"), Netns::new("fgc2"));
    let conf = fl.conf(Some("1.1.0"), json!({}));
    fl.run(&fl.env("ADD", "keep", &c1), &conf).ok();
    fl.run(&fl.env("ADD", "stale", &c2), &conf).ok();
    // Another network's config in the same dataDir is not this GC's to remove.
    std::fs::write(
        fl.data_dir().join("other-net"),
        r#"{"name":"other","type":"bridge"}"#,
    )
    .unwrap();
    assert_eq!(fl.reserved(), ["10.1.17.2", "10.1.17.3"]);
    let mut gc: Value = serde_json::from_str(&conf).unwrap();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    fl.run(&fl.env("GC", "", &c1), &gc.to_string()).ok();
    assert!(fl.saved("keep").is_some());
    assert_eq!(fl.saved("stale"), None);
    assert!(fl.saved("other-net").is_some());
    assert_eq!(fl.reserved(), ["10.1.17.2"]);
    // Without subnet.env the stale config still goes, but the delegate cannot be asked: the
    // runtime is told to try again, and the next GC releases the address.
    let c3 = Netns::new("fgc3");
    fl.run(&fl.env("ADD", "stale2", &c3), &conf).ok();
    std::fs::remove_file(fl.subnet_env()).unwrap();
    let out = fl.run(&fl.env("GC", "", &c1), &gc.to_string());
    assert!(out.err(11).contains("flanneld is not running"), "{out:?}");
    assert_eq!(fl.saved("stale2"), None);
    assert_eq!(fl.reserved().len(), 2);
    fl.write_env("subnet-v4.env");
    fl.run(&fl.env("GC", "", &c1), &gc.to_string()).ok();
    assert_eq!(fl.reserved(), ["10.1.17.2"]);
    fl.run(&fl.env("DEL", "keep", &c1), &conf).ok();
    assert!(fl.reserved().is_empty());
}

// One pod ADD is one process: flannel runs bridge, and bridge runs host-local, in-process.
#[test]
fn delegates_run_in_process() {
    let fl = Fl::new("fp", Some("subnet-v4.env"));
    let ctr = Netns::new("fpc");
    let conf = fl.conf(Some("1.0.0"), json!({}));
    let mut env = fl.env("ADD", "p", &ctr);
    env.extra.push(("RUST_LOG".into(), "weft=debug".into()));
    let out = fl.run(&env, &conf);
    out.ok();
    assert!(
        out.stderr.contains("delegating ADD to bridge in-process")
            && out
                .stderr
                .contains("delegating ADD to host-local in-process"),
        "{}",
        out.stderr
    );
    fl.run(&env.cmd("DEL"), &conf).ok();
}

/// A result with what differs by design (MACs, host veth names, the twin's netns path) blanked.
fn scrub(mut res: Value) -> Value {
    for i in res["interfaces"].as_array_mut().unwrap() {
        i["mac"] = json!("");
        if i.get("sandbox").is_some() {
            i["sandbox"] = json!("");
        }
        if i["name"].as_str().unwrap().starts_with("veth") {
            i["name"] = json!("veth");
        }
    }
    res
}

// The delegate found on CNI_PATH is not weft (Go's bridge and host-local): it is exec'd, and the
// pod gets what it gets from weft's bridge.
#[test]
fn go_bridge_as_exec_delegate_gives_the_same_result() {
    let go_dir = TempDir::new("fgo");
    for name in ["bridge", "host-local"] {
        std::os::unix::fs::symlink(go_plugin(name), go_dir.path().join(name)).unwrap();
    }
    for v in ["0.3.1", "1.0.0"] {
        let (wf, gf) = (
            Fl::new("fwx", Some("subnet-v4.env")),
            Fl::new("fgx", Some("subnet-v4.env")),
        );
        let (wc, gc) = (Netns::new("fwxc"), Netns::new("fgxc"));
        let (wconf, gconf) = (wf.conf(Some(v), json!({})), gf.conf(Some(v), json!({})));
        let wres = wf.run(&wf.env("ADD", "x", &wc), &wconf).ok();
        let mut genv = gf.env("ADD", "x", &gc);
        genv.path = go_dir.path().display().to_string();
        let gres = gf.run(&genv, &gconf).ok();
        assert_eq!(normalise(scrub(wres)), normalise(scrub(gres)), "{v}");
        assert_eq!(addrs(&gc, "eth0", "-4"), addrs(&wc, "eth0", "-4"));
        assert_eq!(routes(&gc, "-4"), routes(&wc, "-4"));
        assert_eq!(link(&gc, "eth0")["mtu"], link(&wc, "eth0")["mtu"]);
        gf.run(&genv.cmd("DEL"), &gconf).ok();
        gf.assert_nothing_left("x", &gc);
        wf.run(&wf.env("DEL", "x", &wc), &wconf).ok();
        wf.assert_nothing_left("x", &wc);
    }
}

#[test]
fn version_about_and_verb_gates() {
    let fl = Fl::new("fx", Some("subnet-v4.env"));
    let ctr = Netns::new("fxc");
    let v = fl.run(&fl.env("VERSION", "", &ctr), "").ok();
    assert_eq!(v["supportedVersions"].as_array().unwrap().len(), 7);
    let mut about = fl.env("", "", &ctr);
    about.unset.push("CNI_COMMAND".into());
    let out = fl.run(&about, "");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.starts_with("CNI flannel plugin weft "),
        "{out:?}"
    );
    let check = fl.conf(Some("0.3.1"), json!({}));
    let out = fl.run(&fl.env("CHECK", "g", &ctr), &check);
    assert_eq!(out.err(1), "config version does not allow CHECK");
    let status = fl.conf(Some("1.0.0"), json!({}));
    let out = fl.run(&fl.env("STATUS", "", &ctr), &status);
    assert_eq!(out.err(1), "config version does not allow STATUS");
    let gc = fl.conf(Some("1.1.0"), json!({}));
    let out = fl.run(&fl.env("GC", "", &ctr), &gc);
    assert!(out.err(7).contains("cni.dev/valid-attachments"), "{out:?}");
}

#[test]
fn del_goes_through_whatever_add_only_keys_the_saved_config_holds() {
    let fl = Fl::new("fk", Some("subnet-v4.env"));
    let ctr = Netns::new("fkc");
    let conf = fl.conf(Some("1.0.0"), json!({}));
    fl.run(&fl.env("ADD", "m1", &ctr), &conf).ok();
    let path = fl.data_dir().join("m1");
    let mut saved: Value = serde_json::from_str(&fl.saved("m1").unwrap()).unwrap();
    saved["mtu"] = json!(65536);
    saved["hairpinMode"] = json!(true);
    saved["promiscMode"] = json!(true);
    std::fs::write(&path, saved.to_string()).unwrap();
    fl.run(&fl.env("DEL", "m1", &ctr), &conf).ok();
    fl.assert_nothing_left("m1", &ctr);
    // A dataDir ADD refuses: ADD saved nothing, so DEL has nothing to do.
    let bad = fl.conf(Some("1.0.0"), json!({"dataDir": 5, "delegate": "x"}));
    let out = fl.run(&fl.env("DEL", "m1", &ctr), &bad);
    out.ok();
    assert!(out.stderr.contains("dataDir"), "{out:?}");
}

#[test]
fn a_subnet_file_that_is_no_file_is_refused_at_once() {
    let fl = Fl::new("fz", None);
    let ctr = Netns::new("fzc");
    let conf = fl.conf(Some("1.0.0"), json!({"subnetFile": "/dev/zero"}));
    let out = fl.run(&fl.env("ADD", "z", &ctr), &conf);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.json()["msg"].as_str().unwrap().contains("a device"),
        "{out:?}"
    );
    fl.assert_nothing_left("z", &ctr);
}
