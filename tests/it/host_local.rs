//! host-local, black-box: the reference test cases, every cniVersion, GC, and bad input.

use crate::common::*;
use serde_json::{json, Value};
use std::path::Path;

const NETNS: &str = "/some/where";

fn conf(v: &str, data: &Path, ipam: Value) -> String {
    host_local_conf(v, data, ipam, "ipvlan")
}

fn hl(env: &Env, stdin: &str) -> Outcome {
    weft_plugin("host-local", env, stdin)
}

fn files(data: &Path) -> Vec<(String, String)> {
    dir_listing(&data.join("mynet"))
}

fn reservations(data: &Path) -> Vec<String> {
    reserved_ips(&data.join("mynet"))
}

#[test]
fn add_del_every_version_dual_stack() {
    for v in VERSIONS {
        let d = TempDir::new("hl");
        let resolv = d.path().join("resolv.conf");
        std::fs::write(&resolv, "nameserver 192.0.2.3\nsearch example.com\n").unwrap();
        let ranges = if v < "0.3.0" {
            json!([[{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8:1::/64"}]])
        } else {
            json!([[{"subnet": "10.1.2.0/24"}, {"subnet": "10.2.2.0/24"}], [{"subnet": "2001:db8:1::/64"}]])
        };
        let c = conf(
            v,
            d.path(),
            json!({"ranges": ranges, "resolvConf": resolv.display().to_string(),
                "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}, {"dst": "192.168.0.0/16", "gw": "1.1.1.1"},
                           {"dst": "2001:db8:2::0/64", "gw": "2001:db8:3::1"}]}),
        );
        let env = Env::new("ADD", "dummy", NETNS);
        let res = hl(&env, &c).ok();
        assert_eq!(res["cniVersion"], v);
        if v < "0.3.0" {
            assert_eq!(res["ip4"]["ip"], "10.1.2.2/24", "{v}: {res}");
            assert_eq!(res["ip4"]["gateway"], "10.1.2.1");
            assert_eq!(res["ip6"]["ip"], "2001:db8:1::2/64");
            assert_eq!(res["ip4"]["routes"].as_array().unwrap().len(), 2);
            assert_eq!(res["ip6"]["routes"].as_array().unwrap().len(), 2);
        } else {
            assert_eq!(res["ips"][0]["address"], "10.1.2.2/24", "{v}: {res}");
            assert_eq!(res["ips"][0]["gateway"], "10.1.2.1");
            assert_eq!(res["ips"][1]["address"], "2001:db8:1::2/64");
            assert_eq!(res["ips"][1]["gateway"], "2001:db8:1::1");
            assert!(
                res["ips"][0].get("interface").is_none(),
                "IPAM results have no interface"
            );
            assert_eq!(
                res["ips"][0].get("version").is_some(),
                v.starts_with('0'),
                "{v}"
            );
            assert_eq!(res["routes"].as_array().unwrap().len(), 4);
        }
        assert_eq!(res["dns"]["nameservers"], json!(["192.0.2.3"]));
        assert_eq!(res["dns"]["search"], json!(["example.com"]));
        let f = files(d.path());
        let get = |n: &str| f.iter().find(|(k, _)| k == n).map(|(_, c)| c.clone());
        assert_eq!(get("10.1.2.2").as_deref(), Some("dummy\r\neth0"));
        assert_eq!(get("2001:db8:1::2").as_deref(), Some("dummy\r\neth0"));
        assert_eq!(get("last_reserved_ip.0").as_deref(), Some("10.1.2.2"));
        assert_eq!(get("last_reserved_ip.1").as_deref(), Some("2001:db8:1::2"));
        if v >= "0.4.0" {
            hl(&env.cmd("CHECK"), &c).ok();
        }
        hl(&env.cmd("DEL"), &c).ok();
        assert!(reservations(d.path()).is_empty(), "{v}");
        if v >= "0.4.0" {
            let msg = hl(&env.cmd("CHECK"), &c).err(999);
            assert_eq!(
                msg,
                "host-local: Failed to find address added by container dummy"
            );
        }
        hl(&env.cmd("DEL"), &c).ok();
    }
}

#[test]
fn old_versions_reject_two_sets_of_one_family() {
    for v in ["0.1.0", "0.2.0"] {
        let d = TempDir::new("hl02");
        let c = conf(
            v,
            d.path(),
            json!({"ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.2.2.0/24"}]]}),
        );
        let msg = hl(&Env::new("ADD", "dummy", NETNS), &c).err(7);
        assert_eq!(
            msg,
            format!("CNI version {v} does not support more than 1 address per family")
        );
        assert!(!d.path().join("mynet").exists(), "nothing on disk");
    }
}

