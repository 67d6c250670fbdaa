//! `portmap`: a chained plugin that forwards host ports to the container's addresses with
//! iptables NAT rules, laid out as the reference plugin lays them out ([`rules`]) so a host can
//! move between the two with its rules intact. This module reads the config.

pub mod plugin;
pub mod rules;

use crate::cni::json::pick;
use crate::cni::result::CniResult;
use crate::cni::NetConf;
use anyhow::{anyhow, bail, Context};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;
use std::net::IpAddr;

/// The portmap plugin's own top-level keys.
pub const KEYS: [&str; 7] = [
    "backend",
    "snat",
    "conditionsV4",
    "conditionsV6",
    "masqAll",
    "markMasqBit",
    "externalSetMarkChain",
];

/// The reference's default: Kubernetes uses bits 14 and 15, Calico 20 to 31.
pub const DEFAULT_MARK_BIT: u32 = 13;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    backend: Option<String>,
    snat: Option<bool>,
    #[serde(rename = "conditionsV4")]
    conditions_v4: Option<Vec<String>>,
    #[serde(rename = "conditionsV6")]
    conditions_v6: Option<Vec<String>>,
    #[serde(default)]
    masq_all: bool,
    mark_masq_bit: Option<i64>,
    external_set_mark_chain: Option<String>,
}

/// One entry of `runtimeConfig.portMappings` (the CNI conventions' capability argument).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: i64,
    pub container_port: i64,
    #[serde(default)]
    pub protocol: String,
    #[serde(default, rename = "hostIP")]
    pub host_ip: String,
}

impl PortMapping {
    /// The host address the mapping is limited to; None for any (absent or unspecified).
    pub fn host_addr(&self) -> Option<IpAddr> {
        self.host_ip
            .parse()
            .ok()
            .filter(|a: &IpAddr| !a.is_unspecified())
    }

    /// Whether the mapping applies to a container address of this family: one without a host
    /// address applies to both.
    pub fn applies_to(&self, v6: bool) -> bool {
        self.host_ip.is_empty()
            || self
                .host_ip
                .parse::<IpAddr>()
                .is_ok_and(|a| a.is_ipv6() == v6)
    }
}

/// A validated portmap configuration.
#[derive(Debug, Clone)]
pub struct PortMapConf {
    pub name: String,
    pub snat: bool,
    pub conditions_v4: Vec<String>,
    pub conditions_v6: Vec<String>,
    pub masq_all: bool,
    pub mark_masq_bit: u32,
    pub external_set_mark_chain: Option<String>,
    pub mappings: Vec<PortMapping>,
}

fn decode(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("failed to parse network configuration: {e}")
}

impl PortMapConf {
    /// The reference reports every config error as a plain error (code 999) with this prefix,
    /// and so does weft: a runtime sees the same answer from either.
    pub fn load(conf: &NetConf) -> anyhow::Result<PortMapConf> {
        PortMapConf::read(conf).context("failed to parse config")
    }

    fn read(conf: &NetConf) -> anyhow::Result<PortMapConf> {
        let w: Wire =
            serde_json::from_value(Value::Object(pick(&conf.raw, &KEYS))).map_err(decode)?;
        let mappings: Vec<PortMapping> = match conf.runtime_config.get("portMappings") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => serde_json::from_value(v.clone()).map_err(decode)?,
        };
        if w.mark_masq_bit.is_some() && w.external_set_mark_chain.is_some() {
            bail!("Cannot specify externalSetMarkChain and markMasqBit");
        }
        let bit = w.mark_masq_bit.unwrap_or(DEFAULT_MARK_BIT.into());
        if !(0..=31).contains(&bit) {
            bail!("MasqMarkBit must be between 0 and 31");
        }
        match w.backend.as_deref() {
            None | Some("iptables") => {}
            Some("nftables") => {
                bail!("weft's portmap has no nftables backend yet; use \"backend\": \"iptables\"")
            }
            Some(other) => bail!("unrecognized backend {other:?}"),
        }
        // iptables conditions start with "-" or "!"; nftables ones never do.
        let nft_conditions = |c: &Option<Vec<String>>| {
            c.as_ref()
                .and_then(|v| v.first())
                .is_some_and(|f| !f.is_empty() && !f.starts_with(['-', '!']))
        };
        if nft_conditions(&w.conditions_v4) || nft_conditions(&w.conditions_v6) {
            bail!(
                "iptables backend was requested but configuration contains nftables-specific \
                 options (conditionsV4/conditionsV6)"
            );
        }
        for m in &mappings {
            if !(1..=65535).contains(&m.container_port) {
                bail!("Invalid container port number: {}", m.container_port);
            }
            if !(1..=65535).contains(&m.host_port) {
                bail!("Invalid host port number: {}", m.host_port);
            }
            if !m.host_ip.is_empty() && m.host_ip.parse::<IpAddr>().is_err() {
                bail!("Invalid host IP {:?}", m.host_ip);
            }
        }
        Ok(PortMapConf {
            name: conf.name.clone(),
            snat: w.snat.unwrap_or(true),
            conditions_v4: w.conditions_v4.unwrap_or_default(),
            conditions_v6: w.conditions_v6.unwrap_or_default(),
            masq_all: w.masq_all,
            mark_masq_bit: bit as u32,
            external_set_mark_chain: w.external_set_mark_chain,
            mappings,
        })
    }
}

/// The container's first IPv4 and first IPv6 address in `result`, skipping addresses of other
/// interfaces than `ifname` in the sandbox (as the reference picks them).
pub fn container_addrs(result: &CniResult, ifname: &str) -> (Option<IpNet>, Option<IpNet>) {
    let (mut v4, mut v6) = (None, None);
    for ip in &result.ips {
        let slot = if ip.address.addr().is_ipv4() {
            &mut v4
        } else {
            &mut v6
        };
        if slot.is_some() {
            continue;
        }
        if let Some(i) = ip.interface {
            if let Some(iface) = result.interfaces.get(i) {
                if iface.name != ifname || iface.sandbox.is_empty() {
                    continue;
                }
            }
        }
        *slot = Some(ip.address);
    }
    (v4, v6)
}
