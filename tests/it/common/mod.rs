//! Shared helpers for the black-box tests: run the built binary as a container runtime would.
//! Throwaway namespaces and directories (removed on drop, also after a failed assertion) come
//! from the lab crate (tests/lab), as does the flannel testbed ([`overlay`]).

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
pub use weft_lab::{require_root, unique, Netns, TempDir};

pub const GO_DIR: &str = "/usr/lib/cni";
pub const VERSIONS: [&str; 7] = [
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];
/// The Go plugins packaged by Debian (1.1.1) stop at 1.0.0.
pub const GO_VERSIONS: [&str; 6] = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// The binary under test: cargo's build of it, or the one `WEFT_TEST_BIN` names, so the suite
/// can run against the release artifact (`WEFT_TEST_BIN=$PWD/target/static/weft`).
pub fn weft() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("WEFT_TEST_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_weft")),
    })
}

/// A directory of applet symlinks made by `weft --install`. It lives under cargo's per-target
/// temporary directory (inside target/) and is refreshed by each test process: install is
/// idempotent, and cargo runs test binaries one after another.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-bin");
        let out = Command::new(weft())
            .arg("--install")
            .arg(&d)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        d
    })
}

pub fn go_plugin(name: &str) -> PathBuf {
    let p = Path::new(GO_DIR).join(name);
    assert!(
        p.exists(),
        "{p:?} missing: install Debian's containernetworking-plugins (make deps)"
    );
    p
}

/// What a plugin run returned.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
    pub fn ok(&self) -> Value {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        if self.stdout.trim().is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
    /// Asserts a spec error with `code` and returns its message.
    pub fn err(&self, code: u64) -> String {
        assert_ne!(self.code, 0, "expected failure: {self:?}");
        let j = self.json();
        assert_eq!(j["code"].as_u64(), Some(code), "wrong code: {self:?}");
        j["msg"].as_str().unwrap_or_default().to_string()
    }
}

/// The environment of one invocation.
#[derive(Clone, Debug)]
pub struct Env {
    pub command: String,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub path: String,
    pub extra: Vec<(String, String)>,
    pub unset: Vec<String>,
}

impl Env {
    pub fn new(command: &str, container_id: &str, netns: &str) -> Env {
        Env {
            command: command.into(),
            container_id: container_id.into(),
            netns: netns.into(),
            ifname: "eth0".into(),
            args: String::new(),
            path: bin_dir().display().to_string(),
            extra: Vec::new(),
            unset: Vec::new(),
        }
    }
    pub fn cmd(&self, command: &str) -> Env {
        Env {
            command: command.into(),
            ..self.clone()
        }
    }
}

/// Spawns `program` with `env` (and nothing else of the CNI kind) and `stdin`, like a runtime.
pub fn spawn(program: &Path, env: &Env, stdin: &str) -> std::process::Child {
    spawn_with(&[], program, env, stdin)
}

/// [`spawn`] behind a wrapper command such as `ip netns exec NAME`.
pub fn spawn_with(prefix: &[&str], program: &Path, env: &Env, stdin: &str) -> std::process::Child {
    let mut c = match prefix.split_first() {
        None => Command::new(program),
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        }
    };
    for k in [
        "CNI_COMMAND",
        "CNI_CONTAINERID",
        "CNI_NETNS",
        "CNI_IFNAME",
        "CNI_ARGS",
        "CNI_PATH",
    ] {
        c.env_remove(k);
    }
    let pairs = [
        ("CNI_COMMAND", &env.command),
        ("CNI_CONTAINERID", &env.container_id),
        ("CNI_NETNS", &env.netns),
        ("CNI_IFNAME", &env.ifname),
        ("CNI_ARGS", &env.args),
        ("CNI_PATH", &env.path),
    ];
    for (k, v) in pairs {
        if !env.unset.iter().any(|u| u == k) {
            c.env(k, v);
        }
    }
    for (k, v) in &env.extra {
        c.env(k, v);
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program:?}: {e}"));
    let mut si = child.stdin.take().unwrap();
    si.write_all(stdin.as_bytes()).unwrap();
    drop(si);
    child
}

pub fn finish(child: std::process::Child) -> Outcome {
    let out = child.wait_with_output().unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn run(program: &Path, env: &Env, stdin: &str) -> Outcome {
    finish(spawn(program, env, stdin))
}

/// Runs weft's applet `name` through its symlink.
pub fn weft_plugin(name: &str, env: &Env, stdin: &str) -> Outcome {
    run(&bin_dir().join(name), env, stdin)
}

/// Removes keys that only say "empty" so Go 1.1.1 output (which prints `"dns": {}` for 1.x)
/// compares equal to weft's (which omits it, as the current Go library does).
pub fn normalise(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        if o.get("dns")
            .is_some_and(|d| d.as_object().is_some_and(|m| m.is_empty()))
            && o.get("cniVersion")
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with('1'))
        {
            o.remove("dns");
        }
    }
    v
}