#[test]
fn same_id_two_networks_and_ifnames() {
    let d = TempDir::new("hl2");
    let c1 = conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/24"}));
    let c2 = c1.replace("\"mynet\"", "\"othernet\"");
    let mut e0 = Env::new("ADD", "dummy", NETNS);
    let mut e1 = e0.clone();
    e1.ifname = "eth1".into();
    hl(&e0, &c1).ok();
    hl(&e1, &c2).ok();
    assert_eq!(
        std::fs::read_to_string(d.path().join("othernet/10.1.2.2")).unwrap(),
        "dummy\r\neth1"
    );
    e0.command = "DEL".into();
    hl(&e0, &c1).ok();
    assert!(reservations(d.path()).is_empty());
    assert!(d.path().join("othernet/10.1.2.2").exists());
}

#[test]
fn duplicate_add_fails_and_others_get_next_address() {
    let d = TempDir::new("hl3");
    let c = conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/24"}));
    hl(&Env::new("ADD", "dummy", NETNS), &c).ok();
    let msg = hl(&Env::new("ADD", "dummy", NETNS), &c).err(999);
    assert_eq!(
        msg,
        "failed to allocate for range 0: 10.1.2.2 has been allocated to dummy, duplicate allocation is not allowed"
    );
    let res = hl(&Env::new("ADD", "other", NETNS), &c).ok();
    assert_eq!(res["ips"][0]["address"], "10.1.2.3/24");
    assert_eq!(reservations(d.path()).len(), 2);
    hl(&Env::new("DEL", "dummy", NETNS), &c).ok();
    hl(&Env::new("DEL", "other", NETNS), &c).ok();
    assert!(reservations(d.path()).is_empty());
}

#[test]
fn legacy_id_only_file_and_unknown_id() {
    let d = TempDir::new("hl4");
    let c = conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/24"}));
    std::fs::create_dir_all(d.path().join("mynet")).unwrap();
    std::fs::write(d.path().join("mynet/10.1.2.2"), "dummy").unwrap();
    // The legacy holder blocks a second dynamic allocation for the same id...
    assert!(hl(&Env::new("ADD", "dummy", NETNS), &c)
        .err(999)
        .contains("duplicate allocation"));
    hl(&Env::new("DEL", "dummy", NETNS), &c).ok();
    assert!(reservations(d.path()).is_empty());
    hl(&Env::new("DEL", "never-seen", NETNS), &c).ok();
}

