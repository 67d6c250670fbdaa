//! Shared helpers for the black-box tests: run the built binary as a container runtime would,
//! throwaway namespaces and directories that are removed on drop (also after a failed assertion).

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub const GO_DIR: &str = "/usr/lib/cni";
pub const VERSIONS: [&str; 7] = [
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];
/// The Go plugins packaged by Debian (1.1.1) stop at 1.0.0.
pub const GO_VERSIONS: [&str; 6] = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"];

static SEQ: AtomicU32 = AtomicU32::new(0);

pub fn unique(tag: &str) -> String {
    format!(
        "wt{tag}{}x{}",
        std::process::id() % 100_000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Root-only tests fail loudly rather than pass quietly when they cannot run.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "this test needs root: it creates network namespaces"
    );
}

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

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(&format!("-{tag}-")));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A network namespace that exists for the life of the value.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        require_root();
        let name = unique(tag);
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name}");
        Netns { name }
    }
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
    /// Runs `ip -n NAME ARGS...` and returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "ip {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }
    pub fn lo_up(&self) -> bool {
        let j: Value = serde_json::from_str(&self.ip(&["-j", "link", "show", "lo"])).unwrap();
        j[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
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

impl Netns {
    /// `ip -j ARGS...` inside the namespace, parsed (`[]` for empty output).
    pub fn ipj(&self, args: &[&str]) -> Value {
        let mut a = vec!["-j"];
        a.extend_from_slice(args);
        let out = self.ip(&a);
        if out.trim().is_empty() {
            return Value::Array(Vec::new());
        }
        serde_json::from_str(&out).unwrap()
    }
    /// `bridge -j ARGS...` inside the namespace, parsed (`[]` for empty output, which `bridge`
    /// prints for some empty answers).
    pub fn bridgej(&self, args: &[&str]) -> Value {
        let out = Command::new("bridge")
            .args(["-n", &self.name, "-j"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "bridge {args:?}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        if text.trim().is_empty() {
            return Value::Array(Vec::new());
        }
        serde_json::from_str(&text).unwrap()
    }
    /// The namespace opened, and a netlink handle inside it.
    pub fn handle(&self) -> (weft::sys::netns::NetNs, weft::sys::netlink::Handle) {
        let n = weft::sys::netns::NetNs::open(self.path()).unwrap();
        let h = weft::sys::netlink::Handle::open_in(&n).unwrap();
        (n, h)
    }
    /// Runs `cmd ARGS...` inside the namespace; returns (success, stdout+stderr).
    pub fn exec(&self, cmd: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .output()
            .unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }
    /// Link names in the namespace, sorted.
    pub fn link_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ipj(&["link", "show"])
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }
    /// `ping -c1` from inside the namespace.
    pub fn ping(&self, ip: &str) -> bool {
        self.exec(&["ping", "-c", "1", "-W", "2", ip]).0
    }
    /// `iptables -t nat -S` (or ip6tables) inside the namespace.
    pub fn nat_rules(&self, v6: bool) -> Vec<String> {
        let prog = if v6 { "ip6tables" } else { "iptables" };
        let (ok, out) = self.exec(&[prog, "-w", "-t", "nat", "-S"]);
        assert!(ok, "{out}");
        out.lines()
            .filter(|l| !l.starts_with("-P "))
            .map(str::to_string)
            .collect()
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
