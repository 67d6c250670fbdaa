//! The ptp plugin's library side: its configuration and the point-to-point routing it sets up
//! on both ends of the veth pair.

pub mod plugin;

use crate::cni::json::pick;
use crate::cni::result::{Dns, IpConfig};
use crate::cni::{Code, Error, NetConf};
use crate::sys::firewall::MasqBackend;
use crate::sys::netlink::{Handle, Link, Route, SCOPE_NOWHERE};
use anyhow::{anyhow, Context, Result};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

/// rtnetlink scopes.
const SCOPE_LINK: u8 = 253;
const SCOPE_HOST: u8 = 254;

/// The ptp plugin's own top-level keys.
pub const KEYS: [&str; 3] = ["ipMasq", "ipMasqBackend", "mtu"];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default)]
    ip_masq: bool,
    #[serde(default)]
    ip_masq_backend: Option<String>,
    #[serde(default)]
    mtu: i64,
}

/// A validated ptp configuration.
#[derive(Debug, Clone)]
pub struct PtpConf {
    pub ip_masq: bool,
    pub ip_masq_backend: Option<MasqBackend>,
    pub mtu: Option<u32>,
    /// The config's `dns` when any field of it is present: it replaces the IPAM DNS.
    pub dns: Option<Dns>,
}

impl PtpConf {
    pub fn load(conf: &NetConf) -> Result<PtpConf, Error> {
        let raw = pick(&conf.raw, &KEYS);
        let w: Wire = serde_json::from_value(Value::Object(raw)).map_err(|e| {
            Error::new(Code::DecodingFailure, "failed to load netconf").with_details(e.to_string())
        })?;
        let mtu = crate::plugins::iface::mtu_from_config(w.mtu)?;
        Ok(PtpConf {
            ip_masq: w.ip_masq,
            ip_masq_backend: MasqBackend::parse(w.ip_masq_backend.as_deref())
                .map_err(|e| Error::invalid_config(e.to_string()))?,
            mtu,
            dns: conf.dns_override()?,
        })
    }
}

fn host_prefix(ip: std::net::IpAddr) -> IpNet {
    IpNet::new(ip, if ip.is_ipv4() { 32 } else { 128 }).expect("full-length prefix")
}

fn gateway_of(ipc: &IpConfig) -> Result<std::net::IpAddr> {
    ipc.gateway
        .ok_or_else(|| anyhow!("IPAM result for {} has no gateway", ipc.address))
}

/// Inside the container, per IP: replaces the kernel's connected route with a host route to
/// the gateway (`<gw>/32 scope link src <ip>`) and the subnet via that gateway, so every packet
/// goes to the host end.
pub fn set_container_routes(h: &Handle, link: &Link, ips: &[IpConfig]) -> Result<()> {
    for ipc in ips {
        let gw = gateway_of(ipc)?;
        let subnet = ipc.address.trunc();
        let mut connected = Route::new(subnet);
        connected.oif = Some(link.index);
        connected.scope = SCOPE_NOWHERE;
        h.delete_route(&connected)
            .with_context(|| format!("failed to delete route {subnet} dev {}", link.name))?;
        let mut to_gw = Route::new(host_prefix(gw));
        to_gw.oif = Some(link.index);
        to_gw.scope = SCOPE_LINK;
        to_gw.src = Some(ipc.address.addr());
        let mut via_gw = Route::new(subnet);
        via_gw.oif = Some(link.index);
        via_gw.gw = Some(gw);
        via_gw.src = Some(ipc.address.addr());
        for r in [to_gw, via_gw] {
            h.add_route(&r).context("failed to add route")?;
        }
    }
    Ok(())
}

/// On the host end, per IP: the gateway as a /32 (/128) address, and a host route to the
/// container's address.
pub fn set_host_side(h: &Handle, link: &Link, ips: &[IpConfig]) -> Result<()> {
    for ipc in ips {
        let gw = gateway_of(ipc)?;
        h.add_address(link.index, host_prefix(gw))
            .with_context(|| format!("failed to add IP addr {gw} to veth"))?;
        let mut r = Route::new(host_prefix(ipc.address.addr()));
        r.oif = Some(link.index);
        r.scope = SCOPE_HOST;
        match h.add_route(&r) {
            Err(e) if !e.is_exists() => {
                return Err(anyhow!(e).context("failed to add route on host"))
            }
            _ => {}
        }
    }
    Ok(())
}
