//! Delegation from the library: in-process when the plugin on CNI_PATH is this very binary,
//! exec otherwise (weft's own applet, the Go plugin, a script), with the spec's env and stdin.

use crate::common::*;
use serde_json::json;
use std::os::unix::fs::{symlink, PermissionsExt};
use weft::cni::delegate;
use weft::cni::{CmdArgs, Code, Command};

fn args(path: &str, stdin: &str) -> CmdArgs {
    CmdArgs {
        command: Command::Add,
        container_id: "dctr".into(),
        netns: "/some/where".into(),
        ifname: "eth7".into(),
        args: String::new(),
        path: path.into(),
        netns_override: false,
        depth: 0,
        stdin: stdin.as_bytes().to_vec(),
    }
}

#[test]
fn delegation_in_process_and_by_exec() {
    let d = TempDir::new("deleg");
    let data = TempDir::new("delegip");
    let conf_in = json!({"cniVersion": "1.0.0", "name": "dnet", "type": "bridge",
        "ipam": {"type": "host-local", "subnet": "10.3.0.0/16", "dataDir": data.path()}})
    .to_string();

    // 1. The plugin on CNI_PATH is this test binary itself, under a plugin's name: it must run
    // in-process (exec'd, the test harness would answer, which is no CNI result).
    let me = std::env::current_exe().unwrap();
    symlink(&me, d.path().join("host-local")).unwrap();
    let a = args(d.path().to_str().unwrap(), &conf_in);
    let res = delegate::add("host-local", conf_in.as_bytes(), &a, "1.0.0").unwrap();
    assert_eq!(res.ips[0].address.to_string(), "10.3.0.2/16");
    let old = conf_in.replace("1.0.0", "0.3.1");
    let err = delegate::call("host-local", Command::Check, old.as_bytes(), &a).unwrap_err();
    let e = weft::cni::Error::from_anyhow(&err);
    assert_eq!(
        e.code,
        Code::IncompatibleVersion,
        "the typed error, in-process"
    );
    delegate::call("host-local", Command::Del, conf_in.as_bytes(), &a).unwrap();

    // 2. A script plugin: exec'd with the whole env, CNI_COMMAND set to the verb, exact stdin.
    let seen = d.path().join("seen");
    let script = d.path().join("script-ipam");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat > {seen}.stdin\nenv | grep ^CNI_ | sort > {seen}.env\n\
             echo '{{\"ips\":[{{\"address\":\"10.4.0.2/24\"}}]}}'\n",
            seen = seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let a = args(d.path().to_str().unwrap(), &conf_in);
    let res = delegate::add("script-ipam", b"{\"exact\": \"bytes\"}", &a, "1.0.0").unwrap();
    assert_eq!(
        res.ips[0].address.to_string(),
        "10.4.0.2/24",
        "missing cniVersion fixed up"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{}.stdin", seen.display())).unwrap(),
        "{\"exact\": \"bytes\"}"
    );
    let env = std::fs::read_to_string(format!("{}.env", seen.display())).unwrap();
    for line in [
        "CNI_COMMAND=ADD",
        "CNI_CONTAINERID=dctr",
        "CNI_IFNAME=eth7",
        "CNI_NETNS=/some/where",
        &format!("CNI_PATH={}", d.path().display()),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} not in {env}");
    }

    // 3. A failing plugin with nothing on stdout.
    std::fs::write(&script, "#!/bin/sh\necho oops >&2\nexit 3\n").unwrap();
    let err = delegate::add("script-ipam", b"{}", &a, "1.0.0")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("netplugin failed: \"oops\""), "{err}");

    // 4. weft's own host-local, exec'd (a different binary from this test), then the Go one.
    let data = TempDir::new("delegdata");
    let hl_conf = json!({"cniVersion": "1.0.0", "name": "dnet", "type": "bridge",
        "ipam": {"type": "host-local", "subnet": "10.5.0.0/24", "dataDir": data.path()}})
    .to_string();
    let path = format!("{}:{}", bin_dir().display(), GO_DIR);
    let a = args(&path, &hl_conf);
    let res = delegate::add("host-local", hl_conf.as_bytes(), &a, "1.0.0").unwrap();
    assert_eq!(res.ips[0].address.to_string(), "10.5.0.2/24");
    delegate::call("host-local", Command::Check, hl_conf.as_bytes(), &a).unwrap();
    delegate::call("host-local", Command::Del, hl_conf.as_bytes(), &a).unwrap();
    let a = args(GO_DIR, &hl_conf);
    let res = delegate::add("host-local", hl_conf.as_bytes(), &a, "1.0.0").unwrap();
    assert_eq!(
        res.ips[0].address.to_string(),
        "10.5.0.3/24",
        "Go continued weft's round robin"
    );
    // The Go plugin's error object comes back typed, code intact.
    let old = hl_conf.replace("1.0.0", "0.3.1");
    let err = delegate::call("host-local", Command::Check, old.as_bytes(), &a).unwrap_err();
    let e = weft::cni::Error::from_anyhow(&err);
    assert_eq!(
        (e.code, e.msg.as_str()),
        (
            Code::IncompatibleVersion,
            "config version does not allow CHECK"
        )
    );
    delegate::call("host-local", Command::Del, hl_conf.as_bytes(), &a).unwrap();
    let err = delegate::add("nope", b"{}", &a, "1.0.0")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("failed to find plugin \"nope\""), "{err}");
}

