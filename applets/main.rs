//! The weft binary: one table of applets, dispatched on the name it was called by
//! (`/opt/cni/bin/host-local` → host-local) or on its first argument (`weft host-local`).

mod cnitool;
mod dispatch;
mod flanneld;
mod install;
mod mk_docker_opts;

use std::ffi::OsString;
use std::process::ExitCode;
use weft::cni::Plugin;

/// One applet: its name, a line for `--list`, and its entry point.
pub struct Applet {
    pub name: &'static str,
    pub summary: &'static str,
    pub main: fn(Vec<OsString>) -> ExitCode,
}

/// A CNI plugin's applet: the protocol on stdin, stdout and the environment; no arguments.
fn cni<P: Plugin>(_: Vec<OsString>) -> ExitCode {
    weft::cni::run::<P>()
}

/// Every name weft answers to. `--install` links each of them.
pub const APPLETS: &[Applet] = &[
    Applet {
        name: "bridge",
        summary: "CNI plugin: veth pair into a Linux bridge",
        main: cni::<weft::plugins::bridge::plugin::Bridge>,
    },
    Applet {
        name: "ptp",
        summary: "CNI plugin: point-to-point veth with host routes",
        main: cni::<weft::plugins::ptp::plugin::Ptp>,
    },
    Applet {
        name: "loopback",
        summary: "CNI plugin: bring up lo in the container",
        main: cni::<weft::plugins::loopback::Loopback>,
    },
    Applet {
        name: "host-local",
        summary: "CNI IPAM plugin: addresses from local ranges, state on disk",
        main: cni::<weft::plugins::ipam::plugin::HostLocal>,
    },
    Applet {
        name: "flannel",
        summary: "CNI meta-plugin: delegates to bridge with flanneld's subnet",
        main: cni::<weft::plugins::flannel_cni::plugin::Flannel>,
    },
    Applet {
        name: "portmap",
        summary: "CNI plugin (chained): forward host ports to the container",
        main: cni::<weft::plugins::portmap::plugin::Portmap>,
    },
    Applet {
        name: "cnitool",
        summary: "run a CNI network's conflist against a namespace, as a runtime does",
        main: cnitool::main,
    },
    Applet {
        name: "flanneld",
        summary: "overlay daemon: etcd subnet leases, vxlan/host-gw data plane",
        main: flanneld::main,
    },
    Applet {
        name: "mk-docker-opts",
        summary: "turn flanneld's subnet.env into docker daemon options",
        main: mk_docker_opts::main,
    },
];

pub fn find_applet(name: &str) -> Option<&'static Applet> {
    APPLETS.iter().find(|a| a.name == name)
}

#[global_allocator]
static ALLOCATOR: weft::sys::process_arena::ProcessArena = weft::sys::process_arena::ProcessArena;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let is_daemon = args
        .iter()
        .take(2)
        .any(|a| std::path::Path::new(a).file_name() == Some(std::ffi::OsStr::new("flanneld")));
    // Everything but the daemon exits within seconds and gives nothing back before it does.
    if !is_daemon {
        weft::sys::process_arena::enable();
    }
    // Plugins stay quiet (their stderr lands in runtime logs); the daemon reports what it does.
    let level = if is_daemon { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .target(env_logger::Target::Stderr)
        .init();
    dispatch::run(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_unique_and_cover_every_applet() {
        let mut names: Vec<&str> = APPLETS.iter().map(|a| a.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), APPLETS.len());
        for n in [
            "bridge",
            "ptp",
            "loopback",
            "portmap",
            "host-local",
            "flannel",
            "flanneld",
            "mk-docker-opts",
            "cnitool",
        ] {
            assert!(find_applet(n).is_some(), "{n}");
        }
        assert!(find_applet("weft").is_none());
        // Every CNI plugin applet can be delegated to in-process; the others cannot.
        for a in APPLETS {
            let cni = !matches!(a.name, "flanneld" | "mk-docker-opts" | "cnitool");
            assert_eq!(
                weft::cni::delegate::builtin(a.name).is_some(),
                cni,
                "{}",
                a.name
            );
        }
    }
}
