//! A real dockerd (Debian's docker.io) started on what mk-docker-opts generates, the way
//! flanneld.service and the docker.service drop-in wire them, in a throwaway network namespace
//! and mount namespace: docker0 must get FLANNEL_SUBNET's gateway, docker's network the MTU and
//! the inverted ip-masq, and a container an address in the subnet with that MTU. Nothing of the
//! host is used or left behind. Where dockerd cannot start at all, the test says so loudly and
//! skips; where it refuses the options, it fails.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs weft's mk-docker-opts with `args` and a clean environment.
fn weft_run(args: &[&str]) -> Output {
    Command::new(bin_dir().join("mk-docker-opts"))
        .args(args)
        .env_clear()
        .env("PATH", PATH)
        .output()
        .unwrap()
}

/// A dockerd of its own: its network namespace (docker0 and its iptables rules live there), a
/// private mount namespace with /run on a tmpfs (so it finds no host containerd and leaves no
/// /run/docker behind), its data, exec root, socket, pidfile, trust key and cgroup parent under
/// a temp dir or a unique name. Drop stops it and everything it started, also after a panic.
struct Dockerd {
    ns: Netns,
    dir: TempDir,
    cgroup_parent: String,
    child: Option<std::process::Child>,
}

/// dockerd and the docker CLI from Debian's docker.io.
fn docker_bins() -> (PathBuf, PathBuf) {
    let find = |names: &[&str]| {
        names
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{names:?} missing: install Debian's docker.io (make deps)"))
    };
    (
        find(&["/usr/sbin/dockerd", "/usr/bin/dockerd"]),
        find(&["/usr/bin/docker", "/usr/local/bin/docker"]),
    )
}

impl Dockerd {
    fn new() -> Dockerd {
        let ns = Netns::new("dk");
        let dir = TempDir::new("dk");
        std::fs::write(
            dir.path().join("daemon.json"),
            serde_json::json!({"deprecated-key-path": dir.path().join("key.json")}).to_string(),
        )
        .unwrap();
        Dockerd {
            cgroup_parent: format!("/{}", unique("-dockerd-")),
            ns,
            dir,
            child: None,
        }
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// Starts dockerd with the options of `env_file` (sourced, as systemd's EnvironmentFile reads
    /// it, then `$DOCKER_NETWORK_OPTIONS` split into words, as the docker.service drop-in passes
    /// it). Returns Err(log) if it exits or does not answer within 60 s.
    fn start(&mut self, env_file: Option<&Path>) -> Result<(), String> {
        let (dockerd, _) = docker_bins();
        let t = self.dir.path();
        let log = t.join(format!(
            "dockerd-{}.log",
            if env_file.is_some() { "opts" } else { "plain" }
        ));
        let script = r#"DOCKER_NETWORK_OPTIONS=
if [ -n "${ENV_FILE:-}" ]; then . "$ENV_FILE"; fi
# shellcheck disable=SC2086
exec "$@" $DOCKER_NETWORK_OPTIONS"#;
        let mut cmd = in_private_mounts(&self.ns, t, script);
        cmd.arg(&dockerd)
            .arg("--config-file")
            .arg(t.join("daemon.json"))
            .arg("--data-root")
            .arg(t.join("data"))
            .arg("--exec-root")
            .arg(t.join("exec"))
            .arg("--pidfile")
            .arg(t.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", self.sock().display()))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-parent",
                &self.cgroup_parent,
            ])
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", t)
            .stdin(std::process::Stdio::null());
        let out = std::fs::File::create(&log).unwrap();
        cmd.stderr(out.try_clone().unwrap()).stdout(out);
        if let Some(f) = env_file {
            cmd.env("ENV_FILE", f);
        }
        self.child = Some(cmd.spawn().unwrap());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if self.docker(&["version"]).status.success() {
                return Ok(());
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            if exited.is_some() || std::time::Instant::now() > deadline {
                self.stop();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                return Err(tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    fn docker(&self, args: &[&str]) -> Output {
        let (_, cli) = docker_bins();
        Command::new(cli)
            .arg("-H")
            .arg(format!("unix://{}", self.sock().display()))
            .args(args)
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", self.dir.path())
            .env("DOCKER_CONFIG", self.dir.path().join("cli"))
            .output()
            .unwrap()
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(o.status.success(), "docker {args:?}: {o:?}");
        String::from_utf8(o.stdout).unwrap()
    }

    /// SIGTERM (dockerd stops its containers and its containerd), SIGKILL after 20 s; then
    /// whatever still runs from this instance (a containerd-shim outlives a killed dockerd) and
    /// its cgroups.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            // SAFETY: kill has no memory preconditions; pid is our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        for pid in self.leftover_pids() {
            // SAFETY: as above; a pid that vanished in between only makes kill fail.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        for dir in self.cgroup_dirs() {
            remove_cgroup(&dir);
        }
    }

    fn leftover_pids(&self) -> Vec<i32> {
        pids_naming(self.dir.path())
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        cgroup_dirs(&self.cgroup_parent)
    }
}

/// `sh -c "PRELUDE; then" sh DIR ARGS...` in `ns` and a private mount namespace of its own, where
/// the prelude mounts sysfs anew (so /sys/class/net is the namespace's), keeps the host's cgroup
/// mounts (dockerd, podman and runc need them) and makes /run a tmpfs (no host daemon state is
/// seen or left). `$T` in `then` is `dir`; the caller appends ARGS (`"$@"`).
pub(crate) fn in_private_mounts(ns: &Netns, dir: &Path, then: &str) -> Command {
    let script = format!(
        r#"set -eu
T=$1; shift
mkdir -p "$T/cg"
mount --rbind /sys/fs/cgroup "$T/cg"
mount -t sysfs sysfs /sys
mount --rbind "$T/cg" /sys/fs/cgroup
umount -l "$T/cg"
mount -t tmpfs tmpfs /run
{then}"#
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "nsenter"])
        .arg(format!("--net={}", ns.path()))
        .args(["--", "sh", "-c", &script, "sh"])
        .arg(dir);
    cmd
}

/// Processes whose command line names `dir` (a daemon's, or its containers', own directory).
pub(crate) fn pids_naming(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            v.push(pid);
        }
    }
    v
}

