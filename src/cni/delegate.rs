//! Calling another plugin (IPAM from bridge/ptp, bridge from flannel) as the spec requires:
//! found on `CNI_PATH`, given our whole environment with only `CNI_COMMAND` changed, and exactly
//! the stdin bytes we choose. When the plugin found is this very binary (same inode as
//! /proc/self/exe), it runs in-process instead of being exec'd.

use super::env::{CmdArgs, Command};
use super::error::{Code, Error};
use super::result::CniResult;
use anyhow::{anyhow, bail, Context, Result};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// Deeper than any real chain (flannel, bridge, host-local is 2): a plugin whose IPAM or
/// delegate type names itself would otherwise recurse until the stack or the process table
/// runs out.
const MAX_DEPTH: u32 = 8;

/// Stops a chain of delegations that nests past [`MAX_DEPTH`]: a plugin that names itself as
/// its IPAM or delegate type recurses until the stack is gone. `Ok(true)`: a DEL that deep
/// answers success with nothing done, because such a chain never completed an ADD and so made
/// nothing for a DEL to remove; a runtime's DEL must be able to finish.
fn too_deep(plugin: &str, verb: Command, args: &CmdArgs) -> Result<bool> {
    if args.depth < MAX_DEPTH {
        return Ok(false);
    }
    let msg = format!(
        "delegation to {plugin:?} is nested {} deep: does a plugin name itself as its ipam or \
         delegate type?",
        args.depth + 1
    );
    if verb == Command::Del {
        log::warn!("{msg} (DEL: nothing to remove)");
        return Ok(true);
    }
    Err(Error::new(Code::InvalidConfig, msg).into())
}

/// A plugin run in-process: stdout text on success, the error otherwise.
pub type InProcessFn = fn(&CmdArgs) -> std::result::Result<Option<String>, Error>;

/// The in-process entry of each CNI plugin the library holds, by name.
pub fn builtin(plugin: &str) -> Option<InProcessFn> {
    use super::skel::in_process;
    Some(match plugin {
        "bridge" => in_process::<crate::plugins::bridge::plugin::Bridge>,
        "ptp" => in_process::<crate::plugins::ptp::plugin::Ptp>,
        "loopback" => in_process::<crate::plugins::loopback::Loopback>,
        "portmap" => in_process::<crate::plugins::portmap::plugin::Portmap>,
        "host-local" => in_process::<crate::plugins::ipam::plugin::HostLocal>,
        "flannel" => in_process::<crate::plugins::flannel_cni::plugin::Flannel>,
        _ => return None,
    })
}

/// Finds `plugin` in the `:`-separated `cni_path`: the first `<dir>/<plugin>` that is a regular
/// file (symlinks followed).
pub fn find(plugin: &str, cni_path: &str) -> Result<PathBuf> {
    if plugin.is_empty() {
        bail!("no plugin name provided");
    }
    if plugin.contains('/') {
        bail!("invalid plugin name: {plugin}");
    }
    let dirs: Vec<&str> = cni_path.split(':').filter(|d| !d.is_empty()).collect();
    if dirs.is_empty() {
        bail!("no paths provided");
    }
    for dir in &dirs {
        let p = PathBuf::from(dir).join(plugin);
        if std::fs::metadata(&p).is_ok_and(|m| m.is_file()) {
            return Ok(p);
        }
    }
    // Go prints the list as fmt does a []string: `[/a /b]`.
    bail!(
        "failed to find plugin {plugin:?} in path [{}]",
        dirs.join(" ")
    )
}

