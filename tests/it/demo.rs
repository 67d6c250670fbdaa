//! `make demo` (scripts/demo.sh) run as a newcomer runs it, with the debug binary instead of the
//! static one: the whole overlay (etcd, three flanneld hosts, six pods through the flannel CNI
//! plugin) must come up, every pod must reach every other pod, iperf3 must run across hosts, and
//! the teardown must leave no namespace, process, link, iptables chain, temp directory or state
//! file behind, on success, with KEEP=1 followed by `--down` (`make demo-down`), and on Ctrl-C.
//!
//! Each run records what it makes in a state file under its own state directory (DEMO_STATE_DIR)
//! and writes a copy of it with the results to DEMO_SUMMARY; the assertions read that copy. The
//! script names everything after its pid, so these tests run in parallel with each other and with
//! the flanneld tests. Should a test fail half-way, a guard runs `demo.sh --down` on its state
//! directory.

use crate::common::{require_root, unique, weft};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo.sh");

/// What a run recorded: its temp dir, namespaces, processes and results.
#[derive(Debug, Default)]
struct Summary {
    tmp: PathBuf,
    netns: Vec<String>,
    pids: Vec<(u32, String)>,
    results: BTreeMap<String, String>,
    exit: Option<i32>,
}

impl Summary {
    fn parse(text: &str) -> Summary {
        let mut s = Summary::default();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["tmp", dir] => s.tmp = PathBuf::from(dir),
                ["netns", name] => s.netns.push(name.to_string()),
                ["proc", pid, name] => s.pids.push((pid.parse().unwrap(), name.to_string())),
                ["result", k, v] => {
                    s.results.insert(k.to_string(), v.to_string());
                }
                ["exit", code] => s.exit = Some(code.parse().unwrap()),
                _ => {}
            }
        }
        s
    }
    fn result(&self, key: &str) -> u64 {
        self.results
            .get(key)
            .unwrap_or_else(|| panic!("no result {key} in {self:?}"))
            .parse()
            .unwrap()
    }
}

/// The links and the FLANNEL/CNI iptables lines of the machine's own namespace: the demo must
/// not add any.
#[derive(Debug, PartialEq)]
struct HostView {
    demo_like_links: Vec<String>,
    rules: Vec<String>,
}

fn host_view() -> HostView {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let mut demo_like_links: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_string())
        .filter(|n| {
            n.starts_with("flannel")
                || n.starts_with("veth")
                || ["cni0", "ul0", "u1", "u2", "u3", "wdvx"].contains(&n.as_str())
        })
        .collect();
    demo_like_links.sort();
    let mut rules = Vec::new();
    for table in ["filter", "nat"] {
        let out = Command::new("iptables")
            .args(["-w", "-t", table, "-S"])
            .output()
            .unwrap();
        rules.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains("FLANNEL") || l.contains("CNI-"))
                .map(|l| format!("{table}: {l}")),
        );
    }
    HostView {
        demo_like_links,
        rules,
    }
}

/// Whether `pid` is a live process (a zombie is not: an orphaned daemon whose reaper is slow).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

/// Live processes whose command line mentions `dir` (flanneld runs from `dir/bin`, etcd keeps
/// its data there, the iperf3 server its log).
fn processes_using(dir: &Path) -> Vec<String> {
    let needle = format!("{}/", dir.display());
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) && alive(pid) {
            found.push(format!("{pid}: {cmd}"));
        }
    }
    found
}

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// One demo run's private state directory and summary file, torn down on drop whatever happened.
struct Demo {
    state_dir: PathBuf,
    summary: PathBuf,
    before: HostView,
}

impl Demo {
    fn new() -> Demo {
        require_root();
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        Demo {
            state_dir: base.join(unique("-demo-state-")),
            summary: base.join(unique("-demo-summary-")),
            before: host_view(),
        }
    }

    fn command(&self, env: &[(&str, &str)]) -> Command {
        let mut c = Command::new("bash");
        c.arg(SCRIPT)
            .env("DEMO_STATE_DIR", &self.state_dir)
            .env("DEMO_SUMMARY", &self.summary)
            .env_remove("KEEP")
            .env_remove("BACKEND")
            .env_remove("NETWORK")
            .env_remove("IPERF_TIME")
            .env_remove("DEMO_ETCD_PORT")
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        c
    }

    /// Runs the demo with `env` and returns its output and summary.
    fn run(&self, env: &[(&str, &str)]) -> (Output, Summary) {
        let out = self.command(env).arg(weft()).output().unwrap();
        (out, self.read_summary())
    }

    fn read_summary(&self) -> Summary {
        let text = std::fs::read_to_string(&self.summary)
            .unwrap_or_else(|e| panic!("no summary at {:?}: {e}", self.summary));
        Summary::parse(&text)
    }

