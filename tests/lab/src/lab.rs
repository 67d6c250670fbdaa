//! The lab as a whole: the underlay with etcd, and the hosts on it.

use crate::etcd::{Etcd, EtcdOptions};
use crate::host::Host;
use crate::ledger::{self, Ledger};
use crate::netns::{unique, Netns};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The underlay's /24: hosts are .1 up, etcd is .254.
pub const UNDERLAY: &str = "192.168.77";
pub const ETCD_IP: &str = "192.168.77.254";
/// ul0's MAC, fixed: a bridge without one takes the lowest of its ports' and changes it as
/// ports come and go (hosts added later), leaving every host's ARP entry for etcd stale, which
/// costs a lost SYN and a one-second retransmission now and then.
const UL0_MAC: &str = "0e:fb:00:00:00:fe";

pub struct LabOptions {
    /// Starts the name of every namespace the lab makes, and of its directory.
    pub prefix: String,
    /// Where the lab's directory is made.
    pub tmp_base: PathBuf,
    /// The state file. None: `lab.state` in the lab's directory, and the lab is torn down
    /// when it is dropped or fails to come up; Some: a failed `up` leaves it for `down`.
    pub state: Option<PathBuf>,
    pub etcd: EtcdOptions,
    /// The weft binary hosts run flanneld from.
    pub weft: Option<PathBuf>,
}

impl LabOptions {
    /// A lab for one test: a unique prefix, under the system's temp dir.
    pub fn for_test(weft: &Path) -> LabOptions {
        crate::netns::require_root();
        LabOptions {
            prefix: format!("{}-", unique("lab")),
            tmp_base: std::env::temp_dir(),
            state: None,
            etcd: EtcdOptions::default(),
            weft: Some(weft.into()),
        }
    }
}

/// The underlay namespace with bridge ul0 and etcd, and the hosts on it. Dropping it removes
/// everything its ledger names.
pub struct Lab {
    pub prefix: String,
    pub dir: PathBuf,
    pub ledger: Ledger,
    pub hosts: Vec<Host>,
    pub etcd: Etcd,
    pub ul: Netns,
    weft: Option<PathBuf>,
}

impl Lab {
    /// The underlay and etcd, no hosts yet.
    pub fn up(o: LabOptions) -> Result<Lab> {
        let dir = make_dir(&o.tmp_base, &o.prefix)?;
        let state = o.state.clone().unwrap_or_else(|| dir.join("lab.state"));
        let ledger = match Ledger::create(&state) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(e);
            }
        };
        let made = Lab::make(&o, &dir, &ledger);
        if made.is_err() && o.state.is_none() {
            let _ = ledger::teardown(&ledger, None);
        }
        made
    }

    fn make(o: &LabOptions, dir: &Path, ledger: &Ledger) -> Result<Lab> {
        ledger.record("lab", &[&o.prefix])?;
        ledger.record("tmp", &[&dir.display().to_string()])?;
        let ul_name = format!("{}ul", o.prefix);
        ledger.record("netns", &[&ul_name])?;
        let ul = Netns::named(&ul_name)?;
        ul.ip_batch(&[
            "link set lo up".into(),
            format!("link add ul0 address {UL0_MAC} type bridge"),
            format!("addr add {ETCD_IP}/24 dev ul0"),
            "link set ul0 up".into(),
        ])?;
        let etcd = Etcd::start(ledger, &ul.name, ETCD_IP, dir.join("etcd"), &o.etcd)?;
        Ok(Lab {
            prefix: o.prefix.clone(),
            dir: dir.into(),
            ledger: ledger.clone(),
            hosts: Vec::new(),
            etcd,
            ul,
            weft: o.weft.clone(),
        })
    }

    /// A test's lab: `n` hosts h1..hN at 192.168.77.1..N, etcd on plain http.
    pub fn new(weft: &Path, n: usize) -> Lab {
        Lab::with(LabOptions::for_test(weft), n)
    }

    /// A test's lab with its own options and `n` hosts.
    pub fn with(o: LabOptions, n: usize) -> Lab {
        let mut lab = Lab::up(o).unwrap_or_else(|e| panic!("{e:#}"));
        for _ in 0..n {
            lab.add_host();
        }
        lab
    }

    /// The next host, hI at 192.168.77.I; returns its index.
    pub fn add_host(&mut self) -> usize {
        let i = self.hosts.len() + 1;
        self.add_host_named(&format!("h{i}"), i as u8, &format!("u{i}"))
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Host `name` at 192.168.77.N, plugged into ul0 by port `port`; returns its index.
    pub fn add_host_named(&mut self, name: &str, n: u8, port: &str) -> Result<usize> {
        let mut host = make_host(&self.ledger, &self.prefix, &self.dir, name, n, port)?;
        host.weft = self.weft.clone();
        self.hosts.push(host);
        Ok(self.hosts.len() - 1)
    }

    /// One pod (.2) behind each host's cni0: (host index, pod address).
    pub fn add_pods(&mut self) -> Vec<(usize, String)> {
        (0..self.hosts.len())
            .map(|i| (i, self.hosts[i].add_pod(2)))
            .collect()
    }

    /// Each host's first pod pings every other host's pod once (`extra`: more ping options).
    pub fn ping_all(&self, ips: &[(usize, String)], extra: &[&str]) {
        for (i, _) in ips {
            for (j, ip) in ips {
                if i == j {
                    continue;
                }
                let mut argv = vec!["ping", "-c", "1", "-W", "2"];
                argv.extend_from_slice(extra);
                argv.push(ip);
                let (ok, out) = self.hosts[*i].pods[0].exec(&argv);
                assert!(
                    ok,
                    "pod on host {i} cannot reach {ip} on host {j} ({extra:?}): {out}\n{}",
                    self.hosts[*i].log()
                );
            }
        }
    }

    /// flannel's network config in etcd.
    pub fn set_config(&self, json: &str) {
        self.etcd.put("/coreos.com/network/config", json);
    }

    /// flanneld on every host with `extra` flags, waiting for each subnet.env.
    pub fn start_all(&mut self, extra: &[&str]) {
        let ep = self.etcd.endpoint.clone();
        for h in &mut self.hosts {
            h.start_flanneld(&ep, extra);
        }
        for h in &self.hosts {
            h.wait_env();
        }
    }

    /// Leaves everything running for `weft-lab down`: nothing is stopped or removed.
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // flanneld first (a Host's drop), then etcd, then whatever else the ledger names.
        self.hosts.clear();
        self.etcd.stop();
        if let Err(e) = ledger::teardown(&self.ledger, None) {
            eprintln!("lab teardown: {e:#}");
        }
    }
}