/// Lists a directory as (name, content) pairs, sorted.
pub fn dir_listing(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                let content = std::fs::read_to_string(e.path()).unwrap_or_default();
                (name, content)
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// A host-local network config named `mynet` with its state under `data`.
pub fn host_local_conf(v: &str, data: &Path, ipam: Value, plugin_type: &str) -> String {
    let mut ipam = ipam;
    ipam["type"] = Value::from("host-local");
    ipam["dataDir"] = Value::from(data.display().to_string());
    serde_json::json!({"cniVersion": v, "name": "mynet", "type": plugin_type, "ipam": ipam})
        .to_string()
}

/// The reservations (files named by an address) in `dir`.
pub fn reserved_ips(dir: &Path) -> Vec<String> {
    dir_listing(dir)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
        .collect()
}

/// A netlink handle inside a namespace, for the tests of weft's own netlink layer.
pub trait NetlinkIn {
    fn handle(&self) -> (weft::sys::netns::NetNs, weft::sys::netlink::Handle);
}

impl NetlinkIn for Netns {
    /// The namespace opened, and a netlink handle inside it.
    fn handle(&self) -> (weft::sys::netns::NetNs, weft::sys::netlink::Handle) {
        let n = weft::sys::netns::NetNs::open(self.path()).unwrap();
        let h = weft::sys::netlink::Handle::open_in(&n).unwrap();
        (n, h)
    }
}

/// Runs `program` inside `host`, as a runtime on that host would.
pub fn run_in(host: &Netns, program: &Path, env: &Env, stdin: &str) -> Outcome {
    finish(spawn_in(host, program, env, stdin))
}

/// [`run_in`] without waiting.
pub fn spawn_in(host: &Netns, program: &Path, env: &Env, stdin: &str) -> std::process::Child {
    spawn_with(&["ip", "netns", "exec", &host.name], program, env, stdin)
}

/// Merges the keys of `extra` into the object `base`.
pub fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
    base
}

/// A test "host": a namespace the plugin runs in (so the machine's own interfaces, routes and
/// firewall are never touched) and a host-local data directory.
pub struct Site {
    pub host: Netns,
    pub data: TempDir,
}

impl Site {
    pub fn new(tag: &str) -> Site {
        Site {
            host: Netns::new(tag),
            data: TempDir::new(tag),
        }
    }

    /// A config named `mynet` of type `plugin` with host-local IPAM on 10.1.2.0/24 (state in this
    /// site's data dir), with `extra` merged in (an `ipam` in `extra` gets the dataDir too).
    pub fn conf(&self, plugin: &str, v: &str, extra: Value) -> String {
        let base = serde_json::json!({
            "cniVersion": v, "name": "mynet", "type": plugin,
            "ipam": {"type": "host-local", "subnet": "10.1.2.0/24"},
        });
        let mut c = merged(base, extra);
        if let Some(ipam) = c.get_mut("ipam").and_then(Value::as_object_mut) {
            if ipam.contains_key("type") {
                ipam.insert("dataDir".into(), Value::from(self.data_dir()));
            }
        }
        c.to_string()
    }

    pub fn data_dir(&self) -> String {
        self.data.path().display().to_string()
    }

    /// Addresses host-local holds for network `mynet`.
    pub fn reserved(&self) -> Vec<String> {
        reserved_ips(&self.data.path().join("mynet"))
    }

    /// Runs `program` (weft's applet by name, or a path) inside the host namespace.
    pub fn run(&self, program: &str, env: &Env, stdin: &str) -> Outcome {
        let path = if program.contains('/') {
            PathBuf::from(program)
        } else {
            bin_dir().join(program)
        };
        run_in(&self.host, &path, env, stdin)
    }

    /// The environment of `command` for container `cid` in `ctr`.
    pub fn env(&self, command: &str, cid: &str, ctr: &Netns) -> Env {
        Env::new(command, cid, &ctr.path())
    }
}

/// Wraps a result as the `prevResult` of `conf` (for CHECK and chained plugins).
pub fn with_prev(conf: &str, result: &Value) -> String {
    let mut c: Value = serde_json::from_str(conf).unwrap();
    c["prevResult"] = result.clone();
    c.to_string()
}
/// `ip -d -j link show NAME` in `ns`.
pub fn link(ns: &Netns, name: &str) -> Value {
    ns.ipj(&["-d", "link", "show", name])[0].clone()
}

/// The non-link-local addresses of `dev` (`family`: "-4" or "-6") as `addr/len`.
pub fn addrs(ns: &Netns, dev: &str, family: &str) -> Vec<String> {
    ns.ipj(&[family, "addr", "show", "dev", dev])[0]["addr_info"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|i| i["scope"] != "link")
                .map(|i| format!("{}/{}", i["local"].as_str().unwrap(), i["prefixlen"]))
                .collect()
        })
        .unwrap_or_default()
}

pub mod overlay;
