//! `ptp`: a veth pair whose host end routes to the container (a /32 host route) and whose
//! container end sends everything through the host: no bridge, no shared L2. Behaves as the
//! reference plugin; a failed ADD leaves nothing behind.

use crate::cni::delegate;
use crate::cni::lenient::Teardown;
use crate::cni::result::{CniResult, Interface};
use crate::cni::{CmdArgs, Command, NetConf, Plugin};
use crate::plugins::iface::{self, check};
use crate::plugins::ptp::{self as ptplib, PtpConf};
use crate::plugins::undo::Undo;
use crate::sys::firewall::masq;
use crate::sys::netlink::Handle;
use crate::sys::netns;
use crate::sys::sysctl;
use anyhow::{bail, Context, Result};
use std::os::fd::AsFd;

pub struct Ptp;

impl Plugin for Ptp {
    const ABOUT: &'static str = concat!("CNI ptp plugin weft ", env!("CARGO_PKG_VERSION"));
    const KEYS: &'static [&'static str] = &crate::plugins::ptp::KEYS;

    fn add(args: &CmdArgs, conf: &NetConf) -> Result<CniResult> {
        let pc = PtpConf::load(conf)?;
        let ns = netns::open_container(&args.netns)?;
        let cont = Handle::open_in(&ns)?;
        let host = Handle::open()?;
        let mut undo = Undo::new();
        let ipam = delegate::add(&conf.ipam_type, &args.stdin, args, conf.result_version())?;
        undo.push("release the addresses", || {
            delegate::call(&conf.ipam_type, Command::Del, &args.stdin, args)
        });
        if ipam.ips.is_empty() {
            bail!("IPAM plugin returned missing IP config");
        }
        let v4 = ipam.ips.iter().any(|i| i.address.addr().is_ipv4());
        let v6 = ipam.ips.iter().any(|i| i.address.addr().is_ipv6());
        sysctl::enable_forwarding(&host, v4, v6).context("Could not enable IP forwarding")?;

        let pair = iface::setup_veth(&host, &cont, ns.as_fd(), &args.ifname, pc.mtu, None, None)?;
        let (cont_ref, cont_index) = (&cont, pair.container.index);
        undo.push("delete the veth pair", move || {
            Ok(cont_ref.delete_link(cont_index)?)
        });
        let mut result = CniResult {
            interfaces: vec![
                Interface {
                    name: pair.host.name.clone(),
                    mac: pair.host.mac_string(),
                    ..Default::default()
                },
                Interface {
                    name: args.ifname.clone(),
                    mac: pair.container.mac_string(),
                    sandbox: args.netns.clone(),
                    ..Default::default()
                },
            ],
            ips: ipam.ips,
            routes: ipam.routes,
            dns: ipam.dns,
        };
        for ipc in &mut result.ips {
            ipc.interface = Some(1);
        }
        iface::configure_iface(&ns, &cont, &pair.container, &result)?;
        ptplib::set_container_routes(&cont, &pair.container, &result.ips)?;
        ptplib::set_host_side(&host, &pair.host, &result.ips)?;
        if pc.ip_masq {
            iface::masquerade(&mut undo, pc.ip_masq_backend, &result, &conf.name, args)?;
        }
        if let Some(dns) = pc.dns {
            result.dns = dns;
        }
        result.to_value(conf.result_version())?;
        undo.commit();
        Ok(result)
    }

    fn del(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        let td = Teardown::read(conf);
        // The reference releases the addresses first and stops if that fails.
        delegate::call(&conf.ipam_type, Command::Del, &args.stdin, args)?;
        if args.netns.is_empty() {
            return Ok(());
        }
        let addrs = iface::delete_container_link(&args.netns, &args.ifname, td.ip_masq)?;
        if td.ip_masq {
            masq::teardown_ip_masq(&addrs, &conf.name, &args.ifname, &args.container_id)?;
        }
        Ok(())
    }

    fn check(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        PtpConf::load(conf)?;
        let ns = netns::open_container(&args.netns)?;
        delegate::call(&conf.ipam_type, Command::Check, &args.stdin, args)?;
        let prev = conf
            .prev_result
            .as_ref()
            .context("ptp: Required prevResult missing")?;
        let result = CniResult::parse_prev(prev, conf.result_version())?;
        let (_, cont_if) = check::find_container_iface(&result, &args.ifname, &args.netns)?;
        let cont = Handle::open_in(&ns)?;
        let link = check::check_container_veth(&cont, cont_if)?;
        check::check_ips_and_routes(&cont, &link, &result)
    }

    fn status(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        delegate::call(&conf.ipam_type, Command::Status, &args.stdin, args)
    }

    fn gc(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        delegate::call(&conf.ipam_type, Command::Gc, &args.stdin, args)
    }
}
