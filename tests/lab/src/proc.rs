//! Commands and processes: running a tool to completion with its failure as an error, starting
//! a long-lived process inside a namespace, and stopping one by pid.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `prog ARGS...`, its stdout; a non-zero exit is an error carrying stderr.
pub fn run(prog: &str, args: &[&str]) -> Result<String> {
    run_input(prog, args, "")
}

/// [`run`] with `input` on stdin.
pub fn run_input(prog: &str, args: &[&str], input: &str) -> Result<String> {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {prog}"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(input.as_bytes())
        .with_context(|| format!("writing to {prog}"))?;
    drop(stdin);
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{prog} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts `argv` inside namespace `ns` (`ip netns exec`, which execs in place: the pid is the
/// program's), stdin and stdout on /dev/null, stderr to `log`. It gets a process group of its
/// own, so a Ctrl-C at the terminal reaches the script that drives the lab, whose teardown
/// then stops it, rather than killing it half-way.
pub fn spawn_in(ns: &str, argv: &[&str], log: &Path) -> Result<Child> {
    let log_file =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {} in {ns}", argv[0]))
}

/// [`spawn_in`] as a machine of its own: in a private mount namespace where `machine_id` is
/// bind-mounted over /etc/machine-id, so each lab host has its own
/// identity, as separate machines do.
pub fn spawn_as_machine(ns: &str, machine_id: &Path, argv: &[&str], log: &Path) -> Result<Child> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let log_file =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    if !Path::new("/etc/machine-id").exists() {
        anyhow::bail!(
            "/etc/machine-id is missing: the lab mounts each host's own over it (systemd makes it: \
             systemd-machine-id-setup)"
        );
    }
    let bind = (
        CString::new(machine_id.as_os_str().as_bytes())?,
        CString::new("/etc/machine-id")?,
    );
    let root = CString::new("/")?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns])
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .process_group(0);
    // SAFETY: between fork and exec the closure only makes system calls on strings made before
    // the fork; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            let (none, no_data) = (std::ptr::null(), std::ptr::null());
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    none,
                    root.as_ptr(),
                    none,
                    libc::MS_REC | libc::MS_PRIVATE,
                    no_data,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            let (src, dst) = &bind;
            if libc::mount(src.as_ptr(), dst.as_ptr(), none, libc::MS_BIND, no_data) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("cannot start {} in {ns}", argv[0]))
}

/// The state letter of `pid` (R, S, Z...), None when there is no such process.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether `pid` runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    state(pid).is_some_and(|s| s != 'Z')
}

/// Whether `pid` runs and its command line names something under `dir`: a pid recorded long
/// ago may since belong to someone else, and the lab's processes all keep a file there.
pub fn ours(pid: u32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let needle = format!("{}/", dir.display());
    alive(pid) && String::from_utf8_lossy(&cmdline).contains(&needle)
}

/// SIGTERM, then SIGKILL after 5 s; reaped here when it is a child of this process.
pub fn stop(pid: u32) {
    let gone = || {
        // SAFETY: waitpid with WNOHANG on a pid that may not be our child only fails (ECHILD).
        unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), libc::WNOHANG) };
        !alive(pid)
    };
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid as i32, libc::SIGTERM) } != 0 {
        return;
    }
    if crate::wait::poll(Duration::from_secs(5), || gone().then_some(())).is_none() {
        // SAFETY: as above.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        crate::wait::poll(Duration::from_secs(5), || gone().then_some(()));
    }
}

/// The last `n` lines of `path`, each indented, for an error message.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("  {l}\n"))
        .collect()
}