fn is_this_binary(p: &std::path::Path) -> bool {
    match (std::fs::metadata(p), std::fs::metadata("/proc/self/exe")) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The in-process entry for `plugin` found at `path`, if `path` is this binary and it has one.
fn in_process_entry(plugin: &str, path: &std::path::Path) -> Option<InProcessFn> {
    if !is_this_binary(path) {
        return None;
    }
    builtin(plugin)
}

/// Runs `plugin` for `verb` and returns its stdout. The plugin's own error object comes back as
/// a typed [`Error`], so its code survives unless a caller adds context.
pub fn invoke(plugin: &str, verb: Command, stdin: &[u8], args: &CmdArgs) -> Result<Vec<u8>> {
    let path = find(plugin, &args.path)?;
    invoke_at(plugin, &path, verb, stdin, args)
}

/// [`invoke`] of a plugin already found at `path`: a runtime finds each plugin once and then
/// calls it with environments of its own (VERSION's has no usable `CNI_PATH`).
pub fn invoke_at(
    plugin: &str,
    path: &std::path::Path,
    verb: Command,
    stdin: &[u8],
    args: &CmdArgs,
) -> Result<Vec<u8>> {
    if let Some(entry) = in_process_entry(plugin, path) {
        return run_in_process(entry, plugin, verb, stdin, args);
    }
    exec(path, verb, stdin, args)
}

/// Runs `entry` (`plugin`'s in-process entry) for `verb` and returns its stdout.
fn run_in_process(
    entry: InProcessFn,
    plugin: &str,
    verb: Command,
    stdin: &[u8],
    args: &CmdArgs,
) -> Result<Vec<u8>> {
    if too_deep(plugin, verb, args)? {
        return Ok(Vec::new());
    }
    log::debug!("delegating {} to {plugin} in-process", verb.as_str());
    let mut sub = args.clone();
    sub.command = verb;
    sub.depth += 1;
    sub.stdin = stdin.to_vec();
    match entry(&sub) {
        Ok(out) => Ok(out.unwrap_or_default().into_bytes()),
        Err(e) => Err(e.into()),
    }
}

fn exec(path: &std::path::Path, verb: Command, stdin: &[u8], args: &CmdArgs) -> Result<Vec<u8>> {
    if too_deep(&path.to_string_lossy(), verb, args)? {
        return Ok(Vec::new());
    }
    let mut attempt = 0;
    let mut child = loop {
        let mut cmd = std::process::Command::new(path);
        cmd.envs(args.env_for(verb))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match cmd.spawn() {
            Ok(c) => break c,
            // The binary is being replaced under us (an upgrade): Go's invoke retries 5 times.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < 5 => {
                attempt += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => return Err(e).with_context(|| format!("failed to exec {path:?}")),
        }
    };
    let mut child_in = child.stdin.take().context("child stdin")?;
    let input = stdin.to_vec();
    // Write on a thread so a plugin that prints before reading all of stdin cannot deadlock us.
    let writer = std::thread::spawn(move || {
        let _ = child_in.write_all(&input);
    });
    let out = child
        .wait_with_output()
        .with_context(|| format!("failed to wait for {path:?}"))?;
    let _ = writer.join();
    if !out.stderr.is_empty() {
        let _ = std::io::stderr().write_all(&out.stderr);
    }
    if out.status.success() {
        return Ok(out.stdout);
    }
    if out.stdout.is_empty() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.is_empty() {
            bail!("netplugin failed with no error message: {}", out.status);
        }
        bail!("netplugin failed: {stderr:?}: {}", out.status);
    }
    match Error::from_json(&out.stdout) {
        Some(e) => Err(e.into()),
        None => Err(anyhow!(
            "netplugin failed but error parsing its diagnostic message {:?}",
            String::from_utf8_lossy(&out.stdout)
        )),
    }
}

/// Delegated ADD: the plugin's result, read in whatever version it printed (a missing
/// `cniVersion` is taken to be `conf_version`).
pub fn add(plugin: &str, stdin: &[u8], args: &CmdArgs, conf_version: &str) -> Result<CniResult> {
    let out = invoke(plugin, Command::Add, stdin, args)?;
    decode_add(plugin, &out, conf_version)
}

/// `plugin`'s ADD output as a result, as [`add`] reads it.
fn decode_add(plugin: &str, out: &[u8], conf_version: &str) -> Result<CniResult> {
    let value: serde_json::Value = serde_json::from_slice(out).map_err(|e| {
        Error::new(
            Code::DecodingFailure,
            format!("failed to decode {plugin} result"),
        )
        .with_details(e.to_string())
    })?;
    let (res, _) = CniResult::parse(&value, conf_version)?;
    Ok(res)
}

