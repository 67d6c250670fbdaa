//! The ledger: a state file naming everything a lab made, so that one teardown removes it,
//! whoever made it and however the run ended.
//!
//! One record per line, each written (and flushed) before the thing it names is made, or for a
//! process as soon as it has started:
//!
//! ```text
//! lab PREFIX          the names of this lab's namespaces start with PREFIX
//! tmp DIR             the lab's directory: host dirs, etcd's data, logs
//! netns NAME          a namespace
//! proc PID NAME       a process (stopped only while its command line names something in DIR)
//! ```
//!
//! Other lines are the callers' own (the demo adds `pod` and `result` records, and `netns` for
//! the pods it makes through CNI) and are kept and ignored. [`teardown`] stops the recorded
//! processes (newest first), then anything else still running inside a recorded namespace
//! (deleting a namespace does not stop what runs in it), deletes the namespaces (newest first;
//! their links, routes and firewall rules go with them), removes DIR and the state file, and
//! says what, if anything, it could not remove.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The state file of one lab; records are appended, one line each.
#[derive(Clone, Debug)]
pub struct Ledger {
    pub path: PathBuf,
}

impl Ledger {
    /// A new, empty state file; refuses one that exists (a lab still recorded there).
    pub fn create(path: &Path) -> Result<Ledger> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("cannot create the state file {}", path.display()))?;
        Ok(Ledger { path: path.into() })
    }

    /// The state file of a lab made earlier (by another process).
    pub fn open(path: &Path) -> Result<Ledger> {
        if !path.is_file() {
            bail!("no lab state file at {}", path.display());
        }
        Ok(Ledger { path: path.into() })
    }

    /// Appends one record.
    pub fn record(&self, kind: &str, fields: &[&str]) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot open the state file {}", self.path.display()))?;
        writeln!(f, "{kind} {}", fields.join(" "))
            .with_context(|| format!("cannot write to {}", self.path.display()))
    }

    pub fn records(&self) -> Result<Records> {
        let text = std::fs::read_to_string(&self.path)
            .with_context(|| format!("cannot read the state file {}", self.path.display()))?;
        Ok(Records::parse(&text))
    }
}

/// What a state file names.
#[derive(Debug, Default)]
pub struct Records {
    pub prefix: String,
    pub tmp: Option<PathBuf>,
    pub netns: Vec<String>,
    pub procs: Vec<u32>,
}

impl Records {
    pub fn parse(text: &str) -> Records {
        let mut r = Records::default();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["lab", prefix] => r.prefix = prefix.to_string(),
                ["tmp", dir] => r.tmp = Some(PathBuf::from(dir)),
                ["netns", name] => r.netns.push(name.to_string()),
                ["proc", pid, ..] => r.procs.extend(pid.parse::<u32>().ok()),
                _ => {}
            }
        }
        r
    }
}

/// What [`teardown`] did.
#[derive(Debug, Default)]
pub struct Removed {
    pub procs: usize,
    pub netns: usize,
    pub tmp: Option<PathBuf>,
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        write!(
            f,
            "stopped {}, deleted {} and {}: nothing left behind",
            plural(self.procs, "process", "processes"),
            plural(self.netns, "namespace", "namespaces"),
            self.tmp
                .as_ref()
                .map_or("no temp dir".into(), |t| t.display().to_string())
        )
    }
}

/// Removes everything `ledger` names (see the module doc), the state file last. With `logs`,
/// every `*.log` under the lab's directory is first copied there, keeping its relative path.
pub fn teardown(ledger: &Ledger, logs: Option<&Path>) -> Result<Removed> {
    let r = ledger.records()?;
    let mut done = Removed {
        tmp: r.tmp.clone(),
        ..Removed::default()
    };
    if let Some(tmp) = &r.tmp {
        for &pid in r.procs.iter().rev() {
            if crate::proc::ours(pid, tmp) {
                crate::proc::stop(pid);
                done.procs += 1;
            }
        }
    }
    let me = std::process::id();
    for ns in r.netns.iter().filter(|n| exists(n)) {
        let pids = crate::proc::run("ip", &["netns", "pids", ns]).unwrap_or_default();
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            if pid != me && crate::proc::alive(pid) {
                crate::proc::stop(pid);
                done.procs += 1;
            }
        }
    }
    for ns in r.netns.iter().rev() {
        if exists(ns) && crate::proc::run("ip", &["netns", "del", ns]).is_ok() {
            done.netns += 1;
        }
    }
    if let (Some(tmp), Some(logs)) = (&r.tmp, logs) {
        copy_logs(tmp, logs)
            .with_context(|| format!("cannot copy the logs to {}", logs.display()))?;
    }
    if let Some(tmp) = r.tmp.as_ref().filter(|t| t.exists()) {
        std::fs::remove_dir_all(tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    let mut left: Vec<String> = r
        .netns
        .iter()
        .filter(|n| exists(n))
        .map(|n| format!("netns {n}"))
        .collect();
    left.extend(
        r.tmp
            .iter()
            .filter(|t| t.exists())
            .map(|t| t.display().to_string()),
    );
    if !left.is_empty() {
        bail!("could not remove: {}", left.join(", "));
    }
    match std::fs::remove_file(&ledger.path) {
        // A lab made in-process keeps its state file in DIR.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        r => r.with_context(|| format!("cannot remove {}", ledger.path.display()))?,
    }
    Ok(done)
}

fn exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

fn copy_logs(from: &Path, to: &Path) -> Result<()> {
    let mut dirs = vec![from.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() && !p.is_symlink() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "log") {
                let dst = to.join(p.strip_prefix(from)?);
                std::fs::create_dir_all(dst.parent().expect("a file's parent"))?;
                std::fs::copy(&p, &dst)?;
            }
        }
    }
    Ok(())
}
