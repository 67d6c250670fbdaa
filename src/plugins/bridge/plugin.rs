//! `bridge`: connects a container to a Linux bridge on the host through a veth pair, with
//! addresses from the IPAM plugin (or none: L2 mode). Behaves as the reference plugin; a failed
//! ADD leaves nothing of its own behind (the bridge and its gateway addresses are shared
//! infrastructure and stay, as with the reference).

use crate::cni::delegate;
use crate::cni::lenient::Teardown;
use crate::cni::result::{CniResult, Interface};
use crate::cni::{CmdArgs, Command, NetConf, Plugin};
use crate::plugins::bridge::conf::BridgeConf;
use crate::plugins::bridge::{calc_gateways, host};
use crate::plugins::iface::{self, check};
use crate::plugins::undo::Undo;
use crate::sys::firewall::{masq, spoofcheck};
use crate::sys::netlink::{Handle, Link, LinkEvents, IPV4_DEVCONF_ARP_NOTIFY};
use crate::sys::netns;
use crate::sys::sysctl;
use anyhow::{bail, Context, Result};
use std::os::fd::AsFd;

pub struct Bridge;

fn host_iface(l: &Link) -> Interface {
    Interface {
        name: l.name.clone(),
        mac: l.mac_string(),
        ..Default::default()
    }
}