/// The cgroup `parent` in every mounted hierarchy (v2 and each v1 controller).
pub(crate) fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let rel = parent.trim_start_matches('/');
    let mut v = vec![Path::new("/sys/fs/cgroup").join(rel)];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        v.extend(rd.flatten().map(|e| e.path().join(rel)));
    }
    v.retain(|p| p.is_dir());
    v
}

/// Kills what is left in a cgroup and removes it, children first.
pub(crate) fn remove_cgroup(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                remove_cgroup(&e.path());
            }
        }
    }
    for pid in std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
    {
        if let Ok(pid) = pid.parse::<i32>() {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    // A killed process leaves its cgroup only once it has exited: retry for a second.
    for _ in 0..20 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What of the host a dockerd would touch by default, listed (path → sorted entries, or absent).
fn host_docker_state() -> BTreeMap<&'static str, Option<Vec<String>>> {
    [
        "/etc/docker",
        "/run/docker",
        "/var/lib/docker",
        "/run/containerd",
        "/var/run/docker.sock",
    ]
    .into_iter()
    .map(|p| {
        let listing = std::fs::read_dir(p).ok().map(|rd| {
            let mut v: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        });
        let listing = listing.or_else(|| Path::new(p).exists().then(Vec::new));
        (p, listing)
    })
    .collect()
}

/// A root filesystem of /usr/bin/sleep and the libraries ldd names: an image without a registry.
fn sleep_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/usr/bin/sleep", root.join("bin/sleep")).unwrap();
    let ldd = Command::new("ldd").arg("/usr/bin/sleep").output().unwrap();
    for word in String::from_utf8_lossy(&ldd.stdout).split_whitespace() {
        if word.starts_with('/') && Path::new(word).exists() {
            let dst = root.join(word.trim_start_matches('/'));
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(word, dst).unwrap();
        }
    }
    let tar = dir.join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

fn addr_of(ns: &Netns, dev: &str) -> (Vec<String>, u64) {
    let j = ns.ipj(&["addr", "show", "dev", dev]);
    let addrs = j[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    (addrs, j[0]["mtu"].as_u64().unwrap())
}

/// flanneld's subnet.env → mk-docker-opts as the unit runs it → dockerd with the drop-in's
/// `$DOCKER_NETWORK_OPTIONS`: docker0 gets FLANNEL_SUBNET's gateway, docker's network has the
/// MTU and no masquerading (flanneld does it: FLANNEL_IPMASQ=true), and a container gets an
/// address in the subnet with that MTU (docker0 itself follows its ports' MTU).
#[test]
fn dockerd_runs_on_the_generated_options() {
    require_root();
    docker_bins();
    let before = host_docker_state();
    let mut dk = Dockerd::new();
    let t = dk.dir.path().to_path_buf();
    let subnet_env = t.join("subnet.env");
    std::fs::write(
        &subnet_env,
        "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.74.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n",
    )
    .unwrap();
    let opts = t.join("run-flannel-docker");
    let o = weft_run(&[
        "-f",
        subnet_env.to_str().unwrap(),
        "-k",
        "DOCKER_NETWORK_OPTIONS",
        "-d",
        opts.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        std::fs::read_to_string(&opts).unwrap(),
        "DOCKER_OPT_BIP=\"--bip=10.1.74.1/24\"\nDOCKER_OPT_IPMASQ=\"--ip-masq=false\"\n\
         DOCKER_OPT_MTU=\"--mtu=1472\"\n\
         DOCKER_NETWORK_OPTIONS=\" --bip=10.1.74.1/24 --ip-masq=false --mtu=1472\"\n"
    );

    if let Err(log) = dk.start(Some(&opts)) {
        // Our options, or this machine? The same dockerd without them tells.
        match dk.start(None) {
            Ok(()) => panic!("dockerd refused the generated options; its log:\n{log}"),
            Err(plain) => {
                eprintln!(
                    "\n!!!!!!!! SKIPPED dockerd_runs_on_the_generated_options: dockerd cannot start \
                     on this machine even without flannel's options, so nothing here says whether \
                     it accepts them. Its log:\n{plain}\n!!!!!!!!\n"
                );
                return;
            }
        }
    }

    let (addrs, _) = addr_of(&dk.ns, "docker0");
    assert_eq!(addrs, ["10.1.74.1/24"]);
    let net: Value =
        serde_json::from_str(&dk.docker_ok(&["network", "inspect", "bridge"])).unwrap();
    let options = &net[0]["Options"];
    assert_eq!(options["com.docker.network.driver.mtu"], "1472", "{net}");
    assert_eq!(
        options["com.docker.network.bridge.enable_ip_masquerade"], "false",
        "{net}"
    );
    assert_eq!(
        net[0]["IPAM"]["Config"][0]["Subnet"], "10.1.74.0/24",
        "{net}"
    );
    assert_eq!(net[0]["IPAM"]["Config"][0]["Gateway"], "10.1.74.1", "{net}");
    // docker made its NAT chains in the namespace, but no masquerade rule for the subnet.
    let nat = dk.ns.nat_rules(false);
    assert!(nat.iter().any(|r| r == "-N DOCKER"), "{nat:?}");
    assert!(
        !nat.iter()
            .any(|r| r.contains("10.1.74.0/24") && r.contains("MASQUERADE")),
        "{nat:?}"
    );

    let tar = sleep_rootfs(&t);
    dk.docker_ok(&["import", tar.to_str().unwrap(), "weft-test/sleep:1"]);
    let run = dk.docker(&[
        "run",
        "-d",
        "--name",
        "pod",
        "weft-test/sleep:1",
        "/bin/sleep",
        "300",
    ]);
    if !run.status.success() {
        eprintln!(
            "\n!!!!!!!! PARTLY SKIPPED dockerd_runs_on_the_generated_options: dockerd accepted the \
             options and docker0 is right, but this machine cannot run a container, so the \
             container's MTU is not checked: {}\n!!!!!!!!\n",
            String::from_utf8_lossy(&run.stderr)
        );
    } else {
        let pid = dk.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "pod"]);
        let ip = |args: &[&str]| {
            let out = Command::new("nsenter")
                .args(["-t", pid.trim(), "-n", "ip", "-j"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        };
        let eth0 = ip(&["addr", "show", "dev", "eth0"]);
        assert_eq!(eth0[0]["mtu"], 1472, "{eth0}");
        let a = &eth0[0]["addr_info"][0];
        assert_eq!(a["prefixlen"], 24, "{eth0}");
        assert!(
            a["local"].as_str().unwrap().starts_with("10.1.74."),
            "{eth0}"
        );
        let routes = ip(&["route", "show", "default"]);
        assert_eq!(routes[0]["gateway"], "10.1.74.1", "{routes}");
        let (_, mtu) = addr_of(&dk.ns, "docker0");
        assert_eq!(mtu, 1472);
        dk.docker_ok(&["rm", "-f", "pod"]);
    }

    dk.stop();
    assert!(
        dk.leftover_pids().is_empty(),
        "processes left: {:?}",
        dk.leftover_pids()
    );
    assert!(
        dk.cgroup_dirs().is_empty(),
        "cgroups left: {:?}",
        dk.cgroup_dirs()
    );
    assert_eq!(host_docker_state(), before, "dockerd touched the host");
}

/// The socket of the containerd that dockerd started for itself (under its exec root).
fn containerd_sock(dir: &Path) -> Option<PathBuf> {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                todo.push(p);
            } else if p.file_name().is_some_and(|n| n == "containerd.sock") {
                return Some(p);
            }
        }
    }
    None
}