#[test]
fn requested_ips() {
    let d = TempDir::new("hl5");
    let c = |extra: Value| {
        let mut v: Value = serde_json::from_str(&conf(
            "1.0.0",
            d.path(),
            json!({"ranges": [[{"subnet": "10.1.2.0/24"}, {"subnet": "10.1.3.0/24"}],
                              [{"subnet": "2001:db8:1::/48"}]]}),
        ))
        .unwrap();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v.to_string()
    };
    let res = hl(
        &Env::new("ADD", "a", NETNS),
        &c(json!({"args": {"cni": {"ips": ["10.1.2.88", "2001:db8:1::999"]}}})),
    )
    .ok();
    assert_eq!(res["ips"][0]["address"], "10.1.2.88/24");
    assert_eq!(res["ips"][1]["address"], "2001:db8:1::999/48");
    let res = hl(
        &Env::new("ADD", "b", NETNS),
        &c(json!({"runtimeConfig": {"ips": ["10.1.3.77/24"]}})),
    )
    .ok();
    assert_eq!(res["ips"][0]["address"], "10.1.3.77/24");
    let mut e = Env::new("ADD", "c", NETNS);
    e.args = "IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.1.2.10".into();
    let res = hl(&e, &c(json!({}))).ok();
    assert_eq!(res["ips"][0]["address"], "10.1.2.10/24");
    // Two requested IPs in one set: the leftover fails the whole ADD, which leaves nothing behind.
    let before = reservations(d.path());
    let msg = hl(
        &Env::new("ADD", "d", NETNS),
        &c(json!({"args": {"cni": {"ips": ["10.1.2.91", "10.1.3.92"]}}})),
    )
    .err(999);
    assert!(
        msg.starts_with("failed to allocate all requested IPs: 10.1."),
        "{msg}"
    );
    assert_eq!(reservations(d.path()), before);
    // A requested IP that is already taken, or outside every range.
    let msg = hl(
        &Env::new("ADD", "e", NETNS),
        &c(json!({"args": {"cni": {"ips": ["10.1.2.88"]}}})),
    )
    .err(999);
    assert!(msg.contains("requested IP address 10.1.2.88 is not available in range set 10.1.2.1-10.1.2.254,10.1.3.1-10.1.3.254"), "{msg}");
    let msg = hl(
        &Env::new("ADD", "e", NETNS),
        &c(json!({"args": {"cni": {"ips": ["172.16.0.5"]}}})),
    )
    .err(999);
    assert!(
        msg.starts_with("failed to allocate all requested IPs: 172.16.0.5"),
        "{msg}"
    );
    assert!(
        !files(d.path()).iter().any(|(_, c)| c.starts_with("e\r\n")),
        "e holds nothing"
    );
}

#[test]
fn gc_releases_only_invalid_attachments() {
    let d = TempDir::new("hlgc");
    let c = conf("1.1.0", d.path(), json!({"subnet": "10.1.2.0/24"}));
    for id in ["keep", "drop1", "drop2"] {
        hl(&Env::new("ADD", id, NETNS), &c).ok();
    }
    std::fs::write(d.path().join("mynet/10.1.2.200"), "legacy-drop").unwrap();
    let mut gc: Value = serde_json::from_str(&c).unwrap();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    let mut env = Env::new("GC", "", "");
    env.ifname = String::new();
    hl(&env, &gc.to_string()).ok();
    let left: Vec<(String, String)> = files(d.path())
        .into_iter()
        .filter(|(n, _)| n.parse::<std::net::IpAddr>().is_ok())
        .collect();
    assert_eq!(left, [("10.1.2.2".to_string(), "keep\r\neth0".to_string())]);
    // GC below 1.1.0 is refused by the version gate; GC without the list is refused outright.
    let old = conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/24"}));
    assert_eq!(hl(&env, &old).err(1), "config version does not allow GC");
    assert!(hl(&env, &c).err(7).contains("valid-attachments"));
    assert_eq!(reservations(d.path()).len(), 1);
}

#[test]
fn exhausted_range_leaves_nothing_new() {
    let d = TempDir::new("hlfull");
    let c = conf("1.0.0", d.path(), json!({"subnet": "192.168.1.0/29"}));
    for i in 0..5 {
        hl(&Env::new("ADD", &format!("c{i}"), NETNS), &c).ok();
    }
    let before = files(d.path());
    let msg = hl(&Env::new("ADD", "c9", NETNS), &c).err(999);
    assert_eq!(
        msg,
        "failed to allocate for range 0: no IP addresses available in range set: 192.168.1.1-192.168.1.6"
    );
    assert_eq!(files(d.path()), before);
}

