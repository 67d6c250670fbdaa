//! flanneld: the startup sequence, the renewal loop and the background tasks, over any registry
//! ([`SubnetManager`]; etcd today).
//!
//! Threads: the main thread runs a single-threaded tokio runtime for etcd (config, lease, watch,
//! health checks, signals); the data plane runs on its own thread (see [`dataplane`]); the
//! firewall resync runs on another, because it execs iptables or nft ([`firewall`]). Nothing
//! here enters another network namespace.
//!
//! Exit: SIGTERM/SIGINT return Ok and leave every device, route, rule, subnet.env and the etcd
//! lease in place, so a restart is hitless. A lease lost to revocation or another host is an
//! error (non-zero exit), unlike upstream's exit 0, so `Restart=on-failure` also works.

pub mod blackhole;
pub mod dataplane;
pub mod firewall;
pub mod healthz;
pub mod notify;

use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::flanneld::backend;
use crate::flanneld::extiface::{self, ExtIfaceOptions};
use crate::flanneld::subnet::backoff::Backoff;
use crate::flanneld::subnet::config::NetworkConfig;
use crate::flanneld::subnet::env::{PreviousEnv, SubnetFile};
use crate::flanneld::subnet::etcd::{EtcdOptions, Registry};
use crate::flanneld::subnet::lease::{Lease, LeaseAttrs};
use crate::flanneld::subnet::manager::{OwnLease, Permanent, SubnetManager};
use crate::flanneld::subnet::peers::{PeerRules, PeerSet};
use crate::sys::netlink::Handle;

/// Everything the flags say.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub etcd: EtcdOptions,
    pub iface: ExtIfaceOptions,
    pub subnet_file: PathBuf,
    pub renew_margin: Duration,
    pub ip_masq: bool,
    pub masq_random_fully: bool,
    pub iptables_resync: Duration,
    pub forward_rules: bool,
    pub healthz: Option<SocketAddr>,
    /// How often the data plane is compared with the leases (upstream host-gw: 10 s).
    pub reconcile_every: Duration,
    /// `-adopt-lease`: take the lease of our public IP even when it names another weft host's
    /// VXLAN device.
    pub adopt_lease: bool,
    /// `-ip-blackhole-route`: keep a blackhole route to our own subnets.
    pub blackhole_route: bool,
}

/// Whether we may take over `found`, the lease of our public IP (see [`backend::vtep_mac`]). A
/// lease naming another weft host's VTEP is a misconfiguration no retry fixes: [`Permanent`].
fn may_take(found: &Lease, ours: &LeaseAttrs, adopt: bool) -> Result<()> {
    let Some(theirs) = backend::vtep_mac::other_hosts_vtep(&found.attrs, ours) else {
        return Ok(());
    };
    let (key, ip) = (found.key.to_key(), found.attrs.public_ip);
    if adopt {
        log::warn!("-adopt-lease: taking over lease {key}, which names VTEP {theirs}");
        return Ok(());
    }
    Err(Permanent(format!(
        "the lease {key} of public IP {ip} names VTEP {theirs}, another host's device, not this \
         one's: is a second host running with -public-ip {ip}? Give each host its own \
         -public-ip; if that lease is this host's own (the address moved here, or its \
         /etc/machine-id changed), start once with -adopt-lease"
    ))
    .into())
}

/// Runs until a signal (Ok) or a fatal error.
pub fn run(o: DaemonOptions) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    rt.block_on(async {
        let etcd = o.etcd.clone();
        serve(o, connect_etcd(etcd)).await
    })
}

