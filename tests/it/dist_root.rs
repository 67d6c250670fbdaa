//! install.sh into a fresh root: a chroot inside a throwaway mount namespace, with the host's
//! /usr read-only inside it (for sh and the base tools) and nothing else installed. Every link
//! runs its applet, the units pass `systemd-analyze verify`, and uninstall.sh leaves the root as
//! it was, file for file.

use crate::common::*;
use crate::dist_support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A root with nothing in it but the host's /usr (read-only, for sh and coreutils) and an empty
/// /usr/local of its own, entered with chroot inside a private mount namespace made anew for
/// each command: nothing is mounted on the host, and the root's files stay on disk in between.
struct FreshRoot {
    t: TempDir,
}

impl FreshRoot {
    fn new() -> FreshRoot {
        require_root();
        let t = TempDir::new("dist-root");
        let root = t.path().join("root");
        for d in ["etc", "opt", "tmp", "var", "run", "dev", "proc", "usr"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::create_dir_all(t.path().join("usrlocal")).unwrap();
        std::fs::write(root.join("dev/null"), "").unwrap();
        // Merged /usr: /bin and friends are links into it; a split one gets bind mounts.
        for d in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let host = Path::new("/").join(d);
            if let Ok(target) = std::fs::read_link(&host) {
                std::os::unix::fs::symlink(target, root.join(d)).unwrap();
            } else if host.is_dir() {
                std::fs::create_dir_all(root.join(d)).unwrap();
            }
        }
        FreshRoot { t }
    }

    fn root(&self) -> PathBuf {
        self.t.path().join("root")
    }

    /// Runs `cmd` chrooted into the root, with a clean environment plus `env`.
    fn run(&self, cmd: &[&str], env: &[(&str, &str)]) -> Output {
        self.run_with(&[], "", cmd, env)
    }