#[test]
fn bad_input_is_refused_and_leaves_nothing_on_disk() {
    let d = TempDir::new("hlbad");
    let env = Env::new("ADD", "c1", NETNS);
    let cases: Vec<(Env, String, u64, &str)> = vec![
        (
            env.clone(),
            "{\"cniVersion\":".into(),
            6,
            "error unmarshall network config",
        ),
        (
            env.clone(),
            conf("7.7.7", d.path(), json!({"subnet": "10.1.2.0/24"})),
            1,
            "incompatible CNI versions",
        ),
        (
            env.clone(),
            conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/24"}))
                .replace("\"mynet\"", "\"../x\""),
            7,
            "invalid characters found in network name",
        ),
        (
            env.clone(),
            conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/24"})).replace("\"mynet\"", "\"/\""),
            7,
            "invalid characters found in network name",
        ),
        (
            Env {
                container_id: "../x".into(),
                ..env.clone()
            },
            conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/24"})),
            4,
            "invalid characters in containerID",
        ),
        (
            Env {
                container_id: "/".into(),
                ..env.clone()
            },
            conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/24"})),
            4,
            "invalid characters in containerID",
        ),
        (
            env.clone(),
            conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/33"})),
            7,
            "invalid range set 0: invalid CIDR address: 10.1.2.0/33",
        ),
        (
            env.clone(),
            conf("1.0.0", d.path(), json!({"subnet": "not-a-cidr"})),
            7,
            "invalid range set 0: invalid CIDR address: not-a-cidr",
        ),
        (
            env.clone(),
            conf("1.0.0", d.path(), json!({})),
            7,
            "no IP ranges specified",
        ),
        (
            Env {
                args: "FOO=bar".into(),
                ..env.clone()
            },
            conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/24"})),
            4,
            "ARGS: unknown args [\"FOO=bar\"]",
        ),
    ];
    for (env, stdin, code, msg) in cases {
        let got = hl(&env, &stdin).err(code);
        assert_eq!(got, msg, "{stdin}");
    }
    let mut e = env.clone();
    e.unset = vec!["CNI_CONTAINERID".into(), "CNI_IFNAME".into()];
    let got = hl(
        &e,
        &conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/24"})),
    )
    .err(4);
    assert_eq!(
        got,
        "required env variables [CNI_CONTAINERID,CNI_IFNAME] missing"
    );
    let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "bad input must leave nothing on disk: {left:?}"
    );
}

/// A FIFO as CNI_NETNS must not hang any plugin (opening a FIFO for reading waits for a
/// writer): ADD answers with an error (host-local, which never enters it, succeeds) and DEL
/// finishes, each well within the timeout.
#[test]
fn a_fifo_as_netns_hangs_no_plugin() {
    // The plugins run inside a namespace of the test's own, so the bridge that bridge's ADD
    // makes before it opens CNI_NETNS is not made on the machine.
    let host = Netns::new("fifohost");
    let d = TempDir::new("fifo");
    let fifo = d.path().join("netns");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let fifo = fifo.to_str().unwrap();
    let ipam = json!({"type": "host-local", "dataDir": d.path().join("data"),
        "ranges": [[{"subnet": "10.93.7.0/24"}]]});
    for plugin in ["host-local", "bridge", "ptp", "loopback"] {
        let stdin = match plugin {
            "host-local" => conf(
                "1.0.0",
                &d.path().join("data"),
                json!({"ranges": [[{"subnet": "10.93.7.0/24"}]]}),
            ),
            "loopback" => {
                json!({"cniVersion": "1.0.0", "name": "mynet", "type": "loopback"}).to_string()
            }
            _ => json!({"cniVersion": "1.0.0", "name": "mynet", "type": plugin, "ipam": ipam})
                .to_string(),
        };
        for command in ["ADD", "DEL"] {
            let env = Env::new(command, "fifo1", fifo);
            let o = finish(spawn_with(
                &["ip", "netns", "exec", &host.name, "timeout", "10"],
                &bin_dir().join(plugin),
                &env,
                &stdin,
            ));
            assert_ne!(
                o.code, 124,
                "{plugin} {command} hung on a FIFO netns: {o:?}"
            );
            // host-local never enters the namespace, so for it not hanging is the whole test.
            if command == "ADD" && plugin != "host-local" {
                assert_eq!(o.code, 1, "{plugin}: {o:?}");
                assert!(o.stdout.contains("unknown FS magic"), "{plugin}: {o:?}");
            }
        }
    }
}