/// A host namespace PREFIXNAME plugged into ul0 (see the crate doc), its directory DIR/NAME
/// without a subnet.env a previous host of that name left.
pub fn make_host(
    ledger: &Ledger,
    prefix: &str,
    dir: &Path,
    name: &str,
    n: u8,
    port: &str,
) -> Result<Host> {
    let ns_name = format!("{prefix}{name}");
    ledger.record("netns", &[&ns_name])?;
    let ns = Netns::named(&ns_name)?;
    let host_dir = dir.join(name);
    std::fs::create_dir_all(&host_dir)
        .with_context(|| format!("cannot create {}", host_dir.display()))?;
    match std::fs::remove_file(host_dir.join("subnet.env")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e)?,
        _ => {}
    }
    // A machine identity of its own (see Host::machine_id), kept when a host is made again.
    let id = host_dir.join("machine-id");
    if !id.exists() {
        let mut b = [0u8; 16];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut b)?;
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        std::fs::write(&id, hex + "\n")
            .with_context(|| format!("cannot write {}", id.display()))?;
    }
    let ul = format!("{prefix}ul");
    crate::proc::run_input(
        "ip",
        &["-n", &ul, "-batch", "-"],
        &format!(
            "link add {port} type veth peer name eth0 netns {ns_name}\nlink set {port} master ul0 up\n"
        ),
    )?;
    let ip = format!("{UNDERLAY}.{n}");
    ns.ip_batch(&[
        "link set lo up".into(),
        format!("addr add {ip}/24 dev eth0"),
        "link set eth0 up".into(),
        format!("route add default via {ETCD_IP}"),
    ])?;
    crate::proc::run(
        "ip",
        &[
            "netns",
            "exec",
            &ns_name,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ],
    )?;
    Ok(Host {
        name: name.into(),
        ns,
        ip,
        dir: host_dir,
        flanneld: None,
        pods: Vec::new(),
        runs: 0,
        weft: None,
        ledger: ledger.clone(),
    })
}

/// A host made earlier, by another process, for adding pods to it.
pub fn existing_host(ledger: &Ledger, prefix: &str, dir: &Path, name: &str) -> Host {
    Host {
        name: name.into(),
        ns: Netns {
            name: format!("{prefix}{name}"),
        },
        ip: String::new(),
        dir: dir.join(name),
        flanneld: None,
        pods: Vec::new(),
        runs: 0,
        weft: None,
        ledger: ledger.clone(),
    }
}

/// DIR = BASE/PREFIX followed by six hex digits, made anew.
fn make_dir(base: &Path, prefix: &str) -> Result<PathBuf> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().rotate_left(16);
    for i in 0..100u32 {
        let d = base.join(format!(
            "{prefix}{:06x}",
            seed.wrapping_add(i.wrapping_mul(0x9e37_79b9)) & 0xff_ffff
        ));
        match std::fs::create_dir(&d) {
            Ok(()) => return Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", d.display())),
        }
    }
    anyhow::bail!(
        "no free directory name {prefix}XXXXXX in {}",
        base.display()
    )
}