async fn shutdown_signal() -> Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("failed to watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("failed to watch SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

const CONFIG_RETRY: Duration = Duration::from_secs(1);

/// Connects, retrying every second as upstream does: flanneld often starts before etcd.
async fn connect_etcd(o: EtcdOptions) -> Registry {
    loop {
        match Registry::connect(&o).await {
            Ok(r) => return r,
            Err(e) => log::error!("{e:#}; retrying in 1s"),
        }
        tokio::time::sleep(CONFIG_RETRY).await;
    }
}

/// Reads the config, retrying every second: the operator may not have written it yet.
async fn read_config<M: SubnetManager>(reg: &M) -> NetworkConfig {
    loop {
        match reg.network_config().await {
            Ok(cfg) => return cfg,
            Err(e) => log::error!("{e:#}; retrying in 1s"),
        }
        tokio::time::sleep(CONFIG_RETRY).await;
    }
}

async fn acquire<M: SubnetManager>(
    reg: &M,
    cfg: &NetworkConfig,
    attrs: &LeaseAttrs,
    prev: &PreviousEnv,
    adopt: bool,
) -> Result<OwnLease> {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    loop {
        match reg
            .acquire(cfg, attrs, prev, &|found| may_take(found, attrs, adopt))
            .await
        {
            Ok(l) => return Ok(l),
            Err(e) if e.downcast_ref::<Permanent>().is_some() => return Err(e),
            Err(e) => {
                let d = backoff.next_delay();
                log::error!("{e:#}; retrying in {d:?}");
                tokio::time::sleep(d).await;
            }
        }
    }
}

/// The daemon over any registry; `connect` yields it once reachable.
async fn serve<M: SubnetManager>(
    o: DaemonOptions,
    connect: impl std::future::Future<Output = M>,
) -> Result<()> {
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let ready = Arc::new(AtomicBool::new(false));
    if let Some(addr) = o.healthz {
        healthz::serve(addr, ready.clone()).await?;
    }
    let prev = PreviousEnv::read(&o.subnet_file);

    let (reg, cfg) = tokio::select! {
        r = async {
            let reg = connect.await;
            let cfg = read_config(&reg).await;
            (reg, cfg)
        } => r,
        s = &mut signal => { log::info!("{}: exiting before start-up finished", s?); return Ok(()); }
    };
    log::info!(
        "network {} (subnets /{} from {} to {}), backend {}",
        cfg.network(),
        cfg.subnet_len,
        cfg.subnet_min,
        cfg.subnet_max,
        cfg.backend_type
    );
    // As upstream: nftables mode does not need bridged traffic to pass through iptables.
    if !cfg.enable_nftables
        && !std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists()
    {
        bail!("/proc/sys/net/bridge/bridge-nf-call-iptables is missing: load br_netfilter (modprobe br_netfilter), or traffic between pods on one bridge bypasses iptables");
    }

    let h = Handle::open()?;
    let mut iface = o.iface.clone();
    iface.ipv6 = cfg.enable_ipv6;
    let ext = extiface::select(&h, &iface)?;
    log::info!(
        "using interface {} ({}), public IP {}",
        ext.link.name,
        ext.iface_addr,
        ext.ext_addr
    );
    let mut be = backend::create(&cfg, &ext)?;
    let attrs = be.lease_attrs();

    let mut own = tokio::select! {
        r = acquire(&reg, &cfg, &attrs, &prev, o.adopt_lease) => match r {
            Ok(own) => own,
            Err(e) => {
                be.abandon();
                return Err(e);
            }
        },
        s = &mut signal => { log::info!("{}: exiting before start-up finished", s?); return Ok(()); }
    };
    be.configure(&own)?;

    let wanted = firewall::Wanted {
        nftables: cfg.enable_nftables,
        ip_masq: o.ip_masq,
        random_fully: o.masq_random_fully,
        forward: o.forward_rules,
    };
    firewall::start(wanted, &cfg, &own, o.iptables_resync)?;
    if o.blackhole_route {
        let mut own_nets = vec![ipnet::IpNet::V4(own.key.ipv4)];
        own_nets.extend(own.key.ipv6.map(ipnet::IpNet::V6));
        blackhole::spawn(own_nets, o.iptables_resync)
            .context("failed to start the blackhole route keeper")?;
    }

    let env = SubnetFile {
        network: Some(cfg.network()),
        subnet: Some(own.key.ipv4),
        ipv6_network: cfg.ipv6_network.filter(|_| own.key.ipv6.is_some()),
        ipv6_subnet: own.key.ipv6,
        mtu: be.mtu(),
        ip_masq: o.ip_masq,
    };
    env.write(&o.subnet_file)?;
    log::info!("wrote {}", o.subnet_file.display());
    ready.store(true, Ordering::Relaxed);

    let (ev_tx, ev_rx) = std::sync::mpsc::channel();
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::unbounded_channel();
    let peers = PeerSet::new(own.key, own.attrs.clone(), peer_rules(&cfg, &own)?);
    let every = o.reconcile_every;
    std::thread::Builder::new()
        .name("dataplane".into())
        .spawn(move || dataplane::run(be, peers, ev_rx, fatal_tx, every))
        .context("failed to start the data-plane thread")?;
    let follower = reg.clone();
    let mine = own.clone();
    tokio::spawn(async move { follower.follow_leases(ev_tx, &mine).await });

    if let Err(e) = notify::notify("READY=1") {
        log::warn!("{e:#}");
    }

    let retry = Duration::from_secs(60);
    let mut renew_at = own
        .expires
        .map(|e| e.checked_sub(o.renew_margin).unwrap_or(e));
    loop {
        let sleep_until =
            renew_at.unwrap_or_else(|| std::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            s = &mut signal => {
                log::info!("{}: exiting cleanly, leaving the lease and the data plane in place", s?);
                return Ok(());
            }
            why = fatal_rx.recv() => {
                bail!("{}; shutting down", why.unwrap_or_else(|| "the data-plane thread stopped".into()));
            }
            _ = tokio::time::sleep_until(sleep_until.into()), if renew_at.is_some() => {
                match reg.renew(&mut own).await {
                    Ok(()) => {
                        log::info!("renewed lease {}", own.key.to_key());
                        renew_at = own.expires.map(|e| e.checked_sub(o.renew_margin).unwrap_or(e));
                    }
                    Err(e) => {
                        log::error!("{e:#}; retrying in {retry:?}");
                        renew_at = Some(std::time::Instant::now() + retry);
                    }
                }
            }
        }
    }
}

/// The rules every peer's lease is checked against (see [`PeerRules`]): the network config, and
/// this host's addresses outside our own lease.
fn peer_rules(cfg: &NetworkConfig, own: &OwnLease) -> Result<PeerRules> {
    let h = Handle::open()?;
    let host_addrs = h
        .addresses(None)
        .context("failed to list this host's addresses")?
        .into_iter()
        .map(|a| a.addr.addr())
        .filter(|a| !a.is_loopback())
        .filter(|a| !matches!(a, std::net::IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
        .filter(|a| {
            !ipnet::IpNet::V4(own.key.ipv4).contains(a)
                && !own
                    .key
                    .ipv6
                    .is_some_and(|o| ipnet::IpNet::V6(o).contains(a))
        })
        .collect();
    Ok(PeerRules {
        network: cfg.network(),
        subnet_len: cfg.subnet_len,
        subnet_min: cfg.subnet_min,
        subnet_max: cfg.subnet_max,
        ipv6: cfg.ipv6_network.map(|n| (n, cfg.ipv6_subnet_len)),
        host_addrs,
    })
}
