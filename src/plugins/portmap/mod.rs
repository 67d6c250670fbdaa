//! `portmap`: a chained plugin that forwards host ports to the container's addresses with NAT
//! rules, iptables ([`rules`]) or nftables ([`nft`]), laid out as the reference plugin lays them
//! out so a host can move between the two with its rules intact. This module reads the config
//! and picks the backend.

pub mod nft;
pub mod plugin;
pub mod rules;

use crate::cni::json::{get_ci, pick};
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

/// Which firewall the rules go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Iptables,
    Nftables,
}

impl Backend {
    /// The reference's default when `backend` is absent: iptables, unless it cannot be used
    /// here and nftables can. (Usable, not in use: a host whose iptables works gets iptables
    /// rules even if everything else on it speaks nftables.)
    pub fn detect() -> Backend {
        use crate::sys::firewall::{iptables, nft};
        if !iptables::usable() && nft::usable() {
            Backend::Nftables
        } else {
            Backend::Iptables
        }
    }

    /// `backend` as the config gives it; `detect` is asked only when it is absent.
    fn from_config(
        name: Option<&str>,
        detect: impl FnOnce() -> Backend,
    ) -> anyhow::Result<Backend> {
        match name {
            None => Ok(detect()),
            Some("iptables") => Ok(Backend::Iptables),
            Some("nftables") => Ok(Backend::Nftables),
            Some(other) => bail!("unrecognized backend {other:?}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Iptables => "iptables",
            Backend::Nftables => "nftables",
        }
    }

    fn other(self) -> Backend {
        match self {
            Backend::Iptables => Backend::Nftables,
            Backend::Nftables => Backend::Iptables,
        }
    }

    /// The backend DEL cleans: only `backend` is read, so that a config ADD would have refused
    /// for another reason still has its container's rules removed.
    pub fn for_del(conf: &NetConf) -> anyhow::Result<Backend> {
        let name = match get_ci(&conf.raw, "backend") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(decode(format!("backend: expected a string, got {other}")))
                    .context("failed to parse config")
            }
        };
        Backend::from_config(name, Backend::detect).context("failed to parse config")
    }
}

/// The backend a list of conditions is written for: iptables arguments start with `-` or `!`
/// (`-s`, `--sport`, `! -d`), nftables expressions never do. None when there are none.
fn conditions_backend(c: &Option<Vec<String>>) -> Option<Backend> {
    let first = c.as_ref()?.first().filter(|f| !f.is_empty())?;
    Some(if first.starts_with(['-', '!']) {
        Backend::Iptables
    } else {
        Backend::Nftables
    })
}

/// A validated portmap configuration.
#[derive(Debug, Clone)]
pub struct PortMapConf {
    pub name: String,
    pub backend: Backend,
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
    /// The reference reports every config error of ADD as a plain error (code 999) with this
    /// prefix, and so does weft: a runtime sees the same answer from either.
    pub fn load(conf: &NetConf) -> anyhow::Result<PortMapConf> {
        PortMapConf::read(conf).context("failed to parse config")
    }

    /// The config as CHECK reads it: the same errors, without the prefix, as in the reference.
    pub fn read(conf: &NetConf) -> anyhow::Result<PortMapConf> {
        PortMapConf::read_with(conf, Backend::detect)
    }