#[test]
fn del_releases_even_when_the_ranges_no_longer_parse() {
    let d = TempDir::new("hd");
    let good = conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/24"}));
    let env = Env::new("ADD", "d1", NETNS);
    hl(&env, &good).ok();
    assert_eq!(reservations(d.path()), ["10.1.2.2"]);
    for ipam in [
        json!({"subnet": "10.1.2.0/33"}),
        json!({"ranges": "x"}),
        json!({"routes": [{"dst": "nope"}]}),
    ] {
        let broken = conf("1.0.0", d.path(), ipam);
        hl(&env.cmd("DEL"), &broken).ok();
        assert!(reservations(d.path()).is_empty());
    }
}

#[test]
fn store_errors_keep_their_cause() {
    // A symlinked round-robin pointer: refused (O_NOFOLLOW), and the message says why.
    let d = TempDir::new("he");
    let c = conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/24"}));
    let net = d.path().join("mynet");
    std::fs::create_dir_all(&net).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", net.join("last_reserved_ip.0")).unwrap();
    let msg = hl(&Env::new("ADD", "e1", NETNS), &c).err(999);
    assert!(
        msg.starts_with("failed to allocate for range 0: failed to write")
            && msg.contains("symbolic links"),
        "{msg}"
    );
    assert!(reservations(d.path()).is_empty());

    // A data directory out of inodes (a tmpfs in a mount namespace of the plugin's own).
    let full = TempDir::new("hf");
    let c = conf("1.0.0", full.path(), json!({"subnet": "10.1.2.0/24"}));
    let mount = format!(
        "mount -t tmpfs -o nr_inodes=4 weft-test {} && exec \"$0\"",
        full.path().display()
    );
    let child = spawn_with(
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &mount,
        ],
        &bin_dir().join("host-local"),
        &Env::new("ADD", "e2", NETNS),
        &c,
    );
    let msg = finish(child).err(999);
    assert!(msg.contains("No space left on device"), "{msg}");
}

#[test]
fn a_resolv_conf_that_is_no_file_is_refused_at_once() {
    let d = TempDir::new("hr");
    let fifo = d.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for (path, what) in [
        ("/dev/zero", "a device"),
        (fifo.to_str().unwrap(), "a FIFO"),
    ] {
        let c = conf(
            "1.0.0",
            d.path(),
            json!({"subnet": "10.1.2.0/24", "resolvConf": path}),
        );
        let o = finish(spawn_with(
            &["timeout", "10"],
            &bin_dir().join("host-local"),
            &Env::new("ADD", "r1", NETNS),
            &c,
        ));
        assert_ne!(o.code, 124, "hung on {path}: {o:?}");
        let msg = o.err(999);
        assert!(
            msg.contains("failed to read") && msg.contains(what),
            "{msg}"
        );
        assert!(reservations(d.path()).is_empty());
    }
}

/// A config of tens of megabytes, nearly all of it keys host-local never reads (a runtime's
/// annotations, say), under an address-space limit a few times its size: the plugin keeps
/// only the keys it reads, so it fits where a tree of the whole document would not.
#[test]
fn a_huge_config_is_parsed_without_copies_of_its_tree() {
    let d = TempDir::new("hh");
    let junk: Vec<Value> = (0..400_000)
        .map(|i| json!({"key": format!("{i:040}"), "n": i}))
        .collect();
    let mut c: Value =
        serde_json::from_str(&conf("1.0.0", d.path(), json!({"subnet": "10.1.2.0/24"}))).unwrap();
    c["annotations"] = Value::from(junk);
    let c = c.to_string();
    assert!(c.len() > 20_000_000, "{}", c.len());
    let limited = "ulimit -v 200000 && exec \"$0\"";
    for command in ["ADD", "DEL"] {
        let o = finish(spawn_with(
            &["sh", "-c", limited],
            &bin_dir().join("host-local"),
            &Env::new(command, "h1", NETNS),
            &c,
        ));
        assert_eq!(o.code, 0, "{command}: {}", o.stderr);
    }
    assert!(reservations(d.path()).is_empty());
}
