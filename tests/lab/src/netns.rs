//! Named network namespaces (`ip netns`), and the `ip`, `bridge` and exec helpers the tests
//! look inside them with. Every helper asserts: a test wants a failure to stop it, with the
//! command's output.

use serde_json::Value;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A name no other test of this run (and no concurrent run) uses: `wt`, `tag`, the pid and a
/// counter.
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

/// A network namespace that exists for the life of the value (unless it is forgotten, as the
/// `weft-lab` command does with what its ledger will remove).
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A namespace with a [`unique`] name.
    pub fn new(tag: &str) -> Netns {
        require_root();
        Netns::named(&unique(tag)).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// `ip netns add NAME`.
    pub fn named(name: &str) -> anyhow::Result<Netns> {
        crate::proc::run("ip", &["netns", "add", name])?;
        Ok(Netns { name: name.into() })
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// `ip -n NAME -batch -`: each line one `ip` command, failing on the first that fails.
    pub fn ip_batch(&self, lines: &[String]) -> anyhow::Result<()> {
        let mut input = lines.join("\n");
        input.push('\n');
        crate::proc::run_input("ip", &["-n", &self.name, "-batch", "-"], &input)
            .map_err(|e| e.context(format!("in namespace {}: {lines:?}", self.name)))?;
        Ok(())
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

    pub fn lo_up(&self) -> bool {
        let j = self.ipj(&["link", "show", "lo"]);
        j[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP")
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

impl Drop for Netns {
    fn drop(&mut self) {
        // A lab's teardown may have removed it already.
        if std::path::Path::new(&self.path()).exists() {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.name])
                .status();
        }
    }
}
