//! A real etcd (Debian's etcd-server) inside the underlay namespace, and `etcdctl` against it.

use crate::ledger::Ledger;
use anyhow::{bail, Result};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How the lab's etcd listens.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// The member's name (`--name`).
    pub name: String,
    /// "http", or "https" with TLS flags in `extra`.
    pub scheme: String,
    /// The client port; the peer port (on 127.0.0.1) is the next one.
    pub port: u16,
    /// More etcd flags (TLS, auth token TTL...).
    pub extra: Vec<String>,
    /// What etcdctl needs to talk to it (certificates, a user).
    pub ctl_extra: Vec<String>,
}

impl Default for EtcdOptions {
    fn default() -> EtcdOptions {
        EtcdOptions {
            name: "lab".into(),
            scheme: "http".into(),
            port: 2379,
            extra: Vec::new(),
            ctl_extra: Vec::new(),
        }
    }
}

pub struct Etcd {
    pub child: Option<Child>,
    /// Its data (`data/`) and log (`etcd.log`).
    pub dir: PathBuf,
    pub ns: String,
    pub endpoint: String,
    pub extra: Vec<String>,
    pub ctl_extra: Vec<String>,
    name: String,
    peer: String,
    ledger: Ledger,
}

impl Etcd {
    /// Starts etcd in namespace `ns`, answering on `ip`, with its files in `dir`.
    pub fn start(
        ledger: &Ledger,
        ns: &str,
        ip: &str,
        dir: PathBuf,
        o: &EtcdOptions,
    ) -> Result<Etcd> {
        std::fs::create_dir_all(&dir)?;
        let mut e = Etcd {
            child: None,
            dir,
            ns: ns.into(),
            endpoint: format!("{}://{ip}:{}", o.scheme, o.port),
            extra: o.extra.clone(),
            ctl_extra: o.ctl_extra.clone(),
            name: o.name.clone(),
            peer: format!("http://127.0.0.1:{}", o.port + 1),
            ledger: ledger.clone(),
        };
        e.try_launch()?;
        Ok(e)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    /// Starts it (again, on the same data) and waits until it answers.
    pub fn launch(&mut self) {
        self.try_launch().unwrap_or_else(|e| panic!("{e:#}"));
    }

    fn try_launch(&mut self) -> Result<()> {
        let data = self.dir.join("data").display().to_string();
        let cluster = format!("{}={}", self.name, self.peer);
        let mut argv: Vec<&str> = vec![
            "etcd",
            "--name",
            &self.name,
            "--data-dir",
            &data,
            "--listen-client-urls",
            &self.endpoint,
            "--advertise-client-urls",
            &self.endpoint,
            "--listen-peer-urls",
            &self.peer,
            "--initial-advertise-peer-urls",
            &self.peer,
            "--initial-cluster",
            &cluster,
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
        ];
        argv.extend(self.extra.iter().map(String::as_str));
        let child = crate::proc::spawn_in(&self.ns, &argv, &self.log_path())
            .map_err(|e| e.context("etcd (Debian's etcd-server) must be installed: make deps"))?;
        self.ledger
            .record("proc", &[&child.id().to_string(), "etcd"])?;
        self.child = Some(child);
        let up = crate::wait::poll(Duration::from_secs(30), || {
            let exited = self.child.as_mut()?.try_wait().ok()?;
            if let Some(status) = exited {
                return Some(Err(status));
            }
            self.ctl_ok(&[
                "--dial-timeout",
                "1s",
                "--command-timeout",
                "1s",
                "endpoint",
                "health",
            ])
            .then_some(Ok(()))
        });
        let log = crate::proc::tail(&self.log_path(), 12);
        let path = self.log_path().display().to_string();
        match up {
            Some(Ok(())) => Ok(()),
            Some(Err(status)) => bail!(
                "etcd failed to start: etcd exited ({status}); the end of its log ({path}):\n{log}"
            ),
            None => bail!(
                "etcd failed to start: etcd did not answer in 30 s; the end of its log ({path}):\n{log}"
            ),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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

    /// flannel's leases: key and parsed value (null where it is not JSON).
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