/// A plugin that names itself as its IPAM type ends with the spec's error JSON, in-process (the
/// applet symlinks) and exec'd (a copy of the binary, another inode), instead of recursing
/// until the stack (it overflowed) or the process table runs out.
#[test]
fn a_plugin_naming_itself_as_ipam_is_stopped() {
    let ns = Netns::new("selfipam");
    // The plugins run in a "host" namespace of the test's own: bridge makes cni0 there.
    let host = Netns::new("selfhost");
    let copy = TempDir::new("selfipam");
    for plugin in ["ptp", "bridge"] {
        std::fs::copy(weft(), copy.path().join(plugin)).unwrap();
    }
    for dir in [bin_dir(), copy.path()] {
        for plugin in ["ptp", "bridge"] {
            let stdin = json!({"cniVersion": "1.0.0", "name": "selfnet", "type": plugin,
                "ipam": {"type": plugin}})
            .to_string();
            let mut env = Env::new("ADD", "selfipam1", &ns.path());
            env.path = dir.display().to_string();
            let o = finish(spawn_with(
                &["ip", "netns", "exec", &host.name],
                &dir.join(plugin),
                &env,
                &stdin,
            ));
            if plugin == "ptp" {
                let msg = o.err(7);
                assert!(msg.contains("nested 9 deep"), "{plugin} in {dir:?}: {o:?}");
            } else {
                // bridge makes the pair before IPAM, as the reference does, so the nested
                // bridge finds eth0 taken and fails first, as Go's bridge would.
                assert_eq!(o.code, 1, "{plugin} in {dir:?}: {o:?}");
                assert!(o.json()["code"].is_u64(), "{o:?}");
            }
            assert_eq!(ns.link_names(), ["lo"], "{plugin}: something was left");
        }
    }
}

#[test]
fn a_self_naming_chain_under_flannel_leaves_nothing_and_dels_cleanly() {
    let ns = Netns::new("selfflctr");
    let host = Netns::new("selfflhost");
    let d = TempDir::new("selffl");
    let env_file = d.path().join("subnet.env");
    std::fs::write(
        &env_file,
        "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\n\
         FLANNEL_IPMASQ=true\n",
    )
    .unwrap();
    let data = d.path().join("flannel");
    let stdin = json!({"cniVersion": "1.0.0", "name": "selffl", "type": "flannel",
        "subnetFile": env_file, "dataDir": data,
        "delegate": {"type": "ptp"}, "ipam": {"type": "ptp"}})
    .to_string();
    let run = |command: &str| {
        finish(spawn_with(
            &["ip", "netns", "exec", &host.name],
            &bin_dir().join("flannel"),
            &Env::new(command, "selffl1", &ns.path()),
            &stdin,
        ))
    };
    let o = run("ADD");
    assert!(o.err(7).contains("deep"), "{o:?}");
    assert!(!data.join("selffl1").exists(), "ADD left its saved config");
    assert_eq!(ns.link_names(), ["lo"]);
    run("DEL").ok();
    // A saved config of that shape (from a crash, or an older weft): DEL succeeds and
    // removes it rather than failing every retry.
    std::fs::create_dir_all(&data).unwrap();
    let saved = json!({"cniVersion": "1.0.0", "name": "selffl", "type": "ptp",
        "ipam": {"type": "ptp"}});
    std::fs::write(data.join("selffl1"), saved.to_string()).unwrap();
    run("DEL").ok();
    assert!(!data.join("selffl1").exists());
}