impl Plugin for Bridge {
    const ABOUT: &'static str = concat!("CNI bridge plugin weft ", env!("CARGO_PKG_VERSION"));
    const KEYS: &'static [&'static str] = &crate::plugins::bridge::conf::KEYS;

    fn add(args: &CmdArgs, conf: &NetConf) -> Result<CniResult> {
        let bc = BridgeConf::load(conf, &args.args)?;
        let host = Handle::open()?;
        let br = host::ensure_bridge(&host, &bc)?;
        let ns = netns::open_container(&args.netns)?;
        let cont = Handle::open_in(&ns)?;
        let mut undo = Undo::new();
        // Beside the veth's creation, which needs nothing from it; see `EarlyAdd`.
        let early_ipam = bc
            .has_ipam
            .then(|| delegate::add_early(&conf.ipam_type, args, conf.result_version()));

        let pair = iface::setup_veth(
            &host,
            &cont,
            ns.as_fd(),
            &args.ifname,
            bc.mtu,
            bc.mac,
            Some(br.index),
        )?;
        let (cont_ref, cont_index) = (&cont, pair.container.index);
        undo.push("delete the veth pair", move || {
            Ok(cont_ref.delete_link(cont_index)?)
        });
        host::configure_port(&host, &pair.host, &bc)?;
        let mut result = CniResult {
            interfaces: vec![
                host_iface(&br),
                host_iface(&pair.host),
                Interface {
                    name: args.ifname.clone(),
                    mac: pair.container.mac_string(),
                    sandbox: args.netns.clone(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        if bc.macspoofchk {
            spoofcheck::setup(
                &args.container_id,
                &args.ifname,
                &pair.host.name,
                &pair.container.mac_string(),
            )?;
            undo.push("remove the MAC spoof check", || {
                spoofcheck::teardown(&args.container_id, &args.ifname)
            });
        }

        let ifname = &args.ifname;
        if let Some(early) = early_ipam {
            // The container end's settings come before IPAM's answer (the reference makes them
            // after it; the state is the same, and a failed ADD deletes the link with them):
            // /proc/sys lookups walk a dentry per namespace on the machine, 0.5 ms with 600,
            // and host-local's scan is still running on a big node.
            ns.run(|| {
                // Errors ignored as the reference does: IPv6 may be off in the container.
                if bc.enable_dad {
                    let _ = sysctl::set(&format!("net/ipv6/conf/{ifname}/enhanced_dad"), "1");
                    let _ = sysctl::set(&format!("net/ipv6/conf/{ifname}/accept_dad"), "1");
                } else {
                    let _ = sysctl::set(&format!("net/ipv6/conf/{ifname}/accept_dad"), "0");
                }
                Ok(())
            })?;
            // Before the link comes up, so the kernel announces its addresses then.
            let _ = cont.set_ipv4_conf(pair.container.index, IPV4_DEVCONF_ARP_NOTIFY, 1);
            let ipam = early.finish()?;
            undo.push("release the addresses", || {
                delegate::call(&conf.ipam_type, Command::Del, &args.stdin, args)
            });
            if ipam.ips.is_empty() {
                bail!("IPAM plugin returned missing IP config");
            }
            (result.ips, result.routes, result.dns) = (ipam.ips, ipam.routes, ipam.dns);
            let gateways = calc_gateways(&mut result, &bc);
            // The host side before the container's link comes up (the reference does it after;
            // the state is the same): from the link-up on, the kernel's IPv6 worker holds RTNL
            // while it floods the new link-local address's announcements to every port, and
            // the lookups and changes here would wait for it.
            if bc.is_gateway {
                let gw_link = if bc.vlan != 0 && !(gateways.v4.is_empty() && gateways.v6.is_empty())
                {
                    let l = host::ensure_vlan_gateway_link(
                        &host,
                        &br,
                        bc.vlan,
                        bc.preserve_default_vlan,
                    )
                    .context("failed to create vlan interface")?;
                    result.interfaces.push(host_iface(&l));
                    l
                } else {
                    br.clone()
                };
                for gw in gateways.v4.iter().chain(&gateways.v6) {
                    iface::ensure_addr(&host, &gw_link, *gw, bc.force_address)
                        .context("failed to set bridge addr")?;
                }
                sysctl::enable_forwarding(&host, !gateways.v4.is_empty(), !gateways.v6.is_empty())
                    .context("failed to enable forwarding")?;
            }
        }
        // The bridge's MAC is final once its port is enslaved and its address set.
        result.interfaces[0].mac = host.link_by_index(br.index)?.mac_string();
        // Opened before the link-up, so the port's coming up cannot be missed.
        let port_events = if bc.disable_container_interface {
            None
        } else {
            LinkEvents::changes_of(pair.host.index).ok()
        };
        if bc.has_ipam {
            iface::configure_iface(&ns, &cont, &pair.container, &result)?;
            if bc.ip_masq {
                iface::masquerade(&mut undo, bc.ip_masq_backend, &result, &conf.name, args)?;
            }
        } else if !bc.disable_container_interface {
            cont.set_link_up(pair.container.index, true)
                .with_context(|| format!("failed to set {ifname:?} up"))?;
        }

        // The host veth's MAC as the kernel reports it once the port is up.
        let host_veth = if bc.disable_container_interface {
            host.link_by_index(pair.host.index)?
        } else if let Some(events) = port_events {
            iface::wait_oper_up_notified(&host, events, pair.host.index)?
        } else {
            iface::wait_oper_up(&host, pair.host.index)?
        };
        result.interfaces[1].mac = host_veth.mac_string();
        if let Some(dns) = bc.dns {
            result.dns = dns;
        }
        // A result the requested version cannot express (L2 at 0.2.0) fails now, while the
        // guard can still take everything back.
        result.to_value(conf.result_version())?;
        undo.commit();
        Ok(result)
    }

    fn del(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        let td = Teardown::read(conf);
        let has_ipam = !conf.ipam_type.is_empty();
        let ipam_del = || -> Result<()> {
            if has_ipam {
                delegate::call(&conf.ipam_type, Command::Del, &args.stdin, args)?;
            }
            Ok(())
        };
        if args.netns.is_empty() {
            return ipam_del();
        }
        let masq = has_ipam && td.ip_masq;
        let addrs = iface::delete_container_link(&args.netns, &args.ifname, masq)?;
        ipam_del()?;
        let mut errors = Vec::new();
        if td.macspoofchk {
            if let Err(e) = spoofcheck::teardown(&args.container_id, &args.ifname) {
                errors.push(format!("{e:#}"));
            }
        }
        if masq {
            if let Err(e) =
                masq::teardown_ip_masq(&addrs, &conf.name, &args.ifname, &args.container_id)
            {
                errors.push(format!("{e:#}"));
            }
        }
        if !errors.is_empty() {
            bail!("{}", errors.join("; "));
        }
        Ok(())
    }

    fn check(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        let bc = BridgeConf::load(conf, &args.args)?;
        let ns = netns::open_container(&args.netns)?;
        // The reference also asks an empty IPAM type, so its L2 bridges always fail CHECK;
        // weft checks L2 attachments like any other.
        if bc.has_ipam {
            delegate::call(&conf.ipam_type, Command::Check, &args.stdin, args)?;
        }
        let prev = conf
            .prev_result
            .as_ref()
            .context("Required prevResult missing")?;
        let result = CniResult::parse_prev(prev, conf.result_version())?;
        let host = Handle::open()?;
        let br = check_bridge(&host, &result, &bc)?;
        let (_, cont_if) = check::find_container_iface(&result, &args.ifname, &args.netns)?;
        let cont = Handle::open_in(&ns)?;
        let cont_link = check::check_container_veth(&cont, cont_if)?;
        let mut found = false;
        for intf in &result.interfaces {
            if intf.name == bc.bridge || intf.name == cont_if.name || !intf.sandbox.is_empty() {
                continue;
            }
            let Ok(l) = host.link_by_name(&intf.name) else {
                continue;
            };
            if l.kind != "veth"
                || l.index != cont_link.parent
                || l.parent != cont_link.index
                || l.master != br.index
            {
                continue;
            }
            check::check_mac(&l, intf)?;
            found = true;
            break;
        }
        if !found {
            bail!("CNI veth created for bridge {} was not found", bc.bridge);
        }
        check::check_ips_and_routes(&cont, &cont_link, &result)
    }

    fn status(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        if !conf.ipam_type.is_empty() {
            delegate::call(&conf.ipam_type, Command::Status, &args.stdin, args)?;
        }
        Ok(())
    }

    fn gc(args: &CmdArgs, conf: &NetConf) -> Result<()> {
        // The spec: a plugin that delegates IPAM passes GC on to it.
        if !conf.ipam_type.is_empty() {
            delegate::call(&conf.ipam_type, Command::Gc, &args.stdin, args)?;
        }
        Ok(())
    }
}

/// The bridge named in the config, as prevResult reported it, still as it was.
fn check_bridge(h: &Handle, res: &CniResult, bc: &BridgeConf) -> Result<Link> {
    let intf = res
        .interfaces
        .iter()
        .find(|i| i.name == bc.bridge)
        .with_context(|| format!("Bridge interface name missing in prevResult: {}", bc.bridge))?;
    if !intf.sandbox.is_empty() {
        bail!(
            "Bridge interface {} should not be in namespace {}",
            intf.name,
            intf.sandbox
        );
    }
    let link = h
        .link_by_name(&intf.name)
        .with_context(|| format!("Error: Bridge interface {} not found", intf.name))?;
    if link.kind != "bridge" {
        bail!("Error: Bridge interface {} not of type bridge", intf.name);
    }
    check::check_mac(&link, intf)?;
    if link.promisc != bc.promisc_mode {
        bail!(
            "Bridge interface {} configured Promisc Mode {} doesn't match current state: {}",
            intf.name,
            bc.promisc_mode,
            link.promisc
        );
    }
    Ok(link)
}