    /// `demo.sh --down` for this run's state directory (`make demo-down` with it).
    fn down(&self) -> Output {
        Command::new("bash")
            .arg(SCRIPT)
            .arg("--down")
            .env("DEMO_STATE_DIR", &self.state_dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Everything the run recorded is gone, and the machine's own namespace is as it was.
    fn assert_nothing_left(&self, s: &Summary) {
        assert!(!s.netns.is_empty(), "no namespace recorded: {s:?}");
        assert!(!s.tmp.as_os_str().is_empty(), "{s:?}");
        for ns in &s.netns {
            assert!(!netns_exists(ns), "namespace {ns} left behind");
        }
        let listed = Command::new("ip").args(["netns", "list"]).output().unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        for ns in &s.netns {
            assert!(
                !listed
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(ns)),
                "{ns} still in ip netns list"
            );
        }
        for (pid, name) in &s.pids {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            assert!(
                !(alive(*pid) && cmd.contains(&*s.tmp.to_string_lossy())),
                "{name} (pid {pid}) still running: {cmd}"
            );
        }
        assert_eq!(processes_using(&s.tmp), Vec::<String>::new());
        assert!(!s.tmp.exists(), "temp dir {:?} left behind", s.tmp);
        assert!(
            !self.state_dir.exists(),
            "state dir {:?} left behind",
            self.state_dir
        );
        assert_eq!(
            host_view(),
            self.before,
            "the machine's own namespace changed"
        );
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.state_dir.exists() {
            let _ = self.down();
        }
        let _ = std::fs::remove_file(&self.summary);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A full run with `backend`: every pod pair reachable, iperf3 measured, nothing left behind.
fn full_run(backend: &str) {
    let demo = Demo::new();
    let (out, s) = demo.run(&[("BACKEND", backend), ("IPERF_TIME", "2")]);
    let stdout = text(&out.stdout);
    let report = format!(
        "{stdout}\n--- stderr\n{}\n--- summary {s:?}",
        text(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert_eq!(s.exit, Some(0), "{report}");
    assert_eq!(s.results.get("verdict").map(String::as_str), Some("OK"));
    assert_eq!(s.result("pairs"), 30, "{report}");
    assert_eq!(s.result("reachable"), 30, "{report}");
    assert_eq!(s.result("cross_pairs"), 24, "{report}");
    assert_eq!(s.result("cross_reachable"), 24, "{report}");
    assert!(s.result("iperf_bps") > 0, "{report}");
    let verdict = format!("OK: 30/30 pod pairs reachable over {backend}");
    assert!(stdout.contains(&verdict), "{report}");
    // What the demo shows: three leases, the backend's device, the pods' addresses.
    assert_eq!(
        stdout.matches("/coreos.com/network/subnets/10.5.").count(),
        3,
        "{report}"
    );
    match backend {
        "vxlan" => assert!(stdout.contains("dev flannel.1 onlink"), "{report}"),
        "host-gw" => assert!(stdout.contains("via 192.168.77.2 dev eth0"), "{report}"),
        "udp" => assert!(stdout.contains("flannel0"), "{report}"),
        _ => unreachable!(),
    }
    assert!(stdout.contains("nothing left behind"), "{report}");
    demo.assert_nothing_left(&s);
}

#[test]
fn demo_vxlan_all_pods_reach_each_other_and_nothing_is_left() {
    full_run("vxlan");
}

#[test]
fn demo_host_gw_all_pods_reach_each_other_and_nothing_is_left() {
    full_run("host-gw");
}

#[test]
fn demo_udp_all_pods_reach_each_other_and_nothing_is_left() {
    full_run("udp");
}

#[test]
fn demo_keep_leaves_it_running_and_down_removes_everything() {
    let demo = Demo::new();
    let (out, s) = demo.run(&[("BACKEND", "host-gw"), ("KEEP", "1"), ("IPERF_TIME", "0")]);
    let stdout = text(&out.stdout);
    let report = format!("{stdout}\n--- stderr\n{}", text(&out.stderr));
    assert!(out.status.success(), "{report}");
    assert!(stdout.contains("make demo-down"), "{report}");
    assert!(stdout.contains("ip netns exec"), "{report}");
    // Still there: the namespaces, etcd and the three flanneld, the state file.
    for ns in &s.netns {
        assert!(netns_exists(ns), "{ns} gone although KEEP=1\n{report}");
    }
    assert_eq!(s.pids.len(), 4, "{s:?}");
    for (pid, name) in &s.pids {
        assert!(
            alive(*pid),
            "{name} (pid {pid}) not running although KEEP=1"
        );
    }
    assert_eq!(std::fs::read_dir(&demo.state_dir).unwrap().count(), 1);
    // The pods still reach each other across hosts.
    let h1a = s.netns.iter().find(|n| n.ends_with("-h1-a")).unwrap();
    let st = Command::new("ip")
        .args(["netns", "exec", h1a, "ping", "-c", "1", "-W", "2"])
        .arg(stdout_pod_ip(&stdout, "h3-b"))
        .status()
        .unwrap();
    assert!(
        st.success(),
        "h1-a cannot ping h3-b after the demo\n{report}"
    );

    let down = demo.down();
    let down_out = text(&down.stdout);
    assert!(
        down.status.success(),
        "{down_out}\n--- stderr\n{}",
        text(&down.stderr)
    );
    assert!(down_out.contains("CNI DEL for 6 pods"), "{down_out}");
    assert!(down_out.contains("nothing left behind"), "{down_out}");
    demo.assert_nothing_left(&s);
    // A second demo-down finds nothing to do.
    let again = demo.down();
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("no demo to tear down"));
}

/// The address of `pod` in the demo's pod table (`   h3-b   10.5.88.3    weft-demo-...`).
fn stdout_pod_ip(stdout: &str, pod: &str) -> String {
    stdout
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && f[0] == pod && f[2].starts_with("weft-demo-"))
                .then(|| f[1].to_string())
        })
        .unwrap_or_else(|| panic!("no address of {pod} in\n{stdout}"))
}

/// Whether the demo has begun its teardown: its state file's processes are being stopped, so
/// the flanneld it recorded are gone.
fn demo_tearing_down(demo: &Demo) -> bool {
    let state = std::fs::read_dir(&demo.state_dir)
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| std::fs::read_to_string(e.unwrap().path()).ok());
    let Some(state) = state else { return true };
    Summary::parse(&state)
        .pids
        .iter()
        .any(|(pid, name)| name == "flanneld" && !alive(*pid))
}

