//! `flanneld`: upstream's flags and FLANNELD_* variables turned into [`weft::daemon`] options.

mod flags;

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use flags::{Parsed, Values};
use weft::daemon::DaemonOptions;
use weft::extiface::ExtIfaceOptions;
use weft::subnet::etcd::EtcdOptions;

fn ip<T: std::str::FromStr>(v: &Values, name: &str) -> Result<Option<T>, String> {
    match v.str(name) {
        "" => Ok(None),
        s => s
            .parse()
            .map(Some)
            .map_err(|_| format!("-{name} {s:?} is not a valid address")),
    }
}

fn options(v: &Values) -> Result<DaemonOptions, String> {
    if v.bool("kube-subnet-mgr") {
        return Err(
            "-kube-subnet-mgr is not supported by weft: it runs flanneld in etcd mode only".into(),
        );
    }
    if v.bool("ip-blackhole-route") {
        log::warn!("-ip-blackhole-route is not supported by weft; ignoring it");
    }
    let margin = v.int("subnet-lease-renew-margin");
    if !(1..=1439).contains(&margin) {
        return Err(format!(
            "-subnet-lease-renew-margin {margin} is out of range: it must be 1 to 1439 minutes"
        ));
    }
    let resync = v.int("iptables-resync");
    if resync < 1 {
        return Err(format!(
            "-iptables-resync {resync} must be at least 1 second"
        ));
    }
    let port = v.int("healthz-port");
    let healthz = match port {
        0 => None,
        1..=65535 => {
            let host: IpAddr = ip(v, "healthz-ip")?.unwrap_or(IpAddr::from([0, 0, 0, 0]));
            Some(SocketAddr::new(host, port as u16))
        }
        _ => return Err(format!("-healthz-port {port} is out of range")),
    };
    Ok(DaemonOptions {
        etcd: EtcdOptions {
            endpoints: v
                .str("etcd-endpoints")
                .split(',')
                .map(str::to_string)
                .collect(),
            prefix: v.str("etcd-prefix").to_string(),
            keyfile: v.str("etcd-keyfile").to_string(),
            certfile: v.str("etcd-certfile").to_string(),
            cafile: v.str("etcd-cafile").to_string(),
            username: v.str("etcd-username").to_string(),
            password: v.str("etcd-password").to_string(),
        },
        iface: ExtIfaceOptions {
            ifaces: v.list("iface").to_vec(),
            iface_regex: v.list("iface-regex").to_vec(),
            can_reach: ip(v, "iface-can-reach")?,
            public_ip: ip(v, "public-ip")?,
            public_ipv6: ip(v, "public-ipv6")?,
            ipv6: false,
        },
        subnet_file: PathBuf::from(v.str("subnet-file")),
        renew_margin: Duration::from_secs(margin as u64 * 60),
        ip_masq: v.bool("ip-masq"),
        masq_random_fully: !v.bool("ip-masq-fully-random-disable"),
        iptables_resync: Duration::from_secs(resync as u64),
        forward_rules: v.bool("iptables-forward-rules"),
        healthz,
        reconcile_every: Duration::from_secs(10),
    })
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    let vals = match flags::parse(args.get(1..).unwrap_or(&[]), &env) {
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
    if vals.bool("version") {
        eprintln!("{}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let opts = match options(&vals) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("flanneld: {e}");
            return ExitCode::FAILURE;
        }
    };
    match weft::daemon::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            eprintln!("flanneld: {e:#}");
            ExitCode::FAILURE
        }
    }
}
