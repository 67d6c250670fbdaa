//! A real client of the plugins: Debian's podman 4.3 (CNI backend), whose plugin directory holds
//! only weft's symlinks, runs `podman run -p 8080:80` on a bridge + portmap conflist, and the
//! container's HTTP server answers through the host port. podman runs in a network namespace
//! and a private mount namespace of its own (its /run a tmpfs, its storage, config and cgroup
//! parent under names of this test), as the dockerd test keeps its daemon, so nothing of the
//! host is used or left behind.

use crate::common::*;
use crate::dockerd::{cgroup_dirs, in_private_mounts, pids_naming, remove_cgroup};
use std::path::Path;
use std::process::{Command, Output};

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A podman of its own, removed with everything it made on drop.
struct Podman {
    ns: Netns,
    dir: TempDir,
    cgroup_parent: String,
    /// Holds the mount namespace every podman command runs in: podman keeps the container's
    /// network namespace and runc's state under /run between commands.
    holder: std::process::Child,
}

impl Podman {
    fn new(net_conf: &str) -> Podman {
        assert!(
            Path::new("/usr/bin/podman").exists(),
            "no /usr/bin/podman: install Debian's podman (make deps)"
        );
        let ns = Netns::new("pm");
        let dir = TempDir::new("pm");
        let holder = in_private_mounts(&ns, dir.path(), "touch \"$T/ready\"\nexec sleep 100000")
            .spawn()
            .unwrap();
        let p = Podman {
            ns,
            dir,
            cgroup_parent: format!("/{}", unique("-podman-")),
            holder,
        };
        let ready = p.dir.path().join("ready");
        weft_lab::wait_for(
            std::time::Duration::from_secs(10),
            "podman's mount namespace",
            || ready.exists().then_some(()),
        );
        let d = p.dir.path();
        for sub in ["root", "runroot", "tmp", "net.d", "rootfs"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(
            d.join("containers.conf"),
            format!(
                "[network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\"]\n\
                 network_config_dir = \"{}\"\n[engine]\ncgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\nevents_logfile_path = \"{}\"\n",
                bin_dir().display(),
                d.join("net.d").display(),
                d.join("events.log").display()
            ),
        )
        .unwrap();
        std::fs::write(d.join("net.d/weftnet.conflist"), net_conf).unwrap();
        p
    }

    /// `podman ARGS` in this podman's namespaces, with its storage and config.
    fn run(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new("nsenter")
            .arg("-t")
            .arg(self.holder.id().to_string())
            // Entering a mount namespace moves to its root; --root and --wd go back to the
            // holder's, which differ when the suite itself runs in a chroot (the fresh root).
            .args(["--mount", "--net", "--root", "--wd", "--"])
            .arg("podman")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(args)
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", d)
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "podman {args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// An image with nothing but the directories a container needs and the merged-/usr links:
    /// its programs come from the host's /usr, mounted read-only (no registry is reachable).
    fn import_empty_image(&self) -> &'static str {
        let rootfs = self.dir.path().join("rootfs");
        for sub in ["usr", "etc", "tmp", "proc", "sys", "dev"] {
            std::fs::create_dir_all(rootfs.join(sub)).unwrap();
        }
        for (link, to) in [
            ("bin", "usr/bin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("sbin", "usr/sbin"),
        ] {
            std::os::unix::fs::symlink(to, rootfs.join(link)).unwrap();
        }
        let tar = self.dir.path().join("rootfs.tar");
        let o = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        self.ok(&["import", tar.to_str().unwrap(), "localhost/weft-empty:1"]);
        "localhost/weft-empty:1"
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-f", "-t", "0", "-a"]);
        for pid in pids_naming(self.dir.path()) {
            // SAFETY: kill has no memory preconditions; a pid gone in between only fails.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        std::thread::sleep(std::time::Duration::from_millis(200));
        for dir in cgroup_dirs(&self.cgroup_parent) {
            remove_cgroup(&dir);
        }
    }
}

#[test]
fn podman_publishes_a_port_through_wefts_bridge_and_portmap() {
    let data = TempDir::new("pmipam");
    // The bridge lives in podman's own namespace: a fixed name cannot clash.
    let bridge = "wtpm0";
    let conf = serde_json::json!({
        "cniVersion": "0.4.0", "name": "weftnet",
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true,
             "hairpinMode": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.7.0/24"}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data.path()}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ]
    });
    let pm = Podman::new(&conf.to_string());
    pm.ns.ip(&["link", "set", "lo", "up"]);
    let image = pm.import_empty_image();
    let server = "import http.server, socketserver\n\
class H(http.server.BaseHTTPRequestHandler):\n    \
    def do_GET(s):\n        s.send_response(200); s.end_headers(); s.wfile.write(b'weft-podman')\n\
socketserver.TCPServer(('', 80), H).serve_forever()";
    // runc cannot raise limits past the test's own; podman's rootful default is 1048576.
    pm.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
        "--cgroup-parent",
        &pm.cgroup_parent,
        "--network",
        "weftnet",
        "-p",
        "8080:80",
        "-v",
        "/usr:/usr:ro",
        image,
        "python3",
        "-c",
        server,
    ]);
    let gw = "10.88.7.1";
    let nat = pm.ns.nat_rules(false).join("\n");
    assert!(
        nat.contains("--to-destination 10.88.7.2:80"),
        "no DNAT made: {nat}"
    );
    let url = format!("http://{gw}:8080/");
    weft_lab::wait_for(
        std::time::Duration::from_secs(10),
        &format!("the container's answer on {url}"),
        || {
            let (ok, out) = pm.ns.exec(&["curl", "-s", "-m", "2", &url]);
            (ok && out.contains("weft-podman")).then_some(())
        },
    );
    pm.ok(&["rm", "-f", "-t", "0", "web"]);
    let nat = pm.ns.nat_rules(false).join("\n");
    assert!(!nat.contains("CNI-DN-"), "rules left after rm: {nat}");
    assert!(
        reserved_ips(&data.path().join("weftnet")).is_empty(),
        "address left reserved"
    );
}
