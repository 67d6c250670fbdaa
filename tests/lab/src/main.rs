//! `weft-lab`: the lab (see lib.rs) for scripts. `up` builds the underlay, etcd and hosts and
//! leaves them running; `host` and `pod` add to it; `down` removes everything the state file
//! names. What `up`, `host` and `pod` made is printed as one JSON object on stdout.

use anyhow::{Context, Result};
use argh::FromArgs;
use serde_json::json;
use std::path::PathBuf;
use weft_lab::lab::{existing_host, make_host};
use weft_lab::{ledger, EtcdOptions, Lab, LabOptions, Ledger};

#[derive(FromArgs)]
/// The namespace lab of weft's tests, demo and benchmarks.
struct Args {
    #[argh(subcommand)]
    cmd: Cmd,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Cmd {
    Up(Up),
    Host(HostCmd),
    Pod(Pod),
    Down(Down),
}

#[derive(FromArgs)]
#[argh(subcommand, name = "up")]
/// Make the underlay (bridge ul0 and etcd) and hosts h1..hN; print them as JSON.
struct Up {
    #[argh(positional)]
    /// the state file to make (it must not exist)
    state: PathBuf,
    #[argh(option)]
    /// the start of every namespace's name and of the lab's directory
    prefix: String,
    #[argh(option, default = "std::env::temp_dir()")]
    /// where the lab's directory is made (default: the temp dir)
    tmp_base: PathBuf,
    #[argh(option, default = "0")]
    /// how many hosts (h1..hN at 192.168.77.1..N) to make now
    hosts: u8,
    #[argh(option, default = "2379")]
    /// etcd's client port (its peer port is the next one)
    etcd_port: u16,
    #[argh(option, default = "String::from(\"lab\")")]
    /// etcd's member name
    etcd_name: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "host")]
/// Add host NAME at 192.168.77.N; print it as JSON.
struct HostCmd {
    #[argh(positional)]
    state: PathBuf,
    #[argh(positional)]
    name: String,
    #[argh(positional)]
    n: u8,
    #[argh(option)]
    /// its port on ul0 (default uN)
    port: Option<String>,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "pod")]
/// Add pod HOST-pN behind HOST's cni0 (made with GW_CIDR if missing); print it as JSON.
struct Pod {
    #[argh(positional)]
    state: PathBuf,
    #[argh(positional)]
    host: String,
    #[argh(positional)]
    n: u8,
    #[argh(positional)]
    gw_cidr: String,
    #[argh(positional)]
    mtu: String,
}

#[derive(FromArgs)]
#[argh(subcommand, name = "down")]
/// Stop and remove everything the state file names, and the state file.
struct Down {
    #[argh(positional)]
    state: PathBuf,
    #[argh(option)]
    /// copy every *.log of the lab's directory here first
    logs: Option<PathBuf>,
}

fn host_json(h: &weft_lab::Host) -> serde_json::Value {
    json!({"name": h.name, "netns": h.ns.name, "ip": h.ip, "dir": h.dir})
}

fn run(cmd: Cmd) -> Result<serde_json::Value> {
    match cmd {
        Cmd::Up(u) => {
            let mut lab = Lab::up(LabOptions {
                prefix: u.prefix,
                tmp_base: u.tmp_base,
                state: Some(u.state),
                etcd: EtcdOptions {
                    name: u.etcd_name,
                    port: u.etcd_port,
                    ..EtcdOptions::default()
                },
                weft: None,
            })?;
            for i in 1..=u.hosts {
                lab.add_host_named(&format!("h{i}"), i, &format!("u{i}"))?;
            }
            let out = json!({
                "dir": lab.dir,
                "underlay": lab.ul.name,
                "endpoint": lab.etcd.endpoint,
                "etcd_pid": lab.etcd.pid(),
                "etcd_log": lab.etcd.log_path(),
                "hosts": lab.hosts.iter().map(host_json).collect::<Vec<_>>(),
            });
            lab.keep();
            Ok(out)
        }
        Cmd::Host(h) => {
            let ledger = Ledger::open(&h.state)?;
            let r = ledger.records()?;
            let dir = r.tmp.context("the state file names no lab directory")?;
            let port = h.port.unwrap_or_else(|| format!("u{}", h.n));
            let host = make_host(&ledger, &r.prefix, &dir, &h.name, h.n, &port)?;
            let out = host_json(&host);
            std::mem::forget(host);
            Ok(out)
        }
        Cmd::Pod(p) => {
            let ledger = Ledger::open(&p.state)?;
            let r = ledger.records()?;
            let dir = r.tmp.context("the state file names no lab directory")?;
            let mut host = existing_host(&ledger, &r.prefix, &dir, &p.host);
            let ip = host.add_pod_at(p.n, &p.gw_cidr, &p.mtu)?;
            let out = json!({"name": format!("{}-p{}", p.host, p.n), "netns": host.pods[0].name, "ip": ip});
            std::mem::forget(host);
            Ok(out)
        }
        Cmd::Down(d) => {
            if !d.state.exists() {
                println!(
                    "no lab recorded in {}: nothing to remove",
                    d.state.display()
                );
                return Ok(serde_json::Value::Null);
            }
            let removed = ledger::teardown(&Ledger::open(&d.state)?, d.logs.as_deref())?;
            println!("{removed}");
            Ok(serde_json::Value::Null)
        }
    }
}

fn main() {
    let args: Args = argh::from_env();
    match run(args.cmd) {
        Ok(serde_json::Value::Null) => {}
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("weft-lab: {e:#}");
            std::process::exit(1);
        }
    }
}