    /// [`PortMapConf::read`] with the backend detection given, for the tests.
    fn read_with(conf: &NetConf, detect: impl FnOnce() -> Backend) -> anyhow::Result<PortMapConf> {
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
        // The reference's order: which options belong to which backend is noted first, the
        // backend chosen, and only then are the other backend's options refused, all of them
        // named in one message.
        let mut specific: Vec<(Backend, &str)> = Vec::new();
        if w.external_set_mark_chain.is_some() {
            specific.push((Backend::Iptables, "externalSetMarkChain"));
        }
        for (key, c) in [
            ("conditionsV4", &w.conditions_v4),
            ("conditionsV6", &w.conditions_v6),
        ] {
            if let Some(b) = conditions_backend(c) {
                specific.push((b, key));
            }
        }
        let requested = w.backend.as_deref();
        let backend = Backend::from_config(requested, detect);
        // An unknown name is checked against iptables' options, as the reference does.
        let chosen = *backend.as_ref().unwrap_or(&Backend::Nftables);
        let wrong: Vec<&str> = specific
            .iter()
            .filter(|(b, _)| *b == chosen.other())
            .map(|(_, k)| *k)
            .collect();
        if !wrong.is_empty() {
            bail!(
                "{} backend was requested but configuration contains {}-specific options [{}]",
                requested.unwrap_or(chosen.name()),
                chosen.other().name(),
                wrong.join(" ")
            );
        }
        let backend = backend?;
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
        if backend == Backend::Nftables {
            for m in &mappings {
                nft::check_protocol(&m.protocol)?;
            }
            for c in [&w.conditions_v4, &w.conditions_v6].into_iter().flatten() {
                nft::check_conditions(c)?;
            }
        }
        Ok(PortMapConf {
            name: conf.name.clone(),
            backend,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(extra: Value, detected: Backend) -> anyhow::Result<PortMapConf> {
        let mut c = serde_json::json!({"cniVersion": "1.0.0", "name": "n", "type": "portmap",
            "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        let nc = NetConf::parse(c.to_string().as_bytes()).unwrap();
        PortMapConf::read_with(&nc, || detected)
    }

    fn err(extra: Value, detected: Backend) -> String {
        format!("{:#}", read(extra, detected).unwrap_err())
    }

    #[test]
    fn an_absent_backend_is_the_detected_one() {
        let b = |extra, d| read(extra, d).unwrap().backend;
        assert_eq!(
            b(serde_json::json!({}), Backend::Nftables),
            Backend::Nftables
        );
        assert_eq!(
            b(serde_json::json!({}), Backend::Iptables),
            Backend::Iptables
        );
        assert_eq!(
            b(
                serde_json::json!({"backend": "iptables"}),
                Backend::Nftables
            ),
            Backend::Iptables
        );
        assert_eq!(
            b(
                serde_json::json!({"backend": "nftables", "conditionsV4": ["ip saddr 1.2.3.4"]}),
                Backend::Iptables
            ),
            Backend::Nftables
        );
    }

    #[test]
    fn options_of_the_other_backend_get_the_references_message() {
        use serde_json::json;
        assert_eq!(
            err(
                json!({"backend": "nftables", "externalSetMarkChain": "X",
                       "conditionsV6": ["-s", "::1"]}),
                Backend::Iptables
            ),
            "nftables backend was requested but configuration contains iptables-specific \
             options [externalSetMarkChain conditionsV6]"
        );
        assert_eq!(
            err(
                json!({"conditionsV4": ["ip", "saddr", "1.2.3.4"]}),
                Backend::Iptables
            ),
            "iptables backend was requested but configuration contains nftables-specific \
             options [conditionsV4]"
        );
        // Detected nftables refuses iptables conditions just as a requested one does.
        assert!(err(
            json!({"conditionsV4": ["-s", "1.2.3.4"]}),
            Backend::Nftables
        )
        .starts_with("nftables backend was requested"));
        // An unknown backend is held against iptables' options first.
        assert_eq!(
            err(
                json!({"backend": "pf", "externalSetMarkChain": "X"}),
                Backend::Iptables
            ),
            "pf backend was requested but configuration contains iptables-specific options \
             [externalSetMarkChain]"
        );
        assert_eq!(
            err(json!({"backend": "pf"}), Backend::Iptables),
            "unrecognized backend \"pf\""
        );
        // An empty first condition says nothing about the backend.
        assert!(read(
            json!({"backend": "nftables", "conditionsV4": [""]}),
            Backend::Iptables
        )
        .is_ok());
    }
}