/// A delegated ADD (with the caller's own stdin) started ahead of the point where its result
/// is needed. When the plugin runs in this process it runs on a thread of its own beside the
/// caller's other work; any other plugin is exec'd only at [`EarlyAdd::finish`], in the order
/// the reference keeps.
///
/// Why: host-local reads every reservation of its network on each ADD (the duplicate check),
/// about 7 µs a file, so on a node with 200 pods its ADD costs 1.5 ms more than on an empty
/// one; the bridge plugin's veth creation, which needs nothing from IPAM, takes about as long
/// in the kernel. Overlapping the two takes the larger of them off a pod's start.
///
/// The thread is joined by [`EarlyAdd::finish`], so no thread outlives it. Dropped unfinished
/// (the caller failed before it needed the result), it joins the ADD and, if that reserved
/// anything, releases it with a DEL: nothing is left behind.
pub struct EarlyAdd {
    plugin: String,
    args: CmdArgs,
    conf_version: String,
    running: Option<std::thread::JoinHandle<Result<CniResult>>>,
}

/// Starts `plugin`'s ADD with `args.stdin` as [`EarlyAdd`] describes.
pub fn add_early(plugin: &str, args: &CmdArgs, conf_version: &str) -> EarlyAdd {
    let mut early = EarlyAdd {
        plugin: plugin.to_string(),
        args: args.clone(),
        conf_version: conf_version.to_string(),
        running: None,
    };
    let entry = find(plugin, &args.path)
        .ok()
        .and_then(|p| in_process_entry(plugin, &p));
    if let Some(entry) = entry {
        let (plugin, args, version) = (
            early.plugin.clone(),
            early.args.clone(),
            early.conf_version.clone(),
        );
        // The plugin is resolved once, here; the thread runs its entry directly. A thread
        // that cannot be started leaves the ADD to `finish`, inline.
        let spawned = std::thread::Builder::new()
            .name("weft-ipam".into())
            .spawn(move || {
                run_in_process(entry, &plugin, Command::Add, &args.stdin, &args)
                    .and_then(|out| decode_add(&plugin, &out, &version))
            });
        early.running = spawned.ok();
    }
    early
}

impl EarlyAdd {
    /// The ADD's result: waited for if it is running, run now if it is not.
    pub fn finish(mut self) -> Result<CniResult> {
        match self.running.take() {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err(anyhow!("the {} ADD thread panicked", self.plugin))),
            None => add(
                &self.plugin,
                &self.args.stdin,
                &self.args,
                &self.conf_version,
            ),
        }
    }
}

impl Drop for EarlyAdd {
    fn drop(&mut self) {
        let Some(h) = self.running.take() else {
            return;
        };
        if let Ok(Ok(_)) = h.join() {
            let (p, a) = (&self.plugin, &self.args);
            if let Err(e) = call(p, Command::Del, &a.stdin, a) {
                log::warn!("releasing the addresses of an abandoned {p} ADD: {e:#}");
            }
        }
    }
}

/// Delegated DEL, CHECK, STATUS or GC: success or the plugin's error.
pub fn call(plugin: &str, verb: Command, stdin: &[u8], args: &CmdArgs) -> Result<()> {
    invoke(plugin, verb, stdin, args).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_rules() {
        assert_eq!(
            find("", "/x").unwrap_err().to_string(),
            "no plugin name provided"
        );
        assert!(find("a/b", "/x")
            .unwrap_err()
            .to_string()
            .starts_with("invalid plugin name"));
        assert_eq!(find("x", "").unwrap_err().to_string(), "no paths provided");
        let e = find("weft-no-such-plugin", "/nonexistent:/also-not").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("failed to find plugin \"weft-no-such-plugin\""));
        // A directory with the plugin's name is not a plugin.
        assert!(find("tmp", "/").is_err());
        assert_eq!(
            find("sh", "/nonexistent:/bin").unwrap(),
            PathBuf::from("/bin/sh")
        );
    }
}
