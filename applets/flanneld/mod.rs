//! `flanneld`: upstream's flags and FLANNELD_* variables turned into [`weft::flanneld::daemon`] options.

mod flags;

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use flags::{Flags, Parsed};
use weft::flanneld::daemon::DaemonOptions;
use weft::flanneld::extiface::ExtIfaceOptions;
use weft::flanneld::subnet::etcd::EtcdOptions;

fn ip<T: std::str::FromStr>(flag: &str, value: &str) -> Result<Option<T>, String> {
    match value {
        "" => Ok(None),
        s => s
            .parse()
            .map(Some)
            .map_err(|_| format!("-{flag} {s:?} is not a valid address")),
    }
}

fn options(f: &Flags) -> Result<DaemonOptions, String> {
    if f.kube_subnet_mgr {
        return Err(
            "-kube-subnet-mgr is not supported by weft: it runs flanneld in etcd mode only".into(),
        );
    }
    let margin = f.subnet_lease_renew_margin;
    if !(1..=1439).contains(&margin) {
        return Err(format!(
            "-subnet-lease-renew-margin {margin} is out of range: it must be 1 to 1439 minutes"
        ));
    }
    let resync = f.iptables_resync;
    if resync < 1 {
        return Err(format!(
            "-iptables-resync {resync} must be at least 1 second"
        ));
    }
    let port = f.healthz_port;
    let healthz = match port {
        0 => None,
        1..=65535 => {
            let host: IpAddr =
                ip("healthz-ip", &f.healthz_ip)?.unwrap_or(IpAddr::from([0, 0, 0, 0]));
            Some(SocketAddr::new(host, port as u16))
        }
        _ => return Err(format!("-healthz-port {port} is out of range")),
    };
    Ok(DaemonOptions {
        etcd: EtcdOptions {
            endpoints: f.etcd_endpoints.split(',').map(str::to_string).collect(),
            prefix: f.etcd_prefix.clone(),
            keyfile: f.etcd_keyfile.clone(),
            certfile: f.etcd_certfile.clone(),
            cafile: f.etcd_cafile.clone(),
            username: f.etcd_username.clone(),
            password: f.etcd_password.clone(),
        },
        iface: ExtIfaceOptions {
            ifaces: f.iface.clone(),
            iface_regex: f.iface_regex.clone(),
            can_reach: ip("iface-can-reach", &f.iface_can_reach)?,
            public_ip: ip("public-ip", &f.public_ip)?,
            public_ipv6: ip("public-ipv6", &f.public_ipv6)?,
            ipv6: false,
        },
        subnet_file: PathBuf::from(&f.subnet_file),
        renew_margin: Duration::from_secs(margin as u64 * 60),
        ip_masq: f.ip_masq,
        masq_random_fully: !f.ip_masq_fully_random_disable,
        iptables_resync: Duration::from_secs(resync as u64),
        forward_rules: f.iptables_forward_rules,
        healthz,
        reconcile_every: Duration::from_secs(10),
        adopt_lease: f.adopt_lease,
        blackhole_route: f.ip_blackhole_route,
    })
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    let flags = match flags::parse(args.get(1..).unwrap_or(&[]), &env) {
        Ok(Parsed::Run(v)) => v,
        Ok(Parsed::Help) => {
            eprint!("{}", flags::usage());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("flanneld: {e}\n{}", flags::usage());
            return ExitCode::from(2);
        }
    };
    if flags.version {
        eprintln!("{}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let opts = match options(&flags) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("flanneld: {e}");
            return ExitCode::FAILURE;
        }
    };
    match weft::flanneld::daemon::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            eprintln!("flanneld: {e:#}");
            ExitCode::FAILURE
        }
    }
}
