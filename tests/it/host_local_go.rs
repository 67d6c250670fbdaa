//! host-local against the Go reference: identical results and on-disk layout from twin data
//! dirs, mixed use of one data dir, and 200 concurrent invocations.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

const NETNS: &str = "/some/where";

fn conf(v: &str, data: &Path, ipam: Value) -> String {
    host_local_conf(v, data, ipam, "bridge")
}

fn go(env: &Env, stdin: &str) -> Outcome {
    run(&go_plugin("host-local"), env, stdin)
}

fn ours(env: &Env, stdin: &str) -> Outcome {
    weft_plugin("host-local", env, stdin)
}

fn listing(data: &Path) -> Vec<(String, String)> {
    dir_listing(&data.join("mynet"))
}

fn ips_on_disk(data: &Path) -> BTreeSet<String> {
    reserved_ips(&data.join("mynet")).into_iter().collect()
}

#[test]
fn same_results_and_layout_as_go_for_every_version() {
    for v in GO_VERSIONS {
        let (dw, dg) = (TempDir::new("dw"), TempDir::new("dg"));
        let ipam = json!({
            "ranges": [[{"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.10", "gateway": "10.1.2.1"}],
                       [{"subnet": "2001:db8:1::/64"}]],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "2001:db8:9::/64", "gw": "2001:db8:1::1"}]});
        let steps: Vec<(&str, &str, Value)> = vec![
            ("ADD", "c1", json!({})),
            (
                "ADD",
                "c2",
                json!({"args": {"cni": {"ips": ["10.1.2.50"]}}}),
            ),
            ("ADD", "c3", json!({})),
            ("DEL", "c2", json!({})),
            ("ADD", "c4", json!({})),
            ("ADD", "c1", json!({})),
            ("DEL", "c1", json!({})),
            ("DEL", "c9", json!({})),
        ];
        for (cmd, id, extra) in steps {
            let mut cw: Value = serde_json::from_str(&conf(v, dw.path(), ipam.clone())).unwrap();
            let mut cg: Value = serde_json::from_str(&conf(v, dg.path(), ipam.clone())).unwrap();
            for (k, x) in extra.as_object().unwrap() {
                cw[k] = x.clone();
                cg[k] = x.clone();
            }
            let env = Env::new(cmd, id, NETNS);
            let (a, b) = (ours(&env, &cw.to_string()), go(&env, &cg.to_string()));
            assert_eq!(a.code, b.code, "{v} {cmd} {id}: weft {a:?} go {b:?}");
            if a.code == 0 {
                if cmd == "ADD" {
                    assert_eq!(normalise(a.json()), normalise(b.json()), "{v} {cmd} {id}");
                }
            } else {
                assert_eq!(a.json()["msg"], b.json()["msg"], "{v} {cmd} {id}");
            }
            assert_eq!(
                listing(dw.path()),
                listing(dg.path()),
                "{v} after {cmd} {id}"
            );
        }
    }
}

#[test]
fn go_and_weft_share_one_data_dir() {
    let d = TempDir::new("mix");
    let c = conf("1.0.0", d.path(), json!({"subnet": "10.9.0.0/24"}));
    let add = |go_side: bool, id: &str| {
        let env = Env::new("ADD", id, NETNS);
        let out = if go_side {
            go(&env, &c)
        } else {
            ours(&env, &c)
        };
        out.ok()["ips"][0]["address"].as_str().unwrap().to_string()
    };
    // Alternating allocators continue one round-robin sequence: they read each other's state.
    assert_eq!(add(true, "g1"), "10.9.0.2/24");
    assert_eq!(add(false, "w1"), "10.9.0.3/24");
    assert_eq!(add(true, "g2"), "10.9.0.4/24");
    assert_eq!(add(false, "w2"), "10.9.0.5/24");
    // Each releases what the other reserved.
    ours(&Env::new("DEL", "g1", NETNS), &c).ok();
    go(&Env::new("DEL", "w1", NETNS), &c).ok();
    assert_eq!(
        ips_on_disk(d.path()),
        ["10.9.0.4", "10.9.0.5"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    // Neither hands out an address the other holds.
    let req = |ip: &str| {
        let mut v: Value = serde_json::from_str(&c).unwrap();
        v["args"] = json!({"cni": {"ips": [ip]}});
        v.to_string()
    };
    let msg = ours(&Env::new("ADD", "w3", NETNS), &req("10.9.0.4")).err(999);
    assert!(msg.contains("10.9.0.4 is not available"), "{msg}");
    let msg = go(&Env::new("ADD", "g3", NETNS), &req("10.9.0.5")).err(999);
    assert!(msg.contains("10.9.0.5 is not available"), "{msg}");
    // CHECK of a weft reservation by Go and of a Go reservation by weft.
    go(&Env::new("CHECK", "w2", NETNS), &c).ok();
    ours(&Env::new("CHECK", "g2", NETNS), &c).ok();
}

fn concurrent(n: usize, cmd: &str, c: &str, go_every: Option<usize>) -> Vec<Outcome> {
    let children: Vec<_> = (0..n)
        .map(|i| {
            let env = Env::new(cmd, &format!("ctr-{i}"), NETNS);
            let prog = match go_every {
                Some(k) if i % k == 0 => go_plugin("host-local"),
                _ => bin_dir().join("host-local"),
            };
            spawn(&prog, &env, c)
        })
        .collect();
    children.into_iter().map(finish).collect()
}

#[test]
fn two_hundred_concurrent_adds_then_dels() {
    let d = TempDir::new("conc");
    let c = conf("1.0.0", d.path(), json!({"subnet": "10.77.0.0/22"}));
    let outs = concurrent(200, "ADD", &c, None);
    let addrs: BTreeSet<String> = outs
        .iter()
        .map(|o| o.ok()["ips"][0]["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(addrs.len(), 200, "every ADD got a distinct address");
    let on_disk = ips_on_disk(d.path());
    assert_eq!(on_disk.len(), 200);
    let from_results: BTreeSet<String> = addrs
        .iter()
        .map(|a| a.split('/').next().unwrap().to_string())
        .collect();
    assert_eq!(on_disk, from_results);
    for (name, content) in listing(d.path()) {
        if name.parse::<std::net::IpAddr>().is_ok() {
            assert!(
                content.starts_with("ctr-") && content.ends_with("\r\neth0"),
                "{content:?}"
            );
        }
        assert!(
            !name.starts_with(".weft-tmp"),
            "temporary file left: {name}"
        );
    }
    for o in concurrent(200, "DEL", &c, None) {
        o.ok();
    }
    assert!(
        ips_on_disk(d.path()).is_empty(),
        "DELs leave no reservation"
    );
}

#[test]
fn concurrent_go_and_weft_never_share_an_address() {
    let d = TempDir::new("concmix");
    let c = conf("1.0.0", d.path(), json!({"subnet": "10.78.0.0/24"}));
    let outs = concurrent(120, "ADD", &c, Some(2));
    let addrs: BTreeSet<String> = outs
        .iter()
        .map(|o| o.ok()["ips"][0]["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(addrs.len(), 120);
    assert_eq!(ips_on_disk(d.path()).len(), 120);
    for o in concurrent(120, "DEL", &c, Some(3)) {
        o.ok();
    }
    assert!(ips_on_disk(d.path()).is_empty());
}
