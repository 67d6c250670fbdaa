//! loopback, black-box: every cniVersion, side by side with the Go plugin, and the edge cases.

use crate::common::*;
use serde_json::{json, Value};

fn conf(v: &str) -> String {
    json!({"cniVersion": v, "name": "lo-net", "type": "loopback"}).to_string()
}

#[test]
fn add_check_del_every_version() {
    for v in VERSIONS {
        let ns = Netns::new("lo");
        assert!(!ns.lo_up(), "a new namespace starts with lo down");
        let env = Env::new("ADD", "c1", &ns.path());
        let res = weft_plugin("loopback", &env, &conf(v)).ok();
        assert_eq!(res["cniVersion"], v);
        assert!(ns.lo_up(), "{v}: lo must be up after ADD");
        match v {
            "0.1.0" | "0.2.0" => {
                assert_eq!(res["ip4"]["ip"], "127.0.0.1/8", "{v}: {res}");
                assert_eq!(res["ip6"]["ip"], "::1/128", "{v}: {res}");
                assert!(res.get("interfaces").is_none());
            }
            _ => {
                assert_eq!(res["interfaces"][0]["name"], "lo");
                assert_eq!(res["interfaces"][0]["mac"], "00:00:00:00:00:00");
                assert_eq!(res["interfaces"][0]["sandbox"], ns.path());
                assert_eq!(res["ips"][0]["address"], "127.0.0.1/8");
                assert_eq!(res["ips"][0]["interface"], 0);
                assert_eq!(res["ips"][1]["address"], "::1/128");
                let has_version = res["ips"][0].get("version").is_some();
                assert_eq!(has_version, v.starts_with('0'), "{v}: {res}");
            }
        }
        let check = weft_plugin("loopback", &env.cmd("CHECK"), &conf(v));
        if v >= "0.4.0" {
            check.ok();
        } else {
            assert_eq!(check.err(1), "config version does not allow CHECK");
        }
        weft_plugin("loopback", &env.cmd("DEL"), &conf(v)).ok();
        assert!(!ns.lo_up(), "{v}: lo must be down after DEL");
        if v >= "0.4.0" {
            let msg = weft_plugin("loopback", &env.cmd("CHECK"), &conf(v)).err(999);
            assert_eq!(msg, "loopback interface is down");
        }
        if v == "1.1.0" {
            weft_plugin("loopback", &env.cmd("STATUS"), &conf(v)).ok();
            weft_plugin("loopback", &env.cmd("GC"), &conf(v)).ok();
        } else {
            let msg = weft_plugin("loopback", &env.cmd("STATUS"), &conf(v)).err(1);
            assert_eq!(msg, "config version does not allow STATUS");
        }
    }
}

/// Go's loopback relabels its 1.x result instead of converting it; for 1.0.0 both must agree
/// exactly, for 0.3.x/0.4.0 they agree once `ips[].version` (which Go forgets) is set aside, and
/// for 0.1.0/0.2.0 weft's proper old shape carries the same addresses.
#[test]
fn same_result_and_state_as_go() {
    for v in GO_VERSIONS {
        let (a, b) = (Netns::new("lw"), Netns::new("lg"));
        let ours = weft_plugin("loopback", &Env::new("ADD", "c1", &a.path()), &conf(v)).ok();
        let theirs = run(
            &go_plugin("loopback"),
            &Env::new("ADD", "c1", &b.path()),
            &conf(v),
        )
        .ok();
        assert_eq!(a.lo_up(), b.lo_up());
        assert_eq!(
            a.ip(&["-br", "addr", "show", "lo"]),
            b.ip(&["-br", "addr", "show", "lo"])
        );
        let strip = |mut r: Value| {
            if let Some(ifs) = r["interfaces"].as_array_mut() {
                for i in ifs {
                    i.as_object_mut().unwrap().remove("sandbox");
                }
            }
            if let Some(ips) = r["ips"].as_array_mut() {
                for ip in ips {
                    ip.as_object_mut().unwrap().remove("version");
                }
            }
            normalise(r)
        };
        match v {
            "0.1.0" | "0.2.0" => {
                assert_eq!(ours["ip4"]["ip"], theirs["ips"][0]["address"], "{v}");
                assert_eq!(ours["ip6"]["ip"], theirs["ips"][1]["address"], "{v}");
            }
            _ => assert_eq!(strip(ours), strip(theirs), "{v}"),
        }
        weft_plugin("loopback", &Env::new("DEL", "c1", &a.path()), &conf(v)).ok();
        run(
            &go_plugin("loopback"),
            &Env::new("DEL", "c1", &b.path()),
            &conf(v),
        )
        .ok();
        assert_eq!(a.lo_up(), b.lo_up());
        assert!(!a.lo_up());
    }
}