    /// [`FreshRoot::run`] under `prefix` (e.g. `ip netns exec HOST`), with `mounts` (shell
    /// lines, `$R` the root) run in the private mount namespace before the chroot.
    fn run_with(
        &self,
        prefix: &[&str],
        mounts: &str,
        cmd: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let script = format!(
            r#"set -eu
R=$1; L=$2; shift 2
mount --bind /usr "$R/usr"
mount -o remount,bind,ro "$R/usr"
mount --bind "$L" "$R/usr/local"
for d in bin sbin lib lib32 lib64 libx32; do
    if [ -d "/$d" ] && [ ! -L "/$d" ]; then
        mount --bind "/$d" "$R/$d"
        mount -o remount,bind,ro "$R/$d"
    fi
done
mount --bind /dev/null "$R/dev/null"
mount -t proc proc "$R/proc"
{mounts}
exec chroot "$R" "$@""#
        );
        let (program, pre) = match prefix.split_first() {
            Some((p, rest)) => (*p, rest.to_vec()),
            None => ("unshare", Vec::new()),
        };
        let mut c = Command::new(program);
        c.args(&pre);
        if !prefix.is_empty() {
            c.arg("unshare");
        }
        c.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .arg(self.root())
        .arg(self.t.path().join("usrlocal"))
        .args(cmd)
        .env_clear()
        .env("PATH", PATH);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// The root's files as the chroot sees them (its /usr/local included, the host's /usr not).
    fn tree(&self) -> BTreeMap<String, String> {
        let mut t = tree(&self.root());
        for (k, v) in tree(&self.t.path().join("usrlocal")) {
            t.insert(format!("usr/local/{k}"), v);
        }
        t
    }

    /// Unpacks the tarball into the root's /tmp; returns the package path inside the root.
    fn unpack(&self) -> String {
        unpack(&self.root().join("tmp/pkg"));
        format!("/tmp/pkg/{}", tarball_name())
    }
}

#[test]
fn fresh_root_install_runs_every_applet_and_uninstall_restores_it() {
    let r = FreshRoot::new();
    let pkg = r.unpack();
    let before = r.tree();
    let out = quiet_ok(r.run(&["/bin/sh", &format!("{pkg}/install.sh")], &[]));
    assert!(out.contains("weft is installed"), "{out}");
    let after = r.tree();
    assert!(after["usr/local/bin/weft"].starts_with("file 755 "));

    let (cni, bins) = install_lists();
    for a in &cni {
        let path = format!("/opt/cni/bin/{a}");
        assert_eq!(after[&path[1..]], "link -> /usr/local/bin/weft");
        let o = r.run(&[&path], &[("CNI_COMMAND", "VERSION")]);
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let j: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{a}: {e}: {o:?}"));
        if a == "flannel" && j.get("supportedVersions").is_none() {
            // Reserved until the flannel plugin lands: its error names it.
            assert!(j["msg"].as_str().unwrap().contains("flannel applet"), "{j}");
        } else {
            let v = j["supportedVersions"]
                .as_array()
                .unwrap_or_else(|| panic!("{a}: {j}"));
            assert!(v.iter().any(|x| x == "1.1.0"), "{a}: {j}");
        }
    }
    for a in &bins {
        let path = format!("/usr/local/bin/{a}");
        assert_eq!(after[&path[1..]], "link -> /usr/local/bin/weft");
        let o = r.run(&[&path, "-h"], &[]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let want = if a == "mk-docker-opts" {
            "usage: mk-docker-opts"
        } else {
            a.as_str()
        };
        assert!(text.contains(want), "{a}: {o:?}");
    }
    // mk-docker-opts works in the bare root: the unit's own command on a subnet.env.
    std::fs::create_dir_all(r.root().join("run/flannel")).unwrap();
    std::fs::copy(
        repo().join("testdata/mk-docker-opts/input/ipmasq-true.env"),
        r.root().join("run/flannel/subnet.env"),
    )
    .unwrap();
    ok(r.run(
        &[
            "/usr/local/bin/mk-docker-opts",
            "-k",
            "DOCKER_NETWORK_OPTIONS",
            "-d",
            "/run/flannel/docker",
        ],
        &[],
    ));
    assert_eq!(
        std::fs::read(r.root().join("run/flannel/docker")).unwrap(),
        std::fs::read(repo().join("testdata/mk-docker-opts/golden/ipmasq-true-unit.env")).unwrap()
    );
    std::fs::remove_dir_all(r.root().join("run/flannel")).unwrap();

    let out = quiet_ok(r.run(&["/bin/sh", &format!("{pkg}/install.sh")], &[]));
    assert!(out.contains("nothing to do"), "{out}");
    assert_eq!(r.tree(), after);

    quiet_ok(r.run(&["/bin/sh", "/usr/local/lib/weft/uninstall.sh"], &[]));
    assert_eq!(r.tree(), before, "uninstall did not restore the root");
}

/// `systemd-analyze verify` on the installed units, inside the fresh root (so flanneld and
/// mk-docker-opts exist where the unit says, and docker.service is the host's packaged one with
/// our drop-in).
#[test]
fn units_pass_systemd_analyze_verify() {
    assert!(
        Path::new("/usr/bin/systemd-analyze").exists(),
        "no /usr/bin/systemd-analyze: Debian's systemd package (make deps installs it)"
    );
    assert!(
        Path::new("/lib/systemd/system/docker.service").exists(),
        "no docker.service to verify the drop-in against: Debian's docker.io (make deps installs it)"
    );
    let r = FreshRoot::new();
    let pkg = r.unpack();
    ok(r.run(&["/bin/sh", &format!("{pkg}/install.sh")], &[]));
    let verify = |unit: &str| {
        let o = r.run(&["systemd-analyze", "verify", unit], &[]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            o.status.success() && err.trim().is_empty(),
            "systemd-analyze verify {unit}: {o:?}"
        );
    };
    verify("/etc/systemd/system/flanneld.service");
    {
        verify("docker.service");
        // Drop-ins in that directory are really read: one with a missing binary fails verify.
        let broken = r
            .root()
            .join("etc/systemd/system/docker.service.d/99-broken.conf");
        std::fs::write(
            &broken,
            "[Service]\nExecStartPre=/usr/local/bin/no-such-binary\n",
        )
        .unwrap();
        let o = r.run(&["systemd-analyze", "verify", "docker.service"], &[]);
        assert!(!o.status.success(), "{o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("no-such-binary"),
            "{o:?}"
        );
        std::fs::remove_file(broken).unwrap();
    }
    // A broken unit does fail: the check can catch something.
    std::fs::write(
        r.root().join("etc/systemd/system/broken.service"),
        "[Service]\nType=notify\nExecStart=/usr/local/bin/no-such-binary\nRestart=sometimes\n",
    )
    .unwrap();
    let o = r.run(
        &[
            "systemd-analyze",
            "verify",
            "/etc/systemd/system/broken.service",
        ],
        &[],
    );
    assert!(!o.status.success() || !o.stderr.is_empty(), "{o:?}");
}

/// The air-gapped install as a Kubernetes-less host runs it: two hosts, each a fresh root with
/// only the tarball installed (Debian's Go plugins hidden), flanneld leasing from a real etcd,
/// and pods attached by the installed `cnitool` through the installed 10-flannel.conflist, as
/// shipped (flannel delegating to bridge, then portmap). The pods get addresses in their host's
/// lease, reach each other across the vxlan overlay, and a host port answers from the other host.
#[test]
fn the_shipped_conflist_serves_pods_on_a_weft_only_host() {
    use crate::common::overlay::lab;
    use crate::portmap::{ask, serve};
    let mut tb = lab(2);
    tb.set_config(r#"{"Network":"10.48.0.0/16","Backend":{"Type":"vxlan"}}"#);
    tb.start_all(&[]);
    let roots: Vec<FreshRoot> = (0..2).map(|_| FreshRoot::new()).collect();
    let pods: Vec<Netns> = (0..2).map(|_| Netns::new("crp")).collect();
    for r in &roots {
        let pkg = r.unpack();
        ok(r.run(&["/bin/sh", &format!("{pkg}/install.sh")], &[]));
    }
    // On each host: its flanneld's subnet.env as /run/flannel, the pods' namespaces, the
    // host's iptables alternatives; no Go plugins anywhere.
    let cnitool = |i: usize, verb: &str, env: &[(&str, &str)]| {
        let mounts = format!(
            "mkdir -p \"$R/run/flannel\" \"$R/run/netns\" \"$R/etc/alternatives\"\n\
             mount --bind {} \"$R/run/flannel\"\n\
             mount --rbind /run/netns \"$R/run/netns\"\n\
             mount --bind /etc/alternatives \"$R/etc/alternatives\"\n\
             mount -t tmpfs tmpfs \"$R/usr/lib/cni\"\n\
             test ! -e \"$R/usr/lib/cni/bridge\"",
            tb.hosts[i].dir.display()
        );
        let mut e = vec![("CNI_PATH", "/opt/cni/bin")];
        e.extend_from_slice(env);
        let o = roots[i].run_with(
            &["ip", "netns", "exec", &tb.hosts[i].ns.name],
            &mounts,
            &["/usr/local/bin/cnitool", verb, "cbr0", &pods[i].path()],
            &e,
        );
        Outcome {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    };
    let caps = r#"{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}"#;
    let mut ips = Vec::new();
    for (i, root) in roots.iter().enumerate() {
        let res = cnitool(i, "add", &[("CAP_ARGS", caps)]).ok();
        assert_eq!(res["cniVersion"], "0.3.1");
        let ip = res["ips"][0]["address"].as_str().unwrap().to_string();
        let subnet = tb.hosts[i].subnet();
        assert_eq!(
            crate::common::overlay::net_of(&ip),
            crate::common::overlay::net_of(&subnet),
            "pod {ip} outside the lease {subnet}"
        );
        ips.push(ip.split('/').next().unwrap().to_string());
        // The result is cached inside the root, where libcni keeps it.
        let results = root.root().join("var/lib/cni/results");
        assert_eq!(std::fs::read_dir(&results).unwrap().count(), 1);
    }
    for (i, j) in [(0, 1), (1, 0)] {
        assert!(
            pods[i].ping(&ips[j]),
            "pod {i} cannot reach {} on host {j}",
            ips[j]
        );
    }
    let _srv = serve(&pods[0], 80, 80, "pod0");
    let reply = ask(&tb.hosts[1].ns, &tb.hosts[0].ip, 8080, false);
    assert!(
        reply.starts_with("pod0 "),
        "host port 8080 on host 0: {reply}"
    );
    for (i, pod) in pods.iter().enumerate() {
        // The shipped list is 0.3.1, as kube-flannel's: a runtime may not CHECK it.
        cnitool(i, "check", &[]).err(1);
        cnitool(i, "del", &[]).ok();
        assert_eq!(pod.link_names(), vec!["lo".to_string()]);
        let nat = tb.hosts[i].ns.nat_rules(false).join("\n");
        assert!(!nat.contains("CNI-DN-"), "{nat}");
        let results = roots[i].root().join("var/lib/cni/results");
        assert_eq!(std::fs::read_dir(&results).unwrap().count(), 0);
    }
}
