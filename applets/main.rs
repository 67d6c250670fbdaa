//! The weft binary: one table of applets, dispatched on the name it was called by
//! (`/opt/cni/bin/host-local` → host-local) or on its first argument (`weft host-local`).

mod bridge;
mod dispatch;
mod flannel;
mod flanneld;
mod host_local;
mod install;
mod loopback;
mod mk_docker_opts;
mod ptp;

use std::ffi::OsString;
use std::process::ExitCode;
use weft::cni::delegate::InProcessFn;

/// One applet: its name, a line for `--list`, its entry point, and its in-process CNI entry when
/// it is a CNI plugin other plugins may delegate to.
pub struct Applet {
    pub name: &'static str,
    pub summary: &'static str,
    pub main: fn(Vec<OsString>) -> ExitCode,
    pub in_process: Option<InProcessFn>,
}

/// Every name weft answers to. `--install` links each of them.
pub const APPLETS: &[Applet] = &[
    Applet {
        name: "bridge",
        summary: "CNI plugin: veth pair into a Linux bridge",
        main: bridge::main,
        in_process: Some(weft::cni::skel::in_process::<bridge::Bridge>),
    },
    Applet {
        name: "ptp",
        summary: "CNI plugin: point-to-point veth with host routes",
        main: ptp::main,
        in_process: Some(weft::cni::skel::in_process::<ptp::Ptp>),
    },
    Applet {
        name: "loopback",
        summary: "CNI plugin: bring up lo in the container",
        main: loopback::main,
        in_process: Some(weft::cni::skel::in_process::<loopback::Loopback>),
    },
    Applet {
        name: "host-local",
        summary: "CNI IPAM plugin: addresses from local ranges, state on disk",
        main: host_local::main,
        in_process: Some(weft::cni::skel::in_process::<host_local::HostLocal>),
    },
    Applet {
        name: "flannel",
        summary: "CNI meta-plugin: delegates to bridge with flanneld's subnet",
        main: flannel::main,
        in_process: Some(weft::cni::skel::in_process::<flannel::Flannel>),
    },
    Applet {
        name: "flanneld",
        summary: "overlay daemon: etcd subnet leases, vxlan/host-gw data plane",
        main: flanneld::main,
        in_process: None,
    },
    Applet {
        name: "mk-docker-opts",
        summary: "turn flanneld's subnet.env into docker daemon options",
        main: mk_docker_opts::main,
        in_process: None,
    },
];

pub fn find_applet(name: &str) -> Option<&'static Applet> {
    APPLETS.iter().find(|a| a.name == name)
}

#[global_allocator]
static ALLOCATOR: weft::process_arena::ProcessArena = weft::process_arena::ProcessArena;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let is_daemon = args
        .iter()
        .take(2)
        .any(|a| std::path::Path::new(a).file_name() == Some(std::ffi::OsStr::new("flanneld")));
    // Everything but the daemon exits within seconds and gives nothing back before it does.
    if !is_daemon {
        weft::process_arena::enable();
    }
    // Plugins stay quiet (their stderr lands in runtime logs); the daemon reports what it does.
    let level = if is_daemon { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .target(env_logger::Target::Stderr)
        .init();
    weft::cni::delegate::register_in_process(|name| find_applet(name).and_then(|a| a.in_process));
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
            "host-local",
            "flannel",
            "flanneld",
            "mk-docker-opts",
        ] {
            assert!(find_applet(n).is_some(), "{n}");
        }
        assert!(find_applet("weft").is_none());
        // Only CNI plugins may be delegated to in-process.
        assert!(find_applet("host-local").unwrap().in_process.is_some());
        assert!(find_applet("flanneld").unwrap().in_process.is_none());
    }
}