#[test]
fn del_succeeds_without_a_namespace() {
    let env = Env::new("DEL", "c1", "");
    weft_plugin("loopback", &env, &conf("1.0.0")).ok();
    let env = Env::new("DEL", "c1", "/run/netns/wt-does-not-exist");
    weft_plugin("loopback", &env, &conf("1.0.0")).ok();
    // An existing path that is not a namespace is an error, not silence.
    let d = TempDir::new("notns");
    let f = d.path().join("file");
    std::fs::write(&f, "x").unwrap();
    let env = Env::new("DEL", "c1", f.to_str().unwrap());
    weft_plugin("loopback", &env, &conf("1.0.0")).err(999);
}

#[test]
fn refuses_its_own_namespace_before_acting() {
    let ns = Netns::new("own");
    // The plugin runs inside `ns` and is told to configure `ns`: it must refuse and leave lo down.
    let env = Env::new("ADD", "c1", &ns.path());
    let child = spawn_with(
        &["ip", "netns", "exec", &ns.name],
        &bin_dir().join("loopback"),
        &env,
        &conf("1.0.0"),
    );
    let out = finish(child);
    out.err(8);
    assert!(!ns.lo_up(), "nothing may be touched");
    // CNI_NETNS_OVERRIDE=1 is the Go harness's escape hatch.
    let mut env = env.clone();
    env.extra.push(("CNI_NETNS_OVERRIDE".into(), "1".into()));
    let child = spawn_with(
        &["ip", "netns", "exec", &ns.name],
        &bin_dir().join("loopback"),
        &env,
        &conf("1.0.0"),
    );
    finish(child).ok();
    assert!(ns.lo_up());
}

#[test]
fn non_loopback_address_on_lo_is_an_error() {
    let ns = Netns::new("lobad");
    ns.ip(&["addr", "add", "192.0.2.1/32", "dev", "lo"]);
    let out = weft_plugin(
        "loopback",
        &Env::new("ADD", "c1", &ns.path()),
        &conf("1.0.0"),
    );
    let msg = out.err(999);
    assert_eq!(
        msg,
        "loopback interface found with non-loopback address \"192.0.2.1/32\""
    );
}

#[test]
fn prev_result_is_passed_through_converted() {
    let ns = Netns::new("loprev");
    let prev = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": ns.path()}],
        "ips": [{"interface": 0, "address": "10.0.0.5/24", "gateway": "10.0.0.1"}]});
    let c = json!({"cniVersion": "1.0.0", "name": "n", "type": "loopback", "prevResult": prev});
    let res = weft_plugin(
        "loopback",
        &Env::new("ADD", "c1", &ns.path()),
        &c.to_string(),
    )
    .ok();
    assert_eq!(res, prev);
    assert!(ns.lo_up());
    // A prevResult from another version family is rejected (and lo is not touched).
    let ns2 = Netns::new("loprev2");
    let mut c2 = c.clone();
    c2["prevResult"]["cniVersion"] = json!("0.4.0");
    let out = weft_plugin(
        "loopback",
        &Env::new("ADD", "c1", &ns2.path()),
        &c2.to_string(),
    );
    assert!(out.err(6).contains("result type supports"));
    assert!(!ns2.lo_up());
}

#[test]
fn bad_input_gets_spec_errors() {
    let ns = Netns::new("lobadin");
    let env = Env::new("ADD", "c1", &ns.path());
    assert_eq!(
        weft_plugin("loopback", &env, "{not json").err(6),
        "error unmarshall network config"
    );
    assert_eq!(
        weft_plugin("loopback", &env, &conf("9.9.9")).err(1),
        "incompatible CNI versions"
    );
    assert_eq!(
        weft_plugin("loopback", &env, r#"{"cniVersion":"1.0.0"}"#).err(7),
        "missing network name"
    );
    let mut e = env.clone();
    e.unset.push("CNI_NETNS".into());
    e.unset.push("CNI_PATH".into());
    assert_eq!(
        weft_plugin("loopback", &e, &conf("1.0.0")).err(4),
        "required env variables [CNI_NETNS,CNI_PATH] missing"
    );
    let mut e = env.clone();
    e.ifname = "this is ignored".into();
    weft_plugin("loopback", &e, &conf("1.0.0")).err(4);
    let mut e = env.clone();
    e.container_id = "../escape".into();
    assert_eq!(
        weft_plugin("loopback", &e, &conf("1.0.0")).err(4),
        "invalid characters in containerID"
    );
    assert_eq!(
        weft_plugin("loopback", &env.cmd("BOGUS"), &conf("1.0.0")).err(4),
        "unknown CNI_COMMAND: BOGUS"
    );
    assert!(!ns.lo_up(), "no failed call may have touched the namespace");
    // No CNI_COMMAND: the about text on stderr, exit 0.
    let mut e = env.clone();
    e.unset.push("CNI_COMMAND".into());
    let out = weft_plugin("loopback", &e, "");
    assert_eq!(out.code, 0);
    assert!(
        out.stderr
            .contains("CNI protocol versions supported: 0.1.0, 0.2.0"),
        "{out:?}"
    );
}
