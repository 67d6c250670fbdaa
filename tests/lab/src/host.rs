//! A host on the underlay: its namespace, its directory, the flanneld it runs and the pods it
//! holds.

use crate::ledger::Ledger;
use crate::netns::Netns;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Host {
    /// The name within the lab (the namespace is the lab's prefix and this).
    pub name: String,
    pub ns: Netns,
    /// Its underlay address.
    pub ip: String,
    /// subnet.env, the flanneld logs.
    pub dir: PathBuf,
    pub flanneld: Option<Child>,
    pub pods: Vec<Netns>,
    /// flanneld runs so far (each logs to `flanneld.N.log`).
    pub runs: u32,
    pub(crate) weft: Option<PathBuf>,
    pub(crate) ledger: Ledger,
}

impl Host {
    /// This host's /etc/machine-id, as the flanneld it runs sees it.
    pub fn machine_id(&self) -> PathBuf {
        self.dir.join("machine-id")
    }

    pub fn subnet_file(&self) -> PathBuf {
        self.dir.join("subnet.env")
    }

    /// Every flanneld log of this host, oldest first.
    pub fn log(&self) -> String {
        let mut s = String::new();
        for i in 0..self.runs {
            s += &std::fs::read_to_string(self.dir.join(format!("flanneld.{i}.log")))
                .unwrap_or_default();
        }
        s
    }

    /// Starts weft's flanneld against `endpoint` with extra flags.
    pub fn start_flanneld(&mut self, endpoint: &str, extra: &[&str]) {
        let weft = self
            .weft
            .clone()
            .expect("the lab was made without a weft binary");
        let log = self.dir.join(format!("flanneld.{}.log", self.runs));
        self.runs += 1;
        let mut argv = vec![
            weft.display().to_string(),
            "flanneld".into(),
            format!("-etcd-endpoints={endpoint}"),
            format!("-subnet-file={}", self.subnet_file().display()),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let child =
            crate::proc::spawn_as_machine(&self.ns.name, &self.machine_id(), &argv, &log).unwrap();
        self.ledger
            .record("proc", &[&child.id().to_string(), "flanneld"])
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
        crate::wait::wait_for_then(
            Duration::from_secs(30),
            || format!("subnet.env of {}\n{}", self.ns.name, self.log()),
            || self.env(),
        )
    }

    /// The FLANNEL_SUBNET value (e.g. 10.5.3.1/24).
    pub fn subnet(&self) -> String {
        self.env_value("FLANNEL_SUBNET")
    }

    fn env_value(&self, key: &str) -> String {
        let env = self.wait_env();
        env.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} in {env}"))
            .to_string()
    }

    /// A pod behind cni0 with address .N of the subnet flanneld leased, at its MTU.
    pub fn add_pod(&mut self, n: u8) -> String {
        let (subnet, mtu) = (self.subnet(), self.env_value("FLANNEL_MTU"));
        self.add_pod_at(n, &subnet, &mtu)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// A pod namespace HOST-pN behind cni0 (made with `gw_cidr`, e.g. 10.5.3.1/24, if the host
    /// has none yet), with address .N of that subnet on its eth0, `mtu` on both ends of its
    /// veth (vpN on the host), and a default route via the gateway. Returns its address.
    pub fn add_pod_at(&mut self, n: u8, gw_cidr: &str, mtu: &str) -> Result<String> {
        let (gw, len) = gw_cidr
            .split_once('/')
            .with_context(|| format!("{gw_cidr} is not ADDRESS/LENGTH"))?;
        let base = gw.rsplit_once('.').context("an IPv4 gateway")?.0;
        let pod_ip = format!("{base}.{n}");
        let name = format!("{}{}-p{n}", self.prefix(), self.name);
        self.ledger.record("netns", &[&name])?;
        let pod = Netns::named(&name)?;
        let mut lines = Vec::new();
        if !self.has_link("cni0") {
            lines.extend([
                "link add cni0 type bridge".to_string(),
                format!("addr add {gw_cidr} dev cni0"),
                "link set cni0 up".into(),
            ]);
        }
        lines.extend([
            format!("link add vp{n} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {name}"),
            format!("link set vp{n} master cni0 up"),
        ]);
        self.ns.ip_batch(&lines)?;
        pod.ip_batch(&[
            "link set lo up".into(),
            format!("addr add {pod_ip}/{len} dev eth0"),
            "link set eth0 up".into(),
            format!("route add default via {gw}"),
        ])?;
        self.pods.push(pod);
        Ok(pod_ip)
    }

    fn prefix(&self) -> &str {
        self.ns
            .name
            .strip_suffix(&self.name)
            .expect("a host's namespace ends with its name")
    }

    fn has_link(&self, name: &str) -> bool {
        crate::proc::run("ip", &["-n", &self.ns.name, "link", "show", name]).is_ok()
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