#[test]
fn demo_ctrl_c_tears_everything_down() {
    use std::os::unix::process::CommandExt;
    let demo = Demo::new();
    // Its own process group, as a shell in a terminal gives it: Ctrl-C = SIGINT to the group.
    let mut cmd = demo.command(&[("BACKEND", "vxlan")]);
    // SAFETY: signal() is async-signal-safe, and the closure touches nothing else. A terminal's
    // shell starts commands with SIGINT at its default; the test harness may have inherited it
    // ignored (a CI script started with `&`), and a non-interactive bash cannot trap a signal
    // ignored on entry, so the demo would never see the Ctrl-C.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let child = cmd
        .arg(weft())
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the three flanneld run (then there is something of every kind to remove).
    let start = Instant::now();
    loop {
        let state = std::fs::read_dir(&demo.state_dir)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .unwrap_or_default();
        if state.matches(" flanneld").count() == 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "flanneld never started; state:\n{state}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // bash drops a SIGINT that reaches it while it reaps a child that had already exited
    // normally (it takes the child to have handled it), so press Ctrl-C again, as a user would,
    // until the demo reacts; once its teardown runs it ignores further ones.
    let mut child = child;
    for _ in 0..10 {
        // SAFETY: kill has no memory-safety preconditions; the group is the script's own.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(2) && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        if child.try_wait().unwrap().is_some() || demo_tearing_down(&demo) {
            break;
        }
    }
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    let report = format!("{}\n--- stderr\n{stderr}", text(&out.stdout));
    assert_eq!(out.status.code(), Some(130), "{report}");
    assert!(stderr.contains("interrupted"), "{report}");
    assert!(
        text(&out.stdout).contains("nothing left behind"),
        "{report}"
    );
    let s = demo.read_summary();
    assert_eq!(
        s.pids.iter().filter(|(_, n)| n == "flanneld").count(),
        3,
        "{s:?}"
    );
    demo.assert_nothing_left(&s);
}

#[test]
fn demo_etcd_failing_to_start_shows_its_log_and_leaves_nothing() {
    let demo = Demo::new();
    // An etcd that says who it is and then fails as a real one does on a bad flag.
    let fake = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("-fake-etcd-"));
    std::fs::create_dir_all(&fake).unwrap();
    let script = "#!/bin/sh\n\
        [ \"$1\" = --version ] && { echo 'etcd Version: 3.4.23'; exit 0; }\n\
        echo '{\"level\":\"fatal\",\"msg\":\"failed to start etcd\",\"error\":\"fake etcd says no\"}' >&2\n\
        exit 1\n";
    let etcd = fake.join("etcd");
    std::fs::write(&etcd, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&etcd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    let (out, s) = demo.run(&[("PATH", &path)]);
    let _ = std::fs::remove_dir_all(&fake);
    let stderr = text(&out.stderr);
    let report = format!("{}\n--- stderr\n{stderr}", text(&out.stdout));
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(stderr.contains("etcd exited"), "{report}");
    assert!(stderr.contains("fake etcd says no"), "{report}");
    assert!(stderr.contains("etcd failed to start"), "{report}");
    assert_eq!(s.exit, Some(1));
    demo.assert_nothing_left(&s);
}

#[test]
fn demo_refuses_an_unknown_backend_before_making_anything() {
    let demo = Demo::new();
    let out = demo
        .command(&[("BACKEND", "ipip")])
        .arg(weft())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unknown BACKEND 'ipip'"), "{stderr}");
    assert!(stderr.contains("BACKEND=host-gw"), "{stderr}");
    assert!(!demo.state_dir.exists());
    assert!(!demo.summary.exists());
}
