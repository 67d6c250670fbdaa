//! A flannel testbed in namespaces: an "underlay" namespace holding a bridge and a real etcd, and
//! "hosts" plugged into that bridge, each able to run a flanneld and hold pod namespaces behind a
//! cni0 bridge. Everything is removed on drop, processes first.

use super::{Netns, TempDir};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const UNDERLAY: &str = "192.168.77";
pub const ETCD_IP: &str = "192.168.77.254";

/// Waits until `f` returns Some, or panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for_then(limit, || what.to_string(), f)
}

/// [`wait_for`] with the panic message made at the time of the panic (e.g. with the logs as they
/// are then, not as they were when the wait began).
pub fn wait_for_then<T>(
    limit: Duration,
    what: impl FnOnce() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() >= limit {
            panic!("timed out after {limit:?} waiting for {}", what());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `10.45.7.1/24` -> `10.45.7.0/24`.
pub fn net_of(subnet: &str) -> String {
    let (ip, len) = subnet.split_once('/').unwrap();
    format!("{}.0/{len}", ip.rsplit_once('.').unwrap().0)
}

/// The main routing table of `ns` as `ip -j route show` objects.
pub fn routes(ns: &Netns) -> Vec<Value> {
    ns.ipj(&["route", "show"]).as_array().unwrap().clone()
}

/// The route to `dst` (e.g. `10.45.7.0/24`) in `ns`, if any.
pub fn route_to(ns: &Netns, dst: &str) -> Option<Value> {
    routes(ns).into_iter().find(|r| r["dst"] == dst)
}

pub struct Etcd {
    pub child: Option<Child>,
    pub dir: TempDir,
    pub ns: String,
    pub endpoint: String,
    pub extra: Vec<String>,
    pub ctl_extra: Vec<String>,
}

impl Etcd {
    /// Starts etcd inside `ns` listening on `ip`:2379 (clients), with `extra` flags (TLS).
    pub fn start(
        ns: &Netns,
        ip: &str,
        scheme: &str,
        extra: Vec<String>,
        ctl_extra: Vec<String>,
    ) -> Etcd {
        let dir = TempDir::new("etcd");
        let mut e = Etcd {
            child: None,
            dir,
            ns: ns.name.clone(),
            endpoint: format!("{scheme}://{ip}:2379"),
            extra,
            ctl_extra,
        };
        e.launch();
        e
    }

    pub fn launch(&mut self) {
        let data = self.dir.path().join("data");
        let log = std::fs::File::create(self.dir.path().join("etcd.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "etcd", "--name", "t"])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &self.endpoint])
            .args(["--advertise-client-urls", &self.endpoint])
            .args(["--listen-peer-urls", "http://127.0.0.1:2380"])
            .args(["--initial-advertise-peer-urls", "http://127.0.0.1:2380"])
            .args(["--initial-cluster", "t=http://127.0.0.1:2380"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd (Debian etcd-server) must be installed: make deps");
        self.child = Some(child);
        wait_for(Duration::from_secs(20), "etcd to answer", || {
            self.ctl_ok(&["endpoint", "health"]).then_some(())
        });
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn ctl_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, "etcdctl"])
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoint])
            .args(&self.ctl_extra)
            .args(args);
        c
    }

    fn ctl_ok(&self, args: &[&str]) -> bool {
        self.ctl_cmd(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `etcdctl ARGS`, asserting success; returns stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = self.ctl_cmd(args).output().unwrap();
        assert!(out.status.success(), "etcdctl {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn put(&self, key: &str, value: &str) {
        self.ctl(&["put", key, value]);
    }

    /// Every key under `prefix` with its value.
    pub fn dump(&self, prefix: &str) -> Vec<(String, String)> {
        let out = self.ctl(&["get", "--prefix", prefix]);
        let lines: Vec<&str> = out.lines().collect();
        lines
            .chunks(2)
            .map(|c| (c[0].to_string(), c.get(1).unwrap_or(&"").to_string()))
            .collect()
    }

    pub fn leases(&self) -> Vec<(String, Value)> {
        self.dump("/coreos.com/network/subnets")
            .into_iter()
            .map(|(k, v)| (k, serde_json::from_str(&v).unwrap_or(Value::Null)))
            .collect()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct Host {
    pub ns: Netns,
    pub ip: String,
    pub dir: TempDir,
    pub flanneld: Option<Child>,
    pub pods: Vec<Netns>,
    pub runs: u32,
}

impl Host {
    pub fn subnet_file(&self) -> PathBuf {
        self.dir.path().join("subnet.env")
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        for i in 0..self.runs {
            s += &std::fs::read_to_string(self.dir.path().join(format!("flanneld.{i}.log")))
                .unwrap_or_default();
        }
        s
    }

    /// Starts flanneld against `endpoint` with extra flags.
    pub fn start_flanneld(&mut self, endpoint: &str, extra: &[&str]) {
        let log =
            std::fs::File::create(self.dir.path().join(format!("flanneld.{}.log", self.runs)))
                .unwrap();
        self.runs += 1;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns.name])
            .arg(super::weft())
            .arg("flanneld")
            .arg(format!("-etcd-endpoints={endpoint}"))
            .arg(format!("-subnet-file={}", self.subnet_file().display()))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.flanneld = Some(child);
    }

    /// SIGTERM and the exit code.
    pub fn stop_flanneld(&mut self) -> Option<i32> {
        let mut c = self.flanneld.take()?;
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let st = c.wait().unwrap();
        st.code()
    }

    pub fn env(&self) -> Option<String> {
        std::fs::read_to_string(self.subnet_file()).ok()
    }

    /// Whether the last flanneld started is still running (false if none was started).
    pub fn alive(&mut self) -> bool {
        self.flanneld
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// `GET http://127.0.0.1:PORT/PATH` from inside the host, with curl (a real HTTP client,
    /// as a kubelet's probe is): the status code and the body, or `None` when nothing answers.
    pub fn http_get(&self, port: u16, path: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:{port}{path}");
        assert!(
            Command::new("curl")
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "curl is not installed: Debian's curl (make deps installs it)"
        );
        let (ok, out) = self.ns.exec(&[
            "curl",
            "-sS",
            "--max-time",
            "5",
            "-w",
            "\n%{http_code}",
            &url,
        ]);
        if !ok {
            return None;
        }
        let (body, code) = out.rsplit_once('\n')?;
        Some((code.trim().parse().ok()?, body.to_string()))
    }

    pub fn wait_env(&self) -> String {
        wait_for_then(
            Duration::from_secs(30),
            || format!("subnet.env of {}\n{}", self.ns.name, self.log()),
            || self.env(),
        )
    }

    /// The FLANNEL_SUBNET value (e.g. 10.5.3.1/24).
    pub fn subnet(&self) -> String {
        let env = self.wait_env();
        env.lines()
            .find_map(|l| l.strip_prefix("FLANNEL_SUBNET="))
            .unwrap()
            .to_string()
    }

    /// A pod namespace behind cni0 with the subnet's address .N; cni0 gets .1.
    pub fn add_pod(&mut self, n: u8) -> String {
        let subnet = self.subnet();
        let (gw, len) = subnet.split_once('/').unwrap();
        let base = gw.rsplit_once('.').unwrap().0;
        let mtu = self
            .env()
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("FLANNEL_MTU=").map(str::to_string))
            .unwrap();
        if !self.ns.ip(&["link", "show"]).contains("cni0") {
            self.ns.ip(&["link", "add", "cni0", "type", "bridge"]);
            self.ns.ip(&["addr", "add", &subnet, "dev", "cni0"]);
            self.ns.ip(&["link", "set", "cni0", "up"]);
        }
        let pod = Netns::new("pod");
        let ip = format!("{base}.{n}");
        let host_end = format!("vp{n}");
        self.ns.ip(&[
            "link", "add", &host_end, "mtu", &mtu, "type", "veth", "peer", "name", "eth0", "mtu",
            &mtu, "netns", &pod.name,
        ]);
        self.ns
            .ip(&["link", "set", &host_end, "master", "cni0", "up"]);
        pod.ip(&["addr", "add", &format!("{ip}/{len}"), "dev", "eth0"]);
        pod.ip(&["link", "set", "eth0", "up"]);
        pod.ip(&["link", "set", "lo", "up"]);
        pod.ip(&["route", "add", "default", "via", gw]);
        self.pods.push(pod);
        ip
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut c) = self.flanneld.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The underlay: a namespace with bridge ul0 (and etcd), and hosts on it.
pub struct Testbed {
    pub hosts: Vec<Host>,
    pub etcd: Etcd,
    pub ul: Netns,
}

impl Testbed {
    /// `n` hosts at 192.168.77.1..n, etcd at .254 (plain http).
    pub fn new(n: usize) -> Testbed {
        Testbed::with_etcd(n, "http", vec![], vec![])
    }

    pub fn with_etcd(
        n: usize,
        scheme: &str,
        extra: Vec<String>,
        ctl_extra: Vec<String>,
    ) -> Testbed {
        let ul = Netns::new("ul");
        ul.ip(&["link", "add", "ul0", "type", "bridge"]);
        ul.ip(&["addr", "add", &format!("{ETCD_IP}/24"), "dev", "ul0"]);
        ul.ip(&["link", "set", "ul0", "up"]);
        ul.ip(&["link", "set", "lo", "up"]);
        let etcd = Etcd::start(&ul, ETCD_IP, scheme, extra, ctl_extra);
        let mut tb = Testbed {
            hosts: Vec::new(),
            etcd,
            ul,
        };
        for _ in 0..n {
            tb.add_host();
        }
        tb
    }

    pub fn add_host(&mut self) -> usize {
        let i = self.hosts.len() + 1;
        let ns = Netns::new("h");
        let ip = format!("{UNDERLAY}.{i}");
        let port = format!("u{i}");
        self.ul.ip(&[
            "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
        ]);
        self.ul.ip(&["link", "set", &port, "master", "ul0", "up"]);
        ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        ns.ip(&["link", "set", "eth0", "up"]);
        ns.ip(&["link", "set", "lo", "up"]);
        ns.ip(&["route", "add", "default", "via", ETCD_IP]);
        let (ok, out) = ns.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        assert!(ok, "{out}");
        self.hosts.push(Host {
            ns,
            ip,
            dir: TempDir::new("host"),
            flanneld: None,
            pods: Vec::new(),
            runs: 0,
        });
        i - 1
    }

    /// One pod (.2) behind each host's cni0: (host index, pod address).
    pub fn add_pods(&mut self) -> Vec<(usize, String)> {
        (0..self.hosts.len())
            .map(|i| (i, self.hosts[i].add_pod(2)))
            .collect()
    }

    /// Each host's first pod pings every other host's pod once (`extra`: more ping options).
    pub fn ping_all(&self, ips: &[(usize, String)], extra: &[&str]) {
        for (i, _) in ips {
            for (j, ip) in ips {
                if i == j {
                    continue;
                }
                let mut argv = vec!["ping", "-c", "1", "-W", "2"];
                argv.extend_from_slice(extra);
                argv.push(ip);
                let (ok, out) = self.hosts[*i].pods[0].exec(&argv);
                assert!(
                    ok,
                    "pod on host {i} cannot reach {ip} on host {j} ({extra:?}): {out}\n{}",
                    self.hosts[*i].log()
                );
            }
        }
    }

    pub fn set_config(&self, json: &str) {
        self.etcd.put("/coreos.com/network/config", json);
    }

    pub fn start_all(&mut self, extra: &[&str]) {
        let ep = self.etcd.endpoint.clone();
        for h in &mut self.hosts {
            h.start_flanneld(&ep, extra);
        }
        for h in &self.hosts {
            h.wait_env();
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // flanneld first (Host drop), then etcd, then the namespaces.
        self.hosts.clear();
        self.etcd.stop();
    }
}