/// `make image`'s archive, as the README tells a node to load it: `docker load -i` names it
/// weft:VERSION, and `docker run` of it prints the static binary's version (its command), runs
/// an applet by first argument and through its /opt/bin link; `ctr images import` into the
/// containerd beside that dockerd takes the same archive under docker.io/library/weft:VERSION.
#[test]
fn dockerd_loads_and_runs_the_image() {
    require_root();
    docker_bins();
    let before = host_docker_state();
    let mut dk = Dockerd::new();
    let t = dk.dir.path().to_path_buf();
    let archive = crate::image::build_image(&t.join("image"), "022");
    if let Err(log) = dk.start(None) {
        eprintln!(
            "\n!!!!!!!! SKIPPED dockerd_loads_and_runs_the_image: dockerd cannot start on this \
             machine. Its log:\n{log}\n!!!!!!!!\n"
        );
        return;
    }
    let tag = format!("weft:{}", env!("CARGO_PKG_VERSION"));
    let out = dk.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {tag}")), "{out}");
    let version = crate::dist_support::version_of(&crate::dist_support::static_bin());
    let run = dk.docker(&["run", "--rm", "--network", "none", &tag]);
    if !run.status.success() {
        eprintln!(
            "\n!!!!!!!! PARTLY SKIPPED dockerd_loads_and_runs_the_image: dockerd loaded the image \
             but this machine cannot run a container: {}\n!!!!!!!!\n",
            String::from_utf8_lossy(&run.stderr)
        );
    } else {
        assert_eq!(String::from_utf8_lossy(&run.stdout), version);
        let list = dk.docker_ok(&["run", "--rm", "--network", "none", &tag, "--list"]);
        assert!(list.lines().any(|l| l == "flanneld"), "{list}");
        for entry in [
            &["--entrypoint", "/opt/bin/loopback"][..],
            &["--entrypoint", "/opt/bin/weft"],
        ] {
            let mut args = vec![
                "run",
                "--rm",
                "--network",
                "none",
                "-e",
                "CNI_COMMAND=VERSION",
            ];
            args.extend_from_slice(entry);
            args.push(&tag);
            if entry[1].ends_with("weft") {
                args.push("loopback");
            }
            let v: Value = serde_json::from_str(&dk.docker_ok(&args)).unwrap();
            assert!(v["supportedVersions"].is_array(), "{entry:?}: {v}");
        }
    }

    let sock = containerd_sock(&t).expect("dockerd's containerd socket under its exec root");
    let ns = unique("weft-image-");
    let ctr = |args: &[&str]| {
        Command::new("ctr")
            .arg("--address")
            .arg(&sock)
            .args(["--namespace", &ns])
            .args(args)
            .env_clear()
            .env("PATH", PATH)
            .output()
            .expect("ctr (Debian's containerd) missing: make deps")
    };
    let o = ctr(&["images", "import", archive.to_str().unwrap()]);
    assert!(o.status.success(), "ctr images import: {o:?}");
    let o = ctr(&["images", "list", "--quiet"]);
    assert!(o.status.success(), "{o:?}");
    let names = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(names.trim(), format!("docker.io/library/{tag}"), "{names}");
    let o = ctr(&["images", "check"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("complete"),
        "ctr images check: {o:?}"
    );

    dk.stop();
    assert!(dk.leftover_pids().is_empty(), "{:?}", dk.leftover_pids());
    assert!(dk.cgroup_dirs().is_empty(), "{:?}", dk.cgroup_dirs());
    assert_eq!(host_docker_state(), before, "dockerd touched the host");
}
